// Parsing and checks of request targets, shared by the HTTP routes and the WebSocket upgrades.

/** Character pattern of a DNS-1123 label, such as a namespace name. Lengths are not checked. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Character pattern of a DNS-1123 subdomain, such as a TrainJob name. Lengths are not checked. */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Parses a request target; returns undefined when it is not a valid path or URL. */
export function parseRequestUrl(target: string | undefined): URL | undefined {
  return URL.parse(target ?? '/', 'http://aggregator') ?? undefined;
}

/** Decodes a percent-encoded path segment, or returns undefined when the encoding is invalid. */
export function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
