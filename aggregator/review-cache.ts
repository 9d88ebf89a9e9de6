// A bounded cache of authentication and authorization results, keyed by a hash of the token
// (never the token itself) and a scope. Concurrent lookups of one key share a single
// request, so a burst of connections with the same token costs one review.

import { createHash } from 'node:crypto';

export interface CachedResult<T> {
  value: T;
  /** How long the result may be reused; 0 or less means not at all. */
  ttlMs: number;
}

export const DEFAULT_MAX_ENTRIES = 10_000;

export class ReviewCache<T> {
  readonly #maxEntries: number;
  readonly #entries = new Map<string, { value: T; expiresAtMs: number }>();
  readonly #inFlight = new Map<string, Promise<T>>();

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Returns the cached value of `key`, or loads it; a load that throws is not cached. */
  async get(key: string, nowMs: number, load: () => Promise<CachedResult<T>>): Promise<T> {
    const cached = this.#entries.get(key);
    if (cached !== undefined && cached.expiresAtMs > nowMs) return cached.value;
    if (cached !== undefined) this.#entries.delete(key);
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;

    const request = load().then((result) => {
      if (result.ttlMs > 0) this.#store(key, result.value, nowMs + result.ttlMs);
      return result.value;
    });
    this.#inFlight.set(key, request);
    try {
      return await request;
    } finally {
      this.#inFlight.delete(key);
    }
  }

  #store(key: string, value: T, expiresAtMs: number): void {
    // Maps iterate in insertion order, so the first key is the oldest entry.
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expiresAtMs });
  }
}

/** Returns a cache key for a token and a scope; the token cannot be read back from it. */
export function tokenCacheKey(token: string, scope = ''): string {
  return createHash('sha256').update(token).update('\0').update(scope).digest('base64url');
}

/**
 * Returns the `exp` claim of a JWT in milliseconds, without verifying the token. Only for
 * bounding cache lifetimes: the token was verified by a TokenReview.
 */
export function tokenExpiryMs(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Returns how long a review of `token` may be reused: the configured time, capped by its expiry. */
export function reviewTtlMs(token: string, cacheMs: number, nowMs: number): number {
  const expiry = tokenExpiryMs(token);
  return expiry === undefined ? cacheMs : Math.min(cacheMs, expiry - nowMs);
}
