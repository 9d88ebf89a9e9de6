// Messages on the aggregator's WebSockets. Every message is one JSON text frame.
//
// Ingest (sidecar → aggregator, at INGEST_PATH): the sidecar sends `Authorization: Bearer
// <projected service-account token>` on the upgrade request, the only place where the
// aggregator reads an ingest token. Then it sends `hello` once, then `sample` messages with
// strictly increasing `seq`, and `goodbye` before it exits. The aggregator replies to
// `hello` with `welcome`, which carries the highest seq it already has from this pod, so a
// reconnecting sidecar skips what was delivered. It acknowledges samples with `ack`, and
// the sidecar then drops them from its buffer.
//
// Watch (aggregator → viewer, at WATCH_PATH): `snapshot` with every matching job first, then
// one `update` per change. A slow viewer is sent only the latest state of each job.

import type { MetricsSample } from './metrics-sample.ts';
import type { TrainerStatusObject } from './trainer-status.ts';

export const INGEST_PATH = '/v1/ingest';
export const WATCH_PATH = '/v1/watch';
export const JOB_API_PREFIX = '/v1/namespaces/';

/**
 * Largest ingest frame: a 64 KiB endpoint body plus the envelope. A larger frame closes the
 * stream with code 1009.
 */
export const MAX_INGEST_MESSAGE_BYTES = 80 * 1024;

/** Audience of the projected token that sidecars present, unless configured otherwise. */
export const DEFAULT_TOKEN_AUDIENCE = 'trainjob-progress';

export interface HelloMessage {
  type: 'hello';
  namespace: string;
  trainJob: string;
  pod: string;
  podUid: string;
  /** Version of the sidecar, for logs. */
  sidecarVersion: string;
  pollIntervalSeconds: number;
  scrapeIntervalSeconds: number;
}

export interface SampleMessage {
  type: 'sample';
  seq: number;
  /** When the sidecar scraped the sample, RFC 3339 with milliseconds. */
  observedAt: string;
  sample: MetricsSample;
}

/** Sent once the sidecar stops: on SIGTERM, or when the trainer is gone for good. */
export interface GoodbyeMessage {
  type: 'goodbye';
  reason: 'terminating' | 'trainer-exited';
}

export type IngestMessage = HelloMessage | SampleMessage | GoodbyeMessage;

export interface WelcomeMessage {
  type: 'welcome';
  /** Highest seq already received from this pod, 0 when none. */
  lastSeq: number;
}

export interface AckMessage {
  type: 'ack';
  seq: number;
}

export type IngestReply = WelcomeMessage | AckMessage;

/** Lifecycle phase of a TrainJob, derived by the aggregator from its conditions. */
export type JobPhase = 'Pending' | 'Running' | 'Suspended' | 'Complete' | 'Failed';

/** The live state of one TrainJob that viewers receive. */
export interface JobProgress {
  namespace: string;
  name: string;
  phase: JobPhase;
  /** The status as the annotation shows it, or null before the first sample. */
  status: TrainerStatusObject | null;
  /** True once the final status is written; it never changes afterwards. */
  final: boolean;
}

export interface SnapshotMessage {
  type: 'snapshot';
  jobs: JobProgress[];
}

export interface UpdateMessage {
  type: 'update';
  job: JobProgress;
}

export type WatchMessage = SnapshotMessage | UpdateMessage;

/** WebSocket close codes that the aggregator uses; 4000–4999 are free for applications. */
export const CLOSE_CODES = Object.freeze({
  /** Missing, invalid or expired token. Reconnect only with a new token. */
  unauthenticated: 4401,
  /** The token is valid but may not write or read this TrainJob. */
  forbidden: 4403,
  /** A message broke the protocol (bad JSON, wrong order, seq not increasing). */
  protocolError: 4400,
  /** Too many messages or connections. Reconnect after a backoff. */
  rateLimited: 4429,
  /** The aggregator is shutting down. Reconnect. */
  goingAway: 1001,
});

/** Sent to viewers when a TrainJob is deleted; it will get no more updates. */
export interface RemovedMessage {
  type: 'removed';
  namespace: string;
  name: string;
}

/** Every message on the viewer stream: the watch messages plus `removed`. */
export type ViewerMessage = WatchMessage | RemovedMessage;
