// One sidecar stream on the ingest WebSocket, after the upgrade was authenticated.
//
// The sidecar sends `hello` first. With Kubernetes authentication, its namespace, TrainJob,
// pod and pod UID must match the token's pod, or the stream is closed as forbidden.
// Samples are taken in seq order per pod. A seq at or below the last one seen is a
// duplicate resent after a reconnect, so it is acknowledged but not used. Everything in a
// message is untrusted, so every field is type-checked and each sample is normalized again.
// An invalid hello closes the stream with 4400 and a reason. A sample message that is not
// JSON or not a valid sample is skipped with a log line, and the stream goes on.

import type { WebSocket, RawData } from 'ws';
import type { Logger } from '../shared/logger.ts';
import { normalizeSample } from '../shared/metrics-sample.ts';
import {
  CLOSE_CODES,
  MAX_INGEST_MESSAGE_BYTES,
  type HelloMessage,
  type IngestReply,
} from '../shared/stream-protocol.ts';
import type { JobRegistry } from './job-registry.ts';
import type { AggregatorMetrics } from './metrics.ts';
import type { SidecarIdentity } from './sidecar-auth.ts';
import { TokenBucket } from './token-bucket.ts';

export const HELLO_TIMEOUT_MS = 10_000;
/** Invalid messages logged at warn level per connection; later ones are logged at debug. */
const WARN_LOG_LIMIT = 5;
const MAX_NAME_LENGTH = 253;
const MAX_VERSION_LENGTH = 64;
/** Accepted range of a hello's poll and scrape intervals, in seconds. */
const MAX_INTERVAL_SECONDS = 86_400;
/** Standard WebSocket close codes (RFC 6455, section 7.4.1). */
const MESSAGE_TOO_BIG = 1009;
const INTERNAL_ERROR = 1011;
/** Oldest accepted observedAt; earlier times are replaced by the receive time. */
const MIN_OBSERVED_AT_MS = Date.UTC(2000, 0, 1);
/** How far ahead of this process's clock an observedAt may be. */
const MAX_CLOCK_AHEAD_MS = 60_000;
const RFC3339_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

export interface IngestSettings {
  /** undefined with `--auth none`, where the hello is trusted. */
  identity: SidecarIdentity | undefined;
  messagesPerSecond: number;
  messageBurst: number;
  maxConnectionsPerPod: number;
}

export interface IngestContext {
  registry: JobRegistry;
  metrics: Pick<
    AggregatorMetrics,
    'samplesReceived' | 'samplesRejected' | 'ingestConnections' | 'ingestRejected'
  >;
  logger: Logger;
  /** Open connections per pod, shared by all connections: `namespace/podUid` → count. */
  connectionsPerPod: Map<string, number>;
  now?: () => number;
}

interface Peer {
  namespace: string;
  trainJob: string;
  pod: string;
  podUid: string;
}

export class IngestConnection {
  readonly #socket: WebSocket;
  readonly #settings: IngestSettings;
  readonly #context: IngestContext;
  readonly #now: () => number;
  readonly #rate: TokenBucket;
  #logger: Logger;
  #peer: Peer | undefined;
  #helloTimer: NodeJS.Timeout | undefined;
  #invalidCount = 0;
  #afterFinalCount = 0;

  constructor(socket: WebSocket, settings: IngestSettings, context: IngestContext) {
    this.#socket = socket;
    this.#settings = settings;
    this.#context = context;
    this.#now = context.now ?? Date.now;
    this.#rate = new TokenBucket(settings.messagesPerSecond, settings.messageBurst, this.#now());
    const identity = settings.identity;
    this.#logger =
      identity === undefined
        ? context.logger
        : context.logger.child({
            trainJob: `${identity.namespace}/${identity.trainJob}`,
            pod: identity.podName,
          });
    context.metrics.ingestConnections.inc();
    this.#helloTimer = setTimeout(
      () => this.#close(CLOSE_CODES.protocolError, 'no hello received in time'),
      HELLO_TIMEOUT_MS,
    );
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    socket.on('close', (code) => this.#onClose(code));
    socket.on('error', (error) => this.#logger.warn({ err: error }, 'sidecar connection error'));
  }

  // An exception here would end the process, because ws emits 'message' synchronously.
  #onMessage(data: RawData, isBinary: boolean): void {
    try {
      this.#handleMessage(data, isBinary);
    } catch (error) {
      this.#logger.error({ err: error }, 'handling a sidecar message failed');
      this.#close(INTERNAL_ERROR, 'internal error; see the aggregator log');
    }
  }

  #handleMessage(data: RawData, isBinary: boolean): void {
    const size = rawByteLength(data);
    if (size > MAX_INGEST_MESSAGE_BYTES) {
      this.#close(
        MESSAGE_TOO_BIG,
        `message of ${size} bytes exceeds the maximum of ${MAX_INGEST_MESSAGE_BYTES} bytes`,
      );
      return;
    }
    if (!this.#rate.tryTake(this.#now())) {
      this.#context.metrics.samplesRejected.inc({ reason: 'rate-limited' });
      this.#close(
        CLOSE_CODES.rateLimited,
        'message rate limit exceeded; reconnect after a backoff',
      );
      return;
    }
    let message: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      message = JSON.parse(rawToString(data));
    } catch {
      this.#skip('invalid-json', 'message is not a JSON text frame');
      return;
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      this.#skip('invalid-message', 'message is not a JSON object');
      return;
    }
    this.#dispatch(message as Record<string, unknown>);
  }

  #dispatch(message: Record<string, unknown>): void {
    if (this.#peer === undefined) {
      if (message.type === 'hello') this.#onHello(message);
      else this.#close(CLOSE_CODES.protocolError, 'expected hello as the first message');
      return;
    }
    switch (message.type) {
      case 'sample':
        this.#onSample(message);
        return;
      case 'goodbye':
        this.#logger.info(
          { reason: typeof message.reason === 'string' ? message.reason.slice(0, 64) : undefined },
          'sidecar sent goodbye',
        );
        return;
      case 'hello':
        this.#close(CLOSE_CODES.protocolError, 'hello sent twice');
        return;
      default:
        this.#skip('unknown-type', `unknown message type ${JSON.stringify(message.type)}`);
    }
  }

  #onHello(message: Record<string, unknown>): void {
    clearTimeout(this.#helloTimer);
    const hello = readHello(message);
    if (typeof hello === 'string') {
      this.#close(CLOSE_CODES.protocolError, `invalid hello: ${hello}`);
      return;
    }
    const mismatch = this.#identityMismatch(hello);
    if (mismatch !== undefined) {
      this.#context.metrics.ingestRejected.inc({ reason: 'hello-mismatch' });
      this.#close(CLOSE_CODES.forbidden, mismatch);
      return;
    }
    const peer = {
      namespace: hello.namespace,
      trainJob: hello.trainJob,
      pod: hello.pod,
      podUid: hello.podUid,
    };
    if (this.#settings.identity === undefined && !this.#claimPodSlot(peer)) {
      this.#context.metrics.ingestRejected.inc({ reason: 'too-many-connections' });
      this.#close(CLOSE_CODES.rateLimited, 'too many connections from this pod');
      return;
    }
    this.#peer = peer;
    this.#logger = this.#context.logger.child({
      trainJob: `${peer.namespace}/${peer.trainJob}`,
      pod: peer.pod,
    });
    const state = this.#context.registry.stateForSamples(peer.namespace, peer.trainJob);
    if (state !== undefined) state.connections++;
    const lastSeq = state?.lastSeqByPod.get(peer.podUid) ?? 0;
    this.#send({ type: 'welcome', lastSeq });
    this.#logger.info({ lastSeq, sidecarVersion: hello.sidecarVersion }, 'sidecar connected');
  }

  #identityMismatch(hello: HelloMessage): string | undefined {
    const identity = this.#settings.identity;
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

  #claimPodSlot(peer: Peer): boolean {
    const key = `${peer.namespace}/${peer.podUid}`;
    const open = this.#context.connectionsPerPod.get(key) ?? 0;
    if (open >= this.#settings.maxConnectionsPerPod) return false;
    this.#context.connectionsPerPod.set(key, open + 1);
    return true;
  }

  #onSample(message: Record<string, unknown>): void {
    const peer = this.#peer!;
    const seq = message.seq;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
      this.#skip('invalid-seq', `invalid seq ${JSON.stringify(seq)}, expected a positive integer`);
      return;
    }
    const { registry, metrics } = this.#context;
    const state = registry.stateForSamples(peer.namespace, peer.trainJob);
    if (state === undefined) {
      metrics.samplesRejected.inc({ reason: 'job-deleted' });
    } else if (!state.acceptSeq(peer.podUid, seq)) {
      metrics.samplesRejected.inc({ reason: 'duplicate' });
    } else {
      this.#useSample(message, seq);
    }
    this.#send({ type: 'ack', seq });
  }

  #useSample(message: Record<string, unknown>, seq: number): void {
    const peer = this.#peer!;
    const raw = message.sample;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      this.#skip('invalid-sample', `sample ${seq} is not a JSON object`);
      return;
    }
    const { registry, metrics } = this.#context;
    const state = registry.stateForSamples(peer.namespace, peer.trainJob)!;
    const observedAt = readObservedAt(message.observedAt, this.#now());
    if (registry.recordSample(state, normalizeSample(raw as Record<string, unknown>), observedAt)) {
      metrics.samplesReceived.inc();
    } else {
      metrics.samplesRejected.inc({ reason: 'after-final' });
      this.#logAfterFinal(seq, state.phase);
    }
  }

  // Logs the first sample dropped after the final status at info level and the rest at
  // debug, so a sidecar that keeps sending after the job ended logs one line per connection.
  #logAfterFinal(seq: number, phase: string): void {
    this.#afterFinalCount++;
    const level = this.#afterFinalCount === 1 ? 'info' : 'debug';
    this.#logger[level](
      { seq, phase, droppedSamples: this.#afterFinalCount },
      'dropped sample: the TrainJob has ended or its final status is already set',
    );
  }

  #skip(reason: string, detail: string): void {
    this.#context.metrics.samplesRejected.inc({ reason });
    this.#invalidCount++;
    const level = this.#invalidCount <= WARN_LOG_LIMIT ? 'warn' : 'debug';
    this.#logger[level](
      { reason, invalidMessages: this.#invalidCount },
      `skipped ingest message: ${detail}`,
    );
  }

  #send(reply: IngestReply): void {
    this.#socket.send(JSON.stringify(reply));
  }

  #close(code: number, reason: string): void {
    clearTimeout(this.#helloTimer);
    this.#logger.warn({ code, reason }, 'closing sidecar connection');
    this.#socket.close(code, truncateReason(reason));
  }

  #onClose(code: number): void {
    clearTimeout(this.#helloTimer);
    this.#context.metrics.ingestConnections.dec();
    const peer = this.#peer;
    if (peer === undefined) return;
    if (this.#settings.identity === undefined)
      decrementCount(this.#context.connectionsPerPod, `${peer.namespace}/${peer.podUid}`);
    const state = this.#context.registry.get(peer.namespace, peer.trainJob);
    if (state !== undefined) {
      state.connections = Math.max(0, state.connections - 1);
      state.lastActivityMs = this.#now();
    }
    this.#logger.info({ code }, 'sidecar disconnected');
  }
}

/** Decrements a count in a map of open connections, removing it at zero. */
export function decrementCount(counts: Map<string, number>, key: string): void {
  const open = (counts.get(key) ?? 1) - 1;
  if (open <= 0) counts.delete(key);
  else counts.set(key, open);
}

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

function rawByteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((total, chunk) => total + chunk.length, 0);
  return data.byteLength;
}

function rawToString(data: RawData): string {
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
