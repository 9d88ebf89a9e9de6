// The aggregator's HTTP server: JSON and text routes, and the routing of WebSocket upgrades
// to the sidecar ingest and the viewer stream. Both WebSocket kinds authenticate in the
// `upgrade` handler and reject with 401, 403, 429 or 503 before a socket is accepted.

import {
  maxHeaderSize,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../shared/logger.ts';
import {
  CLOSE_CODES,
  INGEST_PATH,
  MAX_INGEST_MESSAGE_BYTES,
  WATCH_PATH,
  type JobProgress,
} from '../shared/stream-protocol.ts';
import {
  authorizationHeaderToken,
  bearerTokenOf,
  selectViewerProtocol,
} from '../shared/bearer-token.ts';
import type { AggregatorConfig } from './config.ts';
import { rejectUpgrade, sendJson, sendText } from './http-responses.ts';
import { IngestConnection, decrementCount, type IngestContext } from './ingest-handler.ts';
import type { JobRegistry } from './job-registry.ts';
import type { AggregatorMetrics } from './metrics.ts';
import type { SidecarAuthenticator, SidecarIdentity } from './sidecar-auth.ts';
import type { ViewerAuthorizer } from './viewer-auth.ts';
import { viewerSocketOf, type ViewerHub } from './viewer-hub.ts';
import { createServer, stopCertificateReload } from './tls-server.ts';
import { renderWebPage } from './web-page.ts';

const MAX_VIEWER_MESSAGE_BYTES = 4096;
/**
 * Frame size at which the ws library closes an ingest stream itself, with code 1009 and no
 * reason. Messages between MAX_INGEST_MESSAGE_BYTES and this size are closed by the ingest
 * handler with a reason. This limit bounds the memory of one connection.
 */
const INGEST_FRAME_LIMIT_BYTES = 1024 * 1024;
/** Rejected sidecar connections logged at warn level per window; the rest are counted. */
const REJECTION_LOG_LIMIT = 10;
const REJECTION_LOG_WINDOW_MS = 60_000;
const JOB_API_ROUTE = /^\/v1\/namespaces\/([^/]+)\/trainjobs\/([^/]+)$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export interface ServerContext {
  config: AggregatorConfig;
  registry: JobRegistry;
  hub: ViewerHub;
  /** undefined with `--auth none`. */
  sidecarAuth: SidecarAuthenticator | undefined;
  viewerAuth: ViewerAuthorizer;
  metrics: AggregatorMetrics;
  logger: Logger;
  isReady(): boolean;
}

export class AggregatorServer {
  readonly server: Server;
  readonly #context: ServerContext;
  readonly #ingest = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: Math.max(INGEST_FRAME_LIMIT_BYTES, MAX_INGEST_MESSAGE_BYTES),
    // Sidecars send their token in the Authorization header and offer no subprotocol, so the
    // handshake never selects one, least of all a token-carrying one.
    handleProtocols: () => false,
  });
  readonly #viewers = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: MAX_VIEWER_MESSAGE_BYTES,
    handleProtocols: selectViewerProtocol,
  });
  readonly #ingestContext: IngestContext;
  readonly #viewersPerClient = new Map<string, number>();
  readonly #alive = new WeakSet<WebSocket>();
  #heartbeat: NodeJS.Timeout | undefined;
  #closing = false;
  #rejectionLog = { windowStartMs: 0, logged: 0, suppressed: 0 };

  constructor(context: ServerContext) {
    this.#context = context;
    this.server = createServer(context.config, context.logger);
    this.#ingestContext = {
      registry: context.registry,
      metrics: context.metrics,
      logger: context.logger,
      connectionsPerPod: new Map(),
    };
    this.server.on('request', (request, response) => this.#handleRequest(request, response));
    this.server.on('upgrade', (request, socket, head) =>
      this.#handleUpgrade(request, socket, head),
    );
    this.server.on('clientError', (error, socket) => this.#onClientError(error, socket));
  }

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    const { listenHost, listenPort } = this.#context.config;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(listenPort, listenHost, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const intervalMs = this.#context.config.pingIntervalSeconds * 1000;
    this.#heartbeat = setInterval(() => this.#pingAll(), intervalMs);
    return (this.server.address() as { port: number }).port;
  }

  /** Stops accepting, closes every WebSocket as going away and closes the server. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    stopCertificateReload(this.#context.config);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of [...this.#ingest.clients, ...this.#viewers.clients]) {
      socket.close(CLOSE_CODES.goingAway, 'aggregator shutting down');
    }
    this.server.closeIdleConnections();
    setTimeout(() => {
      for (const socket of [...this.#ingest.clients, ...this.#viewers.clients]) socket.terminate();
      this.server.closeAllConnections();
    }, 1000).unref();
    await closed;
  }

  #pingAll(): void {
    for (const socket of [...this.#ingest.clients, ...this.#viewers.clients]) {
      if (!this.#alive.has(socket)) {
        socket.terminate();
        continue;
      }
      this.#alive.delete(socket);
      socket.ping();
    }
  }

  #track(socket: WebSocket): void {
    this.#alive.add(socket);
    socket.on('pong', () => this.#alive.add(socket));
    socket.on('message', () => this.#alive.add(socket));
  }

  // No request may throw out of the server's event handlers, because an exception there
  // ends the process.
  #handleRequest(request: IncomingMessage, response: ServerResponse): void {
    try {
      this.#onRequest(request, response);
    } catch (error) {
      this.#failRequest(request, response, error);
    }
  }

  #failRequest(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    this.#context.logger.error(
      { err: error, method: request.method, url: request.url },
      'HTTP request failed',
    );
    if (response.headersSent) response.destroy();
    else sendJson(response, 500, { error: 'internal error; see the aggregator log' });
  }

  #onRequest(request: IncomingMessage, response: ServerResponse): void {
    const url = parseRequestUrl(request.url);
    if (url === undefined) {
      return sendJson(response, 400, {
        error: `invalid request target ${JSON.stringify(request.url)}`,
      });
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendText(response, 405, 'only GET is supported\n');
      return;
    }
    switch (url.pathname) {
      case '/':
        return this.#sendPage(response);
      case '/healthz':
        return sendText(response, 200, 'ok\n');
      case '/readyz':
        return this.#context.isReady() && !this.#closing
          ? sendText(response, 200, 'ok\n')
          : sendText(response, 503, 'not ready: the first TrainJob list has not completed\n');
      case '/metrics':
        return sendText(
          response,
          200,
          this.#context.metrics.registry.render(),
          'text/plain; version=0.0.4; charset=utf-8',
        );
    }
    const match = JOB_API_ROUTE.exec(url.pathname);
    if (match === null) return sendJson(response, 404, { error: `no route for ${url.pathname}` });
    const namespace = decodePathSegment(match[1]!);
    const name = decodePathSegment(match[2]!);
    if (namespace === undefined || name === undefined) {
      return sendJson(response, 400, {
        error: `invalid percent-encoding in ${JSON.stringify(url.pathname)}`,
      });
    }
    this.#sendJob(request, response, namespace, name).catch((error: unknown) =>
      this.#failRequest(request, response, error),
    );
  }

  #sendPage(response: ServerResponse): void {
    const { html, contentSecurityPolicy } = renderWebPage();
    response.setHeader('Content-Security-Policy', contentSecurityPolicy);
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Referrer-Policy', 'no-referrer');
    sendText(response, 200, html, 'text/html; charset=utf-8');
  }

  async #sendJob(
    request: IncomingMessage,
    response: ServerResponse,
    namespace: string,
    name: string,
  ): Promise<void> {
    if (!DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) {
      return sendJson(response, 400, { error: 'invalid namespace or TrainJob name' });
    }
    const auth = await this.#context.viewerAuth.authorize(bearerTokenOf(request), namespace, name);
    if (!auth.ok) {
      this.#context.metrics.viewersRejected.inc({ reason: String(auth.status) });
      return sendJson(response, auth.status, { error: auth.reason });
    }
    const state = this.#context.registry.visibleJob(namespace, name);
    if (state === undefined)
      return sendJson(response, 404, {
        error: `no progress known for TrainJob ${namespace}/${name}`,
      });
    sendJson(response, 200, { job: state.progress(), history: state.history.entries() });
  }

  #handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      this.#onUpgrade(request, socket, head);
    } catch (error) {
      this.#failUpgrade(request, socket, error);
    }
  }

  #failUpgrade(request: IncomingMessage, socket: Duplex, error: unknown): void {
    this.#context.logger.error({ err: error, url: request.url }, 'WebSocket upgrade failed');
    rejectUpgrade(socket, 500, 'internal error; see the aggregator log');
  }

  #onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (error) =>
      this.#context.logger.debug({ err: error }, 'upgrade socket error'),
    );
    if (this.#closing) return rejectUpgrade(socket, 503, 'aggregator shutting down');
    const url = parseRequestUrl(request.url);
    if (url === undefined) {
      return rejectUpgrade(socket, 400, `invalid request target ${JSON.stringify(request.url)}`);
    }
    const handler =
      url.pathname === INGEST_PATH
        ? this.#upgradeIngest(request, socket, head)
        : url.pathname === WATCH_PATH
          ? this.#upgradeViewer(request, socket, head, url)
          : undefined;
    if (handler === undefined) return rejectUpgrade(socket, 404, `no WebSocket at ${url.pathname}`);
    handler.catch((error: unknown) => this.#failUpgrade(request, socket, error));
  }

  // Answers a request that Node's HTTP parser rejected, such as one whose headers exceed
  // the maximum header size, before closing the connection.
  #onClientError(error: Error & { code?: string }, socket: Duplex): void {
    if (error.code !== 'ECONNRESET' && socket.writable) {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body =
        status === 431
          ? `request headers exceed the maximum of ${maxHeaderSize} bytes\n`
          : `invalid HTTP request: ${error.code ?? error.message}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n` +
          `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  }

  async #upgradeIngest(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { config, metrics, sidecarAuth } = this.#context;
    let identity: SidecarIdentity | undefined;
    if (sidecarAuth !== undefined) {
      const token = authorizationHeaderToken(request);
      const result =
        token === undefined
          ? ({ ok: false, status: 401, reason: 'missing bearer token' } as const)
          : await sidecarAuth.authenticate(token);
      if (!result.ok) {
        metrics.ingestRejected.inc({ reason: String(result.status) });
        this.#logRejection(result.status, result.reason, request.socket.remoteAddress);
        return rejectUpgrade(socket, result.status, result.reason);
      }
      identity = result.identity;
      const watched = config.watchNamespace;
      if (watched !== undefined && identity.namespace !== watched) {
        metrics.ingestRejected.inc({ reason: '403' });
        return rejectUpgrade(socket, 403, `this aggregator serves namespace ${watched} only`);
      }
      const podKey = `${identity.namespace}/${identity.podUid}`;
      if ((this.#ingestContext.connectionsPerPod.get(podKey) ?? 0) >= config.maxConnectionsPerPod) {
        metrics.ingestRejected.inc({ reason: '429' });
        return rejectUpgrade(socket, 429, `too many connections from pod ${identity.podName}`);
      }
    }
    this.#ingest.handleUpgrade(request, socket, head, (ws) => {
      this.#track(ws);
      if (identity !== undefined)
        this.#claimPodSlot(ws, `${identity.namespace}/${identity.podUid}`);
      const settings = {
        identity,
        messagesPerSecond: config.ingestMessagesPerSecond,
        messageBurst: config.ingestMessageBurst,
        maxConnectionsPerPod: config.maxConnectionsPerPod,
      };
      new IngestConnection(ws, settings, this.#ingestContext);
    });
  }

  // Logs at most REJECTION_LOG_LIMIT rejected sidecar connections per window at warn level,
  // so a client retrying a bad token cannot flood the log. The rest are logged at debug and
  // counted in the next warn line.
  #logRejection(status: number, reason: string, remote: string | undefined): void {
    const { logger } = this.#context;
    const now = Date.now();
    const log = this.#rejectionLog;
    if (now - log.windowStartMs >= REJECTION_LOG_WINDOW_MS) {
      log.windowStartMs = now;
      log.logged = 0;
    }
    if (log.logged >= REJECTION_LOG_LIMIT) {
      log.suppressed++;
      logger.debug({ status, reason, remote }, 'sidecar connection rejected');
      return;
    }
    log.logged++;
    const suppressed = log.suppressed;
    log.suppressed = 0;
    logger.warn(
      {
        status,
        reason,
        remote,
        ...(suppressed > 0 ? { suppressedSinceLastWarning: suppressed } : {}),
      },
      'sidecar connection rejected',
    );
  }

  #snapshot(namespace: string, name: string | undefined): JobProgress[] {
    const { registry } = this.#context;
    if (name === undefined) return registry.visibleJobs(namespace).map((job) => job.progress());
    const job = registry.visibleJob(namespace, name);
    return job === undefined ? [] : [job.progress()];
  }

  #claimPodSlot(ws: WebSocket, podKey: string): void {
    const slots = this.#ingestContext.connectionsPerPod;
    slots.set(podKey, (slots.get(podKey) ?? 0) + 1);
    ws.on('close', () => decrementCount(slots, podKey));
  }

  async #upgradeViewer(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
  ): Promise<void> {
    const { config, metrics, hub, viewerAuth } = this.#context;
    const namespace = url.searchParams.get('namespace') ?? '';
    const name = url.searchParams.get('name') || undefined;
    if (!DNS_LABEL.test(namespace) || (name !== undefined && !DNS_SUBDOMAIN.test(name))) {
      metrics.viewersRejected.inc({ reason: '400' });
      return rejectUpgrade(socket, 400, 'expected ?namespace=NS and optionally &name=NAME');
    }
    const auth = await viewerAuth.authorize(bearerTokenOf(request), namespace, name);
    if (!auth.ok) {
      metrics.viewersRejected.inc({ reason: String(auth.status) });
      return rejectUpgrade(socket, auth.status, auth.reason);
    }
    const client = config.auth === 'none' ? (request.socket.remoteAddress ?? 'unknown') : auth.user;
    if ((this.#viewersPerClient.get(client) ?? 0) >= config.maxViewersPerClient) {
      metrics.viewersRejected.inc({ reason: '429' });
      return rejectUpgrade(socket, 429, `too many open viewers for ${client}`);
    }
    this.#viewers.handleUpgrade(request, socket, head, (ws) => {
      this.#track(ws);
      this.#viewersPerClient.set(client, (this.#viewersPerClient.get(client) ?? 0) + 1);
      const viewer = hub.add(viewerSocketOf(ws), namespace, name, this.#snapshot(namespace, name));
      metrics.viewers.inc();
      ws.on('close', () => {
        hub.remove(viewer);
        decrementCount(this.#viewersPerClient, client);
        metrics.viewers.dec();
      });
      ws.on('error', () => ws.terminate());
    });
  }
}

/** Parses a request target; returns undefined when it is not a valid path or URL. */
function parseRequestUrl(target: string | undefined): URL | undefined {
  return URL.parse(target ?? '/', 'http://aggregator') ?? undefined;
}

function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
