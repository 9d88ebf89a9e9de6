// The aggregator's HTTP server: its JSON and text routes, and listening and shutdown. The
// server passes WebSocket upgrades to WebSocketUpgrades in websocket-upgrades.ts.

import {
  maxHeaderSize,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../shared/logger.ts';
import { CLOSE_CODES } from '../shared/stream-protocol.ts';
import { bearerTokenOf } from '../shared/bearer-token.ts';
import type { AggregatorConfig } from './config.ts';
import { sendJson, sendText } from './http-responses.ts';
import type { JobRegistry } from './job-registry.ts';
import type { AggregatorMetrics } from './metrics.ts';
import { DNS_LABEL, DNS_SUBDOMAIN, decodePathSegment, parseRequestUrl } from './request-url.ts';
import type { SidecarAuthenticator } from './sidecar-auth.ts';
import type { ViewerAuthorizer } from './viewer-auth.ts';
import type { ViewerHub } from './viewer-hub.ts';
import { createServer, stopCertificateReload } from './tls-server.ts';
import { renderWebPage } from './web-page.ts';
import { WebSocketUpgrades } from './websocket-upgrades.ts';

const JOB_API_ROUTE = /^\/v1\/namespaces\/([^/]+)\/trainjobs\/([^/]+)$/;

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
  readonly #upgrades: WebSocketUpgrades;
  #heartbeat: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(context: ServerContext) {
    this.#context = context;
    this.server = createServer(context.config, context.logger);
    this.#upgrades = new WebSocketUpgrades(context, () => this.#closing);
    this.server.on('request', (request, response) => this.#handleRequest(request, response));
    this.server.on('upgrade', (request, socket, head) =>
      this.#upgrades.handleUpgrade(request, socket, head),
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
    this.#heartbeat = setInterval(() => this.#upgrades.pingAll(), intervalMs);
    return (this.server.address() as { port: number }).port;
  }

  /** Stops accepting, closes every WebSocket as going away and closes the server. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    stopCertificateReload(this.#context.config);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.#upgrades.sockets()) {
      socket.close(CLOSE_CODES.goingAway, 'aggregator shutting down');
    }
    this.server.closeIdleConnections();
    setTimeout(() => {
      for (const socket of this.#upgrades.sockets()) socket.terminate();
      this.server.closeAllConnections();
    }, 1000).unref();
    await closed;
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
}
