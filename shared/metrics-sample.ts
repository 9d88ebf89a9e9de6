// The trainer's metrics endpoint body, parsed tolerantly into a bounded, normalized sample.
//
// Input: the raw body of `GET /metrics` (or a termination message). Output: a MetricsSample
// whose every field is either null or valid: integers are whole and within their ranges,
// metric maps hold at most MAX_METRICS_PER_MAP names of at most MAX_METRIC_NAME_LENGTH
// characters with number, string or null values. A key of the wrong type becomes null on its
// own; the rest of the sample is kept. Unknown keys are ignored and keys match case-sensitively.

export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_METRIC_NAME_LENGTH = 64;
export const MAX_METRICS_PER_MAP = 256;

export type MetricValue = number | string | null;
export type MetricMap = Record<string, MetricValue>;

export interface MetricsSample {
  progressPercentage: number | null;
  estimatedRemainingSeconds: number | null;
  currentStep: number | null;
  totalSteps: number | null;
  currentEpoch: number | null;
  totalEpochs: number | null;
  trainMetrics: MetricMap | null;
  evalMetrics: MetricMap | null;
}

export type ParseResult = { ok: true; sample: MetricsSample } | { ok: false; reason: string };

export const EMPTY_SAMPLE: Readonly<MetricsSample> = Object.freeze({
  progressPercentage: null,
  estimatedRemainingSeconds: null,
  currentStep: null,
  totalSteps: null,
  currentEpoch: null,
  totalEpochs: null,
  trainMetrics: null,
  evalMetrics: null,
});

/** Parses an endpoint body. Bodies over 64 KiB, non-JSON bodies and non-objects are rejected. */
export function parseMetricsBody(body: string | Buffer): ParseResult {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (size > MAX_BODY_BYTES) {
    return { ok: false, reason: `body of ${size} bytes exceeds the ${MAX_BODY_BYTES}-byte limit` };
  }
  let parsed: unknown;
  try {
    parsed = parseTolerantJson(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `body is not valid JSON: ${(error as Error).message}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, reason: 'body is not a JSON object' };
  }
  return { ok: true, sample: normalizeSample(parsed as Record<string, unknown>) };
}

/**
 * Parses JSON that may contain the bare tokens NaN, Infinity and -Infinity outside strings,
 * as Python's json.dumps writes them, reading each as null. Throws SyntaxError otherwise.
 */
export function parseTolerantJson(text: string): unknown {
  let output = '';
  let copiedUpTo = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') {
      inString = true;
      continue;
    }
    const token = matchNonFiniteToken(text, i);
    if (token !== undefined) {
      output += text.slice(copiedUpTo, i) + 'null';
      i += token.length - 1;
      copiedUpTo = i + 1;
    }
  }
  return JSON.parse(output + text.slice(copiedUpTo));
}

function matchNonFiniteToken(text: string, index: number): string | undefined {
  for (const token of ['NaN', 'Infinity', '-Infinity']) {
    if (text.startsWith(token, index)) return token;
  }
  return undefined;
}

/** Normalizes a parsed endpoint object into a sample, applying the range rules per key. */
export function normalizeSample(raw: Record<string, unknown>): MetricsSample {
  const currentStep = readNumber(raw.currentStep);
  const currentEpoch = readNumber(raw.currentEpoch);
  return {
    progressPercentage: inRange(floorOrNull(readNumber(raw.progressPercentage)), 0, 100),
    estimatedRemainingSeconds: atLeastZero(floorOrNull(readNumber(raw.estimatedRemainingSeconds))),
    currentStep: currentStep === null ? null : floorOrNull(Math.max(0, currentStep)),
    totalSteps: atLeastZero(floorOrNull(readNumber(raw.totalSteps))),
    currentEpoch: currentEpoch === null ? null : Math.max(0, currentEpoch),
    totalEpochs: atLeastZero(floorOrNull(readNumber(raw.totalEpochs))),
    trainMetrics: readMetricMap(raw.trainMetrics),
    evalMetrics: readMetricMap(raw.evalMetrics),
  };
}

const DECIMAL_SYNTAX = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Reads a finite number from a JSON number or a numeric string; anything else is null. */
function readNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  if (!DECIMAL_SYNTAX.test(trimmed)) return null;
  const parsed = Number(trimmed);
  return Number.isFinite(parsed) ? parsed : null;
}

/**
 * Floors a value to an integer, or returns null beyond 2^53 − 1: larger values lose
 * precision here and are written in exponent form, which Go cannot decode into an int.
 */
function floorOrNull(value: number | null): number | null {
  if (value === null) return null;
  const floored = Math.floor(value);
  return Math.abs(floored) <= Number.MAX_SAFE_INTEGER ? floored : null;
}

function inRange(value: number | null, min: number, max: number): number | null {
  return value !== null && value >= min && value <= max ? value : null;
}

function atLeastZero(value: number | null): number | null {
  return value !== null && value >= 0 ? value : null;
}

/**
 * Reads a metric map: names of 1–64 characters, values kept as they arrive when they are
 * numbers, strings or null (non-finite numbers become null), other values dropped. Keeps the
 * first MAX_METRICS_PER_MAP names in code-point order.
 */
function readMetricMap(value: unknown): MetricMap | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const names = Object.keys(value)
    .filter((name) => name !== '' && [...name].length <= MAX_METRIC_NAME_LENGTH)
    .sort(compareCodePoints);
  const metrics: MetricMap = {};
  let kept = 0;
  for (const name of names) {
    if (kept === MAX_METRICS_PER_MAP) break;
    const metric = readMetricValue((value as Record<string, unknown>)[name]);
    if (metric === undefined) continue;
    setOwnProperty(metrics, name, metric);
    kept++;
  }
  return metrics;
}

function readMetricValue(value: unknown): MetricValue | undefined {
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  return undefined;
}

/**
 * Sets a property as an own, enumerable data property, so a metric named `__proto__` is
 * stored like any other name instead of replacing the object's prototype.
 */
export function setOwnProperty(target: MetricMap, name: string, value: MetricValue): void {
  Object.defineProperty(target, name, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** Orders strings by Unicode code point, as Go's sort of UTF-8 strings does. */
export function compareCodePoints(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const difference = left[i]!.codePointAt(0)! - right[i]!.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}
