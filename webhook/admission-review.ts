// AdmissionReview (admission.k8s.io/v1) parsing and the response helpers of the webhook.
// Every response allows the pod: a skip carries no patch, an internal error carries a
// warning, and every one echoes the request's uid.

import { isJsonObject, objectField, stringField } from './json-object.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** The fields of `AdmissionReview.request` that the webhook reads. */
export interface AdmissionRequest {
  uid: string;
  /** Group, version and kind of the object, such as `{group: '', version: 'v1', kind: 'Pod'}`. */
  kind: { group: string; version: string; kind: string } | undefined;
  operation: string | undefined;
  namespace: string | undefined;
  object: unknown;
  dryRun: boolean;
}

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; message: string };

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch document. */
  patch?: string;
  warnings?: string[];
}

// The API server truncates longer warnings, and control characters would garble terminals.
const MAX_WARNING_LENGTH = 256;
const MAX_DESCRIBED_LENGTH = 64;

/** Parses an AdmissionReview body. A failure's message is meant for an HTTP 400 response. */
export function parseAdmissionReview(body: string): ParsedReview {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch (error) {
    return { ok: false, message: `invalid AdmissionReview: ${(error as Error).message}` };
  }
  if (!isJsonObject(review))
    return { ok: false, message: 'invalid AdmissionReview: not a JSON object' };
  if (review.apiVersion !== ADMISSION_API_VERSION || review.kind !== 'AdmissionReview') {
    const found = `apiVersion ${describeValue(review.apiVersion)} and kind ${describeValue(review.kind)}`;
    return {
      ok: false,
      message: `invalid AdmissionReview: expected ${ADMISSION_API_VERSION} AdmissionReview, found ${found}`,
    };
  }
  const request = objectField(review, 'request');
  const uid = stringField(request, 'uid');
  if (request === undefined || uid === undefined || uid === '') {
    return { ok: false, message: 'invalid AdmissionReview: missing request.uid' };
  }
  return {
    ok: true,
    request: {
      uid,
      kind: readKind(request.kind),
      operation: stringField(request, 'operation'),
      namespace: stringField(request, 'namespace'),
      object: request.object,
      dryRun: request.dryRun === true,
    },
  };
}

// Describes an untrusted JSON value without converting it, because String() on an object runs
// its own toString, which may be missing or not a function.
function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const shortened =
      value.length > MAX_DESCRIBED_LENGTH ? `${value.slice(0, MAX_DESCRIBED_LENGTH)}...` : value;
    return JSON.stringify(shortened);
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'of type array';
  return `of type ${typeof value}`;
}

function readKind(value: unknown): AdmissionRequest['kind'] {
  if (!isJsonObject(value)) return undefined;
  const { group, version, kind } = value;
  if (typeof group !== 'string' || typeof version !== 'string' || typeof kind !== 'string') {
    return undefined;
  }
  return { group, version, kind };
}

/** Returns a response that allows the object unchanged. */
export function allowedResponse(uid: string, warnings: readonly string[] = []): AdmissionResponse {
  const response: AdmissionResponse = { uid, allowed: true };
  if (warnings.length > 0) response.warnings = warnings.map(cleanWarning);
  return response;
}

/** Returns a response that allows the object with a JSON Patch applied. */
export function patchedResponse(
  uid: string,
  patch: readonly object[],
  warnings: readonly string[] = [],
): AdmissionResponse {
  const response = allowedResponse(uid, warnings);
  response.patchType = 'JSONPatch';
  response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
  return response;
}

/** Returns the response to an internal error: allowed, unchanged, with the error as a warning. */
export function erroredResponse(uid: string, message: string): AdmissionResponse {
  return allowedResponse(uid, [`trainjob-progress: sidecar not injected: ${message}`]);
}

/** Serializes a response as the AdmissionReview body of an HTTP 200 response. */
export function serializeReview(response: AdmissionResponse): string {
  return JSON.stringify({ apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response });
}

// The API server relays admission warnings as HTTP Warning headers, which many HTTP clients
// decode as Latin-1. So the text is kept to printable ASCII: control characters become spaces
// and other characters become \uXXXX escapes.
function cleanWarning(warning: string): string {
  const printable = warning
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .replace(
      /[^\u0020-\u007e]/g,
      (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  return printable.length > MAX_WARNING_LENGTH
    ? `${printable.slice(0, MAX_WARNING_LENGTH - 3)}...`
    : printable;
}
