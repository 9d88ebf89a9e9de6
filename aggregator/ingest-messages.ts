// Validation of the messages that a sidecar sends on the ingest WebSocket, and helpers for
// the raw frames and close reasons of that stream.

import type { RawData } from 'ws';
import type { HelloMessage } from '../shared/stream-protocol.ts';
import type { SidecarIdentity } from './sidecar-auth.ts';

const MAX_NAME_LENGTH = 253;
const MAX_VERSION_LENGTH = 64;
/** Accepted range of a hello's poll and scrape intervals, in seconds. */
const MAX_INTERVAL_SECONDS = 86_400;
/** Oldest accepted observedAt; earlier times are replaced by the receive time. */
const MIN_OBSERVED_AT_MS = Date.UTC(2000, 0, 1);
/** How far ahead of this process's clock an observedAt may be. */
const MAX_CLOCK_AHEAD_MS = 60_000;
const RFC3339_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * Reads a hello message; returns what is wrong with it as text when it is invalid. The
 * names are required. sidecarVersion and both intervals are optional, but must have the
 * right type when present.
 */
export function readHello(message: Record<string, unknown>): HelloMessage | string {
  const names = ['namespace', 'trainJob', 'pod', 'podUid'] as const;
  for (const field of names) {
    const value = message[field];
    if (typeof value !== 'string' || value === '' || value.length > MAX_NAME_LENGTH) {
      return `${field} must be a string of 1 to ${MAX_NAME_LENGTH} characters`;
    }
  }
  const version = message.sidecarVersion;
  if (version !== undefined && typeof version !== 'string') {
    return 'sidecarVersion must be a string';
  }
  const pollIntervalSeconds = readInterval(message.pollIntervalSeconds);
  if (pollIntervalSeconds === undefined) {
    return `pollIntervalSeconds must be a number from 0 to ${MAX_INTERVAL_SECONDS}`;
  }
  const scrapeIntervalSeconds = readInterval(message.scrapeIntervalSeconds);
  if (scrapeIntervalSeconds === undefined) {
    return `scrapeIntervalSeconds must be a number from 0 to ${MAX_INTERVAL_SECONDS}`;
  }
  return {
    type: 'hello',
    namespace: message.namespace as string,
    trainJob: message.trainJob as string,
    pod: message.pod as string,
    podUid: message.podUid as string,
    sidecarVersion: version === undefined ? 'unknown' : version.slice(0, MAX_VERSION_LENGTH),
    pollIntervalSeconds,
    scrapeIntervalSeconds,
  };
}

/**
 * Compares a hello with the pod that the sidecar's token belongs to. Returns the mismatch as
 * text, or undefined when they match or when no token was checked (`--auth none`).
 */
export function identityMismatch(
  hello: HelloMessage,
  identity: SidecarIdentity | undefined,
): string | undefined {
  if (identity === undefined) return undefined;
  if (hello.namespace !== identity.namespace || hello.trainJob !== identity.trainJob) {
    return `hello names TrainJob ${hello.namespace}/${hello.trainJob}, but the token's pod belongs to ${identity.namespace}/${identity.trainJob}`;
  }
  if (hello.pod !== identity.podName) {
    return `hello names pod ${hello.pod}, but the token belongs to pod ${identity.podName}`;
  }
  if (hello.podUid !== identity.podUid) {
    return `hello names pod ${hello.pod} with UID ${hello.podUid}, but the token belongs to the pod with UID ${identity.podUid}`;
  }
  return undefined;
}

/** Reads an optional interval in seconds: 0 when absent, undefined when invalid. */
function readInterval(value: unknown): number | undefined {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  return value >= 0 && value <= MAX_INTERVAL_SECONDS ? value : undefined;
}

/**
 * Reads a sample's observedAt: an RFC 3339 time from 2000 on and at most
 * MAX_CLOCK_AHEAD_MS ahead of `nowMs`. Anything else, such as a year-0 time from a zero
 * value or a sidecar clock far ahead, would show a misleading lastUpdatedTime, so the
 * receive time `nowMs` is used instead.
 */
export function readObservedAt(value: unknown, nowMs: number): Date {
  if (typeof value !== 'string' || !RFC3339_TIME.test(value)) return new Date(nowMs);
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || ms < MIN_OBSERVED_AT_MS || ms > nowMs + MAX_CLOCK_AHEAD_MS) {
    return new Date(nowMs);
  }
  return new Date(ms);
}

export function rawByteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((total, chunk) => total + chunk.length, 0);
  return data.byteLength;
}

export function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/** Cuts a close reason to the 123 bytes that a WebSocket close frame allows. */
export function truncateReason(reason: string): string {
  let text = reason;
  while (Buffer.byteLength(text) > 123) text = text.slice(0, -1);
  return text;
}
