// The aggregator's HTTP server: JSON and text routes, and the routing of WebSocket upgrades
// to the sidecar ingest and the viewer stream. Both WebSocket kinds authenticate in the
// `upgrade` handler and reject with 401, 403, 429 or 503 before a socket is accepted.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
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
import { bearerTokenOf, selectViewerProtocol } from '../shared/bearer-token.ts';
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
    maxPayload: MAX_INGEST_MESSAGE_BYTES,
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

  constructor(context: ServerContext) {
    this.#context = context;
    this.server = createServer(context.config, context.logger);
    this.#ingestContext = {
      registry: context.registry,
      metrics: context.metrics,
      logger: context.logger,
      connectionsPerPod: new Map(),
    };
    this.server.on('request', (request, response) => this.#onRequest(request, response));
    this.server.on('upgrade', (request, socket, head) => this.#onUpgrade(request, socket, head));
    this.server.on('clientError', (_error, socket) => socket.destroy());
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

  #onRequest(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://aggregator');
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
    void this.#sendJob(
      request,
      response,
      decodeURIComponent(match[1]!),
      decodeURIComponent(match[2]!),
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

  #onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (error) =>
      this.#context.logger.debug({ err: error }, 'upgrade socket error'),
    );
    if (this.#closing) return rejectUpgrade(socket, 503, 'aggregator shutting down');
    const url = new URL(request.url ?? '/', 'http://aggregator');
    const handler =
      url.pathname === INGEST_PATH
        ? this.#upgradeIngest(request, socket, head)
        : url.pathname === WATCH_PATH
          ? this.#upgradeViewer(request, socket, head, url)
          : undefined;
    if (handler === undefined) return rejectUpgrade(socket, 404, `no WebSocket at ${url.pathname}`);
    handler.catch((error: unknown) => {
      this.#context.logger.error({ err: error }, 'WebSocket upgrade failed');
      rejectUpgrade(socket, 500, 'internal error');
    });
  }

  async #upgradeIngest(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { config, metrics, sidecarAuth, logger } = this.#context;
    let identity: SidecarIdentity | undefined;
    if (sidecarAuth !== undefined) {
      const token = bearerTokenOf(request);
      const result =
        token === undefined
          ? ({ ok: false, status: 401, reason: 'missing bearer token' } as const)
          : await sidecarAuth.authenticate(token);
      if (!result.ok) {
        metrics.ingestRejected.inc({ reason: String(result.status) });
        logger.warn(
          { status: result.status, reason: result.reason, remote: request.socket.remoteAddress },
          'sidecar connection rejected',
        );
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
