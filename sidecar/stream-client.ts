// The WebSocket stream to the aggregator's ingest endpoint.
//
// Each connection attempt re-reads the token file, because the kubelet rotates the projected
// token, and sends it as a bearer token on the upgrade request. After `hello`, the client
// waits for `welcome`, drops what the aggregator already has and sends the rest of the
// buffer. From then on every new sample is sent at once. Acknowledgements remove samples from
// the buffer. A lost connection is retried with the delays of ReconnectBackoff, whose attempt
// counter resets only after a connection has stayed up for `healthyAfterMs`. The client pings
// the aggregator and terminates a connection on which nothing arrived for the ping interval
// plus a margin, because a half-open TCP connection is otherwise never noticed.

import { readFile } from 'node:fs/promises';

import WebSocket from 'ws';

import type { Logger } from '../shared/logger.ts';
import {
  CLOSE_CODES,
  type GoodbyeMessage,
  type HelloMessage,
  type IngestMessage,
} from '../shared/stream-protocol.ts';
import { ReconnectBackoff, type BackoffOptions } from './backoff.ts';
import { LogThrottle } from './log-throttle.ts';
import { parseReply, rawDataToString } from './reply-parser.ts';
import type { SampleBuffer } from './sample-buffer.ts';

/** Replies are a few dozen bytes; anything larger is a protocol error. */
const MAX_REPLY_BYTES = 16 * 1024;

export interface StreamClientOptions {
  url: URL;
  caFile: string | null;
  tokenFile: string;
  hello: HelloMessage;
  buffer: SampleBuffer;
  logger: Logger;
  backoff?: Partial<BackoffOptions>;
  random?: () => number;
  /** Interval of the client's pings; default 20 s, below common proxy idle timeouts of 30 s. */
  pingIntervalMs?: number;
  /** Extra silence tolerated after a ping interval before the connection is dropped; default 10 s. */
  watchdogMarginMs?: number;
  /** How long to wait for `welcome` after the upgrade; default 10 s. */
  welcomeTimeoutMs?: number;
  /** How long a connection must stay up before the backoff starts over; default 30 s. */
  healthyAfterMs?: number;
}

interface Connection {
  socket: WebSocket;
  welcomed: boolean;
  /** Highest seq sent on this connection. */
  sentUpTo: number;
  httpStatus: number | undefined;
  error: Error | undefined;
  welcomeTimer?: NodeJS.Timeout;
  pingTimer?: NodeJS.Timeout;
  watchdogTimer?: NodeJS.Timeout;
  healthyTimer?: NodeJS.Timeout;
}

export class StreamClient {
  readonly #options: StreamClientOptions;
  readonly #backoff: ReconnectBackoff;
  readonly #log: Logger;
  /** At most one malformed-reply warning a minute, with the count of those suppressed. */
  readonly #malformedReplyThrottle = new LogThrottle(60_000);
  #connection: Connection | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #goodbye: GoodbyeMessage | undefined;
  #stopped = false;
  #flushWaiter: ((acknowledged: boolean) => void) | undefined;

  constructor(options: StreamClientOptions) {
    this.#options = options;
    this.#backoff = new ReconnectBackoff(options.backoff, options.random);
    this.#log = options.logger;
  }

  /** True while a connection is open and welcomed. */
  get connected(): boolean {
    return this.#connection?.welcomed === true;
  }

  /** Starts connecting; failures are retried until flush() or stop(). */
  start(): void {
    void this.#connect();
  }

  /** Sends the buffered samples that this connection has not carried yet. */
  sendPending(): void {
    const connection = this.#connection;
    if (connection === undefined || !connection.welcomed) return;
    for (const message of this.#options.buffer.pendingAfter(connection.sentUpTo)) {
      this.#send(connection, message);
      connection.sentUpTo = message.seq;
    }
  }

  /**
   * Sends what is buffered and a goodbye, then waits until every sample is acknowledged or
   * `timeoutMs` passes, and closes the stream. When disconnected, it connects at once,
   * skipping the backoff. Returns whether every sample was acknowledged.
   */
  async flush(reason: GoodbyeMessage['reason'], timeoutMs: number): Promise<boolean> {
    this.#goodbye = { type: 'goodbye', reason };
    if (this.#connection === undefined) {
      clearTimeout(this.#reconnectTimer);
      void this.#connect();
    } else if (this.#connection.welcomed) {
      this.#sendFinal(this.#connection);
    }

    const acknowledged = await this.#waitForAcks(timeoutMs);
    await this.stop();
    return acknowledged;
  }

  /** Closes the stream and stops reconnecting. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    const connection = this.#connection;
    if (connection === undefined) return;
    const closed = new Promise<void>((resolve) => connection.socket.once('close', () => resolve()));
    connection.socket.close(1000, 'sidecar stopping');
    // The close handshake waits up to 30 s for the peer in ws: do not let it hold the exit.
    const timer = setTimeout(() => connection.socket.terminate(), 1000);
    await closed;
    clearTimeout(timer);
  }

  #waitForAcks(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#flushWaiter?.(false), timeoutMs);
      this.#flushWaiter = (acknowledged) => {
        clearTimeout(timer);
        this.#flushWaiter = undefined;
        resolve(acknowledged);
      };
      this.#checkFlushed();
    });
  }

  #checkFlushed(): void {
    const connection = this.#connection;
    if (connection?.welcomed && this.#options.buffer.size === 0) this.#flushWaiter?.(true);
  }

  async #connect(): Promise<void> {
    this.#reconnectTimer = undefined;
    if (this.#stopped || this.#connection !== undefined) return;

    let token: string;
    let ca: Buffer | undefined;
    try {
      token = (await readFile(this.#options.tokenFile, 'utf8')).trim();
      if (this.#options.caFile !== null) ca = await readFile(this.#options.caFile);
    } catch (error) {
      this.#log.warn({ err: error }, 'cannot read the token or CA file, retrying later');
      if (this.#goodbye === undefined) this.#scheduleReconnect(this.#backoff.nextDelayMs());
      else this.#flushWaiter?.(false);
      return;
    }
    if (this.#stopped || this.#connection !== undefined) return;

    const socket = new WebSocket(this.#options.url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      maxPayload: MAX_REPLY_BYTES,
      handshakeTimeout: this.#options.welcomeTimeoutMs ?? 10_000,
      ...(ca === undefined ? {} : { ca }),
    });
    const connection: Connection = {
      socket,
      welcomed: false,
      sentUpTo: 0,
      httpStatus: undefined,
      error: undefined,
    };
    this.#connection = connection;
    this.#attachHandlers(connection);
  }

  #attachHandlers(connection: Connection): void {
    const { socket } = connection;
    socket.on('unexpected-response', (_request, response) => {
      connection.httpStatus = response.statusCode;
      response.resume();
      socket.terminate();
    });
    socket.on('open', () => this.#onOpen(connection));
    socket.on('message', (data, isBinary) => this.#onMessage(connection, data, isBinary));
    socket.on('ping', () => this.#refreshWatchdog(connection));
    socket.on('pong', () => this.#refreshWatchdog(connection));
    socket.on('error', (error) => {
      connection.error = error;
    });
    socket.on('close', (code, reason) => this.#onClose(connection, code, reason.toString()));
  }

  #onOpen(connection: Connection): void {
    this.#log.debug('connected to the aggregator, sending hello');
    this.#send(connection, this.#options.hello);

    const welcomeTimeoutMs = this.#options.welcomeTimeoutMs ?? 10_000;
    const pingIntervalMs = this.#options.pingIntervalMs ?? 20_000;
    const silenceMs = pingIntervalMs + (this.#options.watchdogMarginMs ?? 10_000);
    connection.welcomeTimer = setTimeout(() => {
      this.#log.warn({ welcomeTimeoutMs }, 'no welcome from the aggregator, reconnecting');
      connection.socket.terminate();
    }, welcomeTimeoutMs);
    connection.pingTimer = setInterval(() => connection.socket.ping(), pingIntervalMs);
    connection.watchdogTimer = setTimeout(() => {
      this.#log.warn(
        { silenceMs },
        'nothing received from the aggregator, terminating the connection',
      );
      connection.socket.terminate();
    }, silenceMs);
  }

  #refreshWatchdog(connection: Connection): void {
    connection.watchdogTimer?.refresh();
  }

  #onMessage(connection: Connection, data: WebSocket.RawData, isBinary: boolean): void {
    this.#refreshWatchdog(connection);
    const reply = isBinary ? undefined : parseReply(rawDataToString(data));
    if (reply === undefined) {
      const suppressed = this.#malformedReplyThrottle.admit('malformed-reply');
      if (suppressed !== undefined) {
        this.#log.warn(
          { bytes: Buffer.byteLength(rawDataToString(data)), binary: isBinary, suppressed },
          'ignoring a malformed message from the aggregator',
        );
      }
      return;
    }

    if (reply.type === 'welcome') this.#onWelcome(connection, reply.lastSeq);
    else this.#options.buffer.acknowledge(reply.seq);
    this.#checkFlushed();
  }

  #onWelcome(connection: Connection, lastSeq: number): void {
    const { buffer } = this.#options;
    buffer.applyWelcome(lastSeq);
    connection.welcomed = true;
    clearTimeout(connection.welcomeTimer);
    this.#log.info({ lastSeq, resending: buffer.size }, 'aggregator stream established');

    const healthyAfterMs = this.#options.healthyAfterMs ?? 30_000;
    connection.healthyTimer = setTimeout(() => this.#backoff.reset(), healthyAfterMs);
    this.sendPending();
    if (this.#goodbye !== undefined) this.#sendFinal(connection);
  }

  #sendFinal(connection: Connection): void {
    this.sendPending();
    if (this.#goodbye !== undefined) this.#send(connection, this.#goodbye);
  }

  #onClose(connection: Connection, code: number, reason: string): void {
    clearTimeout(connection.welcomeTimer);
    clearInterval(connection.pingTimer);
    clearTimeout(connection.watchdogTimer);
    clearTimeout(connection.healthyTimer);
    if (this.#connection === connection) this.#connection = undefined;
    if (this.#stopped) return;

    const rejected = isAuthRejection(code, connection.httpStatus);
    const delayMs = rejected ? this.#backoff.nextAuthDelayMs() : this.#backoff.nextDelayMs();
    const details = {
      code,
      reason: reason === '' ? undefined : reason,
      httpStatus: connection.httpStatus,
      err: connection.error,
      retryInMs: delayMs,
    };
    if (rejected)
      this.#log.error(details, 'aggregator rejected the token, retrying with a fresh read later');
    else if (connection.welcomed) this.#log.info(details, 'aggregator stream closed, reconnecting');
    else this.#log.warn(details, 'cannot connect to the aggregator, retrying');

    if (this.#goodbye === undefined) this.#scheduleReconnect(delayMs);
    else this.#flushWaiter?.(false); // flushing: no time for another attempt
  }

  #scheduleReconnect(delayMs: number): void {
    if (this.#stopped) return;
    this.#reconnectTimer = setTimeout(() => void this.#connect(), delayMs);
  }

  #send(connection: Connection, message: IngestMessage): void {
    if (connection.socket.readyState !== WebSocket.OPEN) return;
    connection.socket.send(JSON.stringify(message));
  }
}

function isAuthRejection(code: number, httpStatus: number | undefined): boolean {
  return (
    code === CLOSE_CODES.unauthenticated ||
    code === CLOSE_CODES.forbidden ||
    httpStatus === 401 ||
    httpStatus === 403
  );
}
