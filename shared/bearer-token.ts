// Bearer tokens of clients: from the Authorization header, or, for browsers, which cannot
// set headers on a WebSocket, from a WebSocket subprotocol in the form that the
// Kubernetes API server also accepts: `base64url.bearer.authorization.k8s.io.<token in
// base64url>`, offered together with VIEWER_PROTOCOL.

import type { IncomingMessage } from 'node:http';

/** The subprotocol that the viewer WebSocket selects; clients that pass a token offer it. */
export const VIEWER_PROTOCOL = 'trainjob-progress.v1';
export const BEARER_PROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';

/** Returns the bearer token of a request, or undefined when it carries none. */
export function bearerTokenOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1];
  }
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
