// Bearer tokens of clients: from the Authorization header, or, for viewers in browsers,
// which cannot set headers on a WebSocket, from a WebSocket subprotocol in the form that the
// Kubernetes API server also accepts: `base64url.bearer.authorization.k8s.io.<token in
// base64url>`, offered together with VIEWER_PROTOCOL.

import type { IncomingMessage } from 'node:http';

/** The subprotocol that the viewer WebSocket selects; clients that pass a token offer it. */
export const VIEWER_PROTOCOL = 'trainjob-progress.v1';
export const BEARER_PROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';

/**
 * Returns the bearer token of the Authorization header, or undefined when there is none.
 * Sidecars authenticate this way only.
 */
export function authorizationHeaderToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

/**
 * Returns the bearer token of a request from the Authorization header or, when that header
 * is absent, from the token subprotocol; undefined when it carries none.
 */
export function bearerTokenOf(request: IncomingMessage): string | undefined {
  if (request.headers.authorization !== undefined) return authorizationHeaderToken(request);
  const protocols = request.headers['sec-websocket-protocol'];
  if (protocols === undefined) return undefined;
  for (const protocol of protocols.split(',')) {
    const trimmed = protocol.trim();
    if (!trimmed.startsWith(BEARER_PROTOCOL_PREFIX)) continue;
    const encoded = trimmed.slice(BEARER_PROTOCOL_PREFIX.length);
    const token = Buffer.from(encoded, 'base64url').toString('utf8');
    return token === '' ? undefined : token;
  }
  return undefined;
}

/** Chooses VIEWER_PROTOCOL when offered, never the token-carrying one. */
export function selectViewerProtocol(offered: Set<string>): string | false {
  return offered.has(VIEWER_PROTOCOL) ? VIEWER_PROTOCOL : false;
}
