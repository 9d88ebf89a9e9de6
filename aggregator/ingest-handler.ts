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
  type IngestReply,
} from '../shared/stream-protocol.ts';
import type { JobRegistry } from './job-registry.ts';
import type { AggregatorMetrics } from './metrics.ts';
import {
  identityMismatch,
  rawByteLength,
  rawToString,
  readHello,
  readObservedAt,
  truncateReason,
} from './ingest-messages.ts';
import type { SidecarIdentity } from './sidecar-auth.ts';
import { TokenBucket } from './token-bucket.ts';

export const HELLO_TIMEOUT_MS = 10_000;
/** Invalid messages logged at warn level per connection; later ones are logged at debug. */
const WARN_LOG_LIMIT = 5;
/** Standard WebSocket close codes (RFC 6455, section 7.4.1). */
const MESSAGE_TOO_BIG = 1009;
const INTERNAL_ERROR = 1011;

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
    const mismatch = identityMismatch(hello, this.#settings.identity);
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
