// Real servers on 127.0.0.1 for the sidecar tests: a trainer metrics endpoint, a port that
// refuses connections, and a fake aggregator ingest endpoint. The aggregator is a fake so
// that tests can drop connections, withhold acknowledgements and reject tokens on demand.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Writable, type Duplex } from 'node:stream';

import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';

import type { Logger } from '../../../shared/logger.ts';
import type { IngestMessage, IngestReply, SampleMessage } from '../../../shared/stream-protocol.ts';

export interface TrainerEndpoint {
  port: number;
  url: URL;
  /** Start times of the requests received, in ms since the epoch. */
  requestTimes: number[];
  close(): Promise<void>;
}

/** Starts an HTTP server on a free loopback port that responds with `handler`. */
export async function startTrainerEndpoint(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
  port = 0,
): Promise<TrainerEndpoint> {
  const requestTimes: number[] = [];
  const server = createServer((request, response) => {
    requestTimes.push(Date.now());
    handler(request, response);
  });
  const actualPort = await listen(server, port);
  return {
    port: actualPort,
    url: new URL(`http://127.0.0.1:${actualPort}/metrics`),
    requestTimes,
    close: () => closeServer(server),
  };
}

/** Responds to every request with `body` as JSON, as a trainer does. */
export function jsonHandler(body: () => unknown) {
  return (_request: IncomingMessage, response: ServerResponse): void => {
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify(body()));
  };
}

/** Returns a loopback port on which nothing listens, so connections are refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0);
  await closeServer(server);
  return port;
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface AggregatorConnection {
  authorization: string | undefined;
  socket: WebSocket;
  messages: IngestMessage[];
}

export interface FakeAggregatorOptions {
  /** Acknowledge every sample at once; default true. */
  autoAck?: boolean;
  /** The welcome's lastSeq; default the highest sample seq received on any connection. */
  lastSeq?: () => number;
  /** Respond to the upgrade with this HTTP status instead of accepting it. */
  rejectStatus?: number;
  /** Respond to pings with pongs; default true. */
  autoPong?: boolean;
  /** Reply to hello with welcome; default true. */
  welcome?: boolean;
  /** Close every connection with this code right after hello. */
  closeAfterHello?: number;
}

/** A WebSocket server that speaks the ingest protocol's aggregator side. */
export class FakeAggregator {
  readonly connections: AggregatorConnection[] = [];
  rejectedUpgrades = 0;
  options: FakeAggregatorOptions;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  constructor(options: FakeAggregatorOptions = {}) {
    this.options = options;
    this.#server = createServer((_request, response) => response.writeHead(404).end());
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      autoPong: options.autoPong ?? true,
    });
    this.#server.on('upgrade', (request, socket, head) => this.#upgrade(request, socket, head));
  }

  async start(port = 0): Promise<this> {
    this.#port = await listen(this.#server, port);
    return this;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.#port}/v1/ingest`;
  }

  /** Returns every message received, in order, across connections. */
  messages(): IngestMessage[] {
    return this.connections.flatMap((connection) => connection.messages);
  }

  samples(): SampleMessage[] {
    return this.messages().filter((message): message is SampleMessage => message.type === 'sample');
  }

  highestSeq(): number {
    return Math.max(0, ...this.samples().map((message) => message.seq));
  }

  send(connection: AggregatorConnection, reply: IngestReply): void {
    connection.socket.send(JSON.stringify(reply));
  }

  /** Cuts every open connection without a close handshake. */
  dropConnections(): void {
    for (const connection of this.connections) connection.socket.terminate();
  }

  async close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.options.rejectStatus !== undefined) {
      this.rejectedUpgrades++;
      socket.end(`HTTP/1.1 ${this.options.rejectStatus} Rejected\r\nconnection: close\r\n\r\n`);
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      const connection: AggregatorConnection = {
        authorization: request.headers.authorization,
        socket: ws,
        messages: [],
      };
      this.connections.push(connection);
      ws.on('message', (data: Buffer) => this.#onMessage(connection, data.toString('utf8')));
    });
  }

  #onMessage(connection: AggregatorConnection, text: string): void {
    const message = JSON.parse(text) as IngestMessage;
    connection.messages.push(message);
    if (message.type === 'hello' && this.options.closeAfterHello !== undefined) {
      connection.socket.close(this.options.closeAfterHello, 'rejected by the test');
    } else if (message.type === 'hello' && this.options.welcome !== false) {
      const lastSeq = this.options.lastSeq?.() ?? this.highestSeq();
      this.send(connection, { type: 'welcome', lastSeq });
    } else if (message.type === 'sample' && this.options.autoAck !== false) {
      this.send(connection, { type: 'ack', seq: message.seq });
    }
  }
}

/** Polls `predicate` every 10 ms until it returns true; fails after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CapturedLogger {
  logger: Logger;
  lines: { level: number; msg: string; [key: string]: unknown }[];
}

/** Creates a logger whose JSON lines are kept in memory, at debug level. */
export function captureLogger(): CapturedLogger {
  const lines: CapturedLogger['lines'] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') lines.push(JSON.parse(line) as CapturedLogger['lines'][number]);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, destination), lines };
}

export const PINO_LEVELS = Object.freeze({ debug: 20, info: 30, warn: 40, error: 50 });
