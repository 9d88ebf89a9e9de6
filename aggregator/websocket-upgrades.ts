// The WebSocket upgrades of the aggregator's HTTP server: the sidecar ingest stream and the
// viewer stream. Both kinds authenticate here and reject with 401, 403, 429 or 503 before a
// socket is accepted. This module also pings every open socket and terminates the silent ones.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
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
import { rejectUpgrade } from './http-responses.ts';
import { IngestConnection, decrementCount, type IngestContext } from './ingest-handler.ts';
import { DNS_LABEL, DNS_SUBDOMAIN, parseRequestUrl } from './request-url.ts';
import type { ServerContext } from './server.ts';
import type { SidecarIdentity } from './sidecar-auth.ts';
import { viewerSocketOf } from './viewer-hub.ts';

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

export class WebSocketUpgrades {
  readonly #context: ServerContext;
  readonly #isClosing: () => boolean;
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
  #rejectionLog = { windowStartMs: 0, logged: 0, suppressed: 0 };

  constructor(context: ServerContext, isClosing: () => boolean) {
    this.#context = context;
    this.#isClosing = isClosing;
    this.#ingestContext = {
      registry: context.registry,
      metrics: context.metrics,
      logger: context.logger,
      connectionsPerPod: new Map(),
    };
  }

  /** Returns every open ingest and viewer socket. */
  sockets(): WebSocket[] {
    return [...this.#ingest.clients, ...this.#viewers.clients];
  }

  /** Terminates the sockets that sent nothing since the last ping, and pings the others. */
  pingAll(): void {
    for (const socket of this.sockets()) {
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

  /**
   * Accepts an upgrade request on the ingest or watch path, or rejects it with an HTTP status.
   * Errors are logged and rejected with 500 rather than thrown, because an exception in the
   * server's `upgrade` handler ends the process.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
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
    if (this.#isClosing()) return rejectUpgrade(socket, 503, 'aggregator shutting down');
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
