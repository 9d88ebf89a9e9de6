// Reading Kubernetes API failures. Decisions branch on the HTTP status code, never on the
// message text.

import { ApiException } from '@kubernetes/client-node';

/** Returns the HTTP status code of a failed API call, or undefined for a network failure. */
export function statusCodeOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { statusCode?: unknown; code?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Returns the Retry-After delay of a 429 or 503 response in milliseconds, if one was sent. */
export function retryAfterMs(error: unknown): number | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const headers = (error.headers ?? {}) as Record<string, string | undefined>;
  const value = headers['retry-after'] ?? headers['Retry-After'];
  const seconds = value === undefined ? NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Returns whether a failed call may succeed when repeated: no response, 408, 429 or any 5xx. */
export function isRetryable(error: unknown): boolean {
  const code = statusCodeOf(error);
  return code === undefined || code === 408 || code === 429 || code >= 500;
}

/** Describes an API failure in one line for logs, without the response headers. */
export function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
    const body = error.body as { message?: unknown } | undefined;
    const message = typeof body?.message === 'string' ? body.message : undefined;
    return `HTTP ${error.code}${message === undefined ? '' : `: ${message}`}`;
  }
  return error instanceof Error ? error.message : String(error);
}
