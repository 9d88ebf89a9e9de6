// The webhook's HTTPS server: POST /mutate, GET /healthz, GET /readyz and GET /metrics.
//
// /mutate responds to every well-formed AdmissionReview with HTTP 200. Any other request gets
// an HTTP error: 405 for another method, 415 for a content type other than JSON, 413 for a
// body over MAX_REQUEST_BODY_BYTES, 400 for a body that is not an admission.k8s.io/v1
// AdmissionReview with a request uid. The API server counts such an error as a webhook
// failure, so with failurePolicy Ignore it admits the pod unchanged.

import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { parseGoDurationMilliseconds } from '../shared/annotations.ts';
import type { Logger } from '../shared/logger.ts';
import type { AdmissionHandler } from './admission-handler.ts';
import {
  erroredResponse,
  parseAdmissionReview,
  serializeReview,
  type AdmissionResponse,
} from './admission-review.ts';
import { METRICS_CONTENT_TYPE, type WebhookMetrics } from './metrics.ts';

/**
 * Largest accepted request body: 3 MiB, the API server's own default limit on request bodies
 * (`--max-request-body-bytes`), so any pod that it accepted fits in the review around it.
 */
export const MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;
/** Timeout that the API server applies when a request names none, 10 s as in admission/v1. */
const DEFAULT_REVIEW_TIMEOUT_MS = 10_000;
/** Time kept back from the API server's timeout to write the response and cross the network. */
const MIN_ANSWER_MARGIN_MS = 100;
const MIN_REVIEW_BUDGET_MS = 50;
/** Responses to HTTP parse errors, by Node error code, matching Node's default handler. */
const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

export interface TlsMaterial {
  certificatePem: string;
  privateKeyPem: string;
}

export interface Readiness {
  /** Names of the conditions still missing; empty when ready. */
  pending(): string[];
}

export interface WebhookServerOptions {
  handler: AdmissionHandler;
  metrics: WebhookMetrics;
  logger: Logger;
  readiness: Readiness;
  tls: TlsMaterial;
}

/**
 * Creates the HTTPS server; the caller listens, and swaps certificates with setSecureContext.
 * No request, malformed connection or failed TLS handshake can throw out of its handlers.
 */
export function createWebhookServer(options: WebhookServerOptions): https.Server {
  const server = https.createServer(
    { cert: options.tls.certificatePem, key: options.tls.privateKeyPem, minVersion: 'TLSv1.2' },
    (request, response) => {
      try {
        route(options, request, response);
      } catch (error) {
        respondToUnexpectedError(options, request, response, undefined, error);
      }
    },
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    options.logger.debug({ err: error }, 'malformed HTTP request, closing the connection');
    closeClientSocket(socket, error.code);
  });
  server.on('tlsClientError', (error: Error, socket: Duplex) => {
    options.logger.debug({ err: error }, 'TLS handshake failed, closing the connection');
    socket.destroy();
  });
  // Without a listener, an 'error' event such as a failed accept() (EMFILE) ends the process.
  server.on('error', (error: Error) => {
    options.logger.error({ err: error }, 'webhook HTTPS server error');
  });
  return server;
}

// Sends the response that Node sends to an HTTP parse error without a 'clientError' listener,
// then closes the connection.
function closeClientSocket(socket: Duplex, code: string | undefined): void {
  try {
    if (code !== 'ECONNRESET' && socket.writable) {
      const status = CLIENT_ERROR_STATUS[code ?? ''] ?? '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    }
  } finally {
    socket.destroy();
  }
}

function route(
  options: WebhookServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const path = (request.url ?? '/').split('?', 1)[0];
  const isGet = request.method === 'GET' || request.method === 'HEAD';
  if (path === '/mutate') return handleMutate(options, request, response);
  if (path === '/healthz' && isGet) return sendText(response, 200, 'ok');
  if (path === '/readyz' && isGet) {
    const pending = options.readiness.pending();
    if (pending.length === 0) return sendText(response, 200, 'ok');
    return sendText(response, 503, `not ready: waiting for ${pending.join(', ')}`);
  }
  if (path === '/metrics' && isGet) {
    response.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE });
    response.end(options.metrics.registry.render());
    return;
  }
  sendText(response, 404, `not found: ${request.method} ${path}`);
}

function handleMutate(
  options: WebhookServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const startedAt = performance.now();
  const reject = (status: number, message: string): void => {
    options.metrics.rejectedRequests.inc([String(status)]);
    options.logger.warn(
      { status, remoteAddress: request.socket.remoteAddress },
      `rejected admission request: ${message}`,
    );
    sendText(response, status, message, status === 413);
  };
  if (request.method !== 'POST') {
    response.setHeader('Allow', 'POST');
    return reject(405, `method ${request.method} not allowed, use POST`);
  }
  const mediaType = (request.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    return reject(
      415,
      `unsupported content type ${JSON.stringify(request.headers['content-type'] ?? '')}, expected application/json`,
    );
  }
  const declaredLength = Number(request.headers['content-length'] ?? 0);
  if (declaredLength > MAX_REQUEST_BODY_BYTES) {
    return reject(
      413,
      `request body of ${declaredLength} bytes exceeds the limit of ${MAX_REQUEST_BODY_BYTES} bytes`,
    );
  }
  readBody(request, MAX_REQUEST_BODY_BYTES)
    .then(
      (body) => {
        if (body === undefined) {
          return reject(413, `request body exceeds the limit of ${MAX_REQUEST_BODY_BYTES} bytes`);
        }
        return answerReview(options, request, response, body, startedAt);
      },
      (error: unknown) =>
        options.logger.warn({ err: error }, 'reading an admission request failed'),
    )
    .catch((error: unknown) =>
      respondToUnexpectedError(options, request, response, undefined, error),
    );
}

// Catches any error thrown while building or sending the response, so that a request cannot
// end the process.
async function answerReview(
  options: WebhookServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
  body: string,
  startedAt: number,
): Promise<void> {
  let uid: string | undefined;
  try {
    const parsed = parseAdmissionReview(body);
    if (!parsed.ok) {
      options.metrics.rejectedRequests.inc(['400']);
      options.logger.warn({ remoteAddress: request.socket.remoteAddress }, parsed.message);
      return sendText(response, 400, parsed.message);
    }
    uid = parsed.request.uid;
    const answer = await options.handler.review(parsed.request, reviewBudgetMs(request.url ?? ''));
    sendReview(response, answer);
    options.metrics.admissionDuration.observe((performance.now() - startedAt) / 1000);
  } catch (error) {
    respondToUnexpectedError(options, request, response, uid, error);
  }
}

/**
 * Responds to a request whose handling threw, and never throws itself. A review with a known uid
 * gets HTTP 200, allowed, no patch and a warning, so the pod is admitted as with failurePolicy
 * Ignore but the user sees why. Without a uid the response is a JSON error: 400 on /mutate and
 * 500 on other paths. Every case is logged and counted.
 */
function respondToUnexpectedError(
  options: WebhookServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
  uid: string | undefined,
  error: unknown,
): void {
  try {
    const path = (request.url ?? '/').split('?', 1)[0];
    options.logger.error(
      { err: error, uid, path, remoteAddress: request.socket.remoteAddress },
      'answering a webhook request failed',
    );
    if (uid !== undefined) options.metrics.admissions.inc(['error', 'internal']);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    if (uid !== undefined) {
      sendReview(response, erroredResponse(uid, 'internal error in the webhook'));
      return;
    }
    const status = path === '/mutate' ? 400 : 500;
    if (status === 400) options.metrics.rejectedRequests.inc(['400']);
    const payload = JSON.stringify({ error: 'internal error in the webhook' });
    response.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(payload),
      Connection: 'close',
    });
    response.end(payload);
  } catch {
    response.destroy();
  }
}

function sendReview(response: ServerResponse, answer: AdmissionResponse): void {
  const payload = serializeReview(answer);
  response.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(payload),
  });
  response.end(payload);
}

/**
 * Returns how long the webhook may take, from the `timeout` query parameter that the API
 * server adds (a Go duration such as `10s`), less a margin for writing the response.
 */
export function reviewBudgetMs(url: string): number {
  const query = url.indexOf('?');
  const text = query < 0 ? null : new URLSearchParams(url.slice(query + 1)).get('timeout');
  const parsed = text === null ? undefined : parseGoDurationMilliseconds(text);
  const timeoutMs = parsed !== undefined && parsed > 0 ? parsed : DEFAULT_REVIEW_TIMEOUT_MS;
  const margin = Math.max(MIN_ANSWER_MARGIN_MS, timeoutMs * 0.1);
  return Math.max(MIN_REVIEW_BUDGET_MS, timeoutMs - margin);
}

// Resolves with undefined as soon as the body grows past `limit`, and stops reading it.
function readBody(request: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.removeAllListeners('data');
        request.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks, size).toString('utf8')));
    request.on('error', reject);
  });
}

function sendText(response: ServerResponse, status: number, text: string, close = false): void {
  const headers: Record<string, string | number> = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  };
  if (close) headers.Connection = 'close';
  response.writeHead(status, headers);
  response.end(text);
}
