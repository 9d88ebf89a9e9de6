// Helpers for reading raw JSON, such as the pod of an AdmissionReview, without a typed
// round-trip that would drop fields this code does not know.

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Returns `object[key]` when it is a JSON object, otherwise undefined. */
export function objectField(object: JsonObject | undefined, key: string): JsonObject | undefined {
  const value = object?.[key];
  return isJsonObject(value) ? value : undefined;
}

/** Returns `object[key]` when it is a string, otherwise undefined. */
export function stringField(object: JsonObject | undefined, key: string): string | undefined {
  const value = object?.[key];
  return typeof value === 'string' ? value : undefined;
}

/** Returns the string values of a label or annotation map, skipping values of other types. */
export function readStringMap(value: unknown): Record<string, string> {
  const result: Record<string, string> = {};
  if (!isJsonObject(value)) return result;
  for (const key in value) {
    const entry = value[key];
    if (typeof entry === 'string') result[key] = entry;
  }
  return result;
}
