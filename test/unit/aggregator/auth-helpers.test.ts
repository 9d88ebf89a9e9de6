import type { IncomingMessage } from 'node:http';

import { expect } from 'chai';

import { backoffDelayMs } from '../../../shared/backoff.ts';
import {
  bearerTokenOf,
  selectViewerProtocol,
  VIEWER_PROTOCOL,
} from '../../../shared/bearer-token.ts';
import {
  ReviewCache,
  reviewTtlMs,
  tokenCacheKey,
  tokenExpiryMs,
} from '../../../aggregator/review-cache.ts';

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

function jwt(claims: object): string {
  const encode = (value: object): string =>
    Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'RS256' })}.${encode(claims)}.signature`;
}

describe('bearer token', () => {
  it('reads the Authorization header', () => {
    expect(bearerTokenOf(request({ authorization: 'Bearer abc.def' }))).to.equal('abc.def');
  });

  it('rejects other schemes', () => {
    expect(bearerTokenOf(request({ authorization: 'Basic dXNlcg==' }))).to.equal(undefined);
  });

  it('reads the WebSocket subprotocol', () => {
    const encoded = Buffer.from('tok-en').toString('base64url');
    const protocols = `${VIEWER_PROTOCOL}, base64url.bearer.authorization.k8s.io.${encoded}`;
    expect(bearerTokenOf(request({ 'sec-websocket-protocol': protocols }))).to.equal('tok-en');
  });

  it('selects the viewer protocol, never the token', () => {
    const offered = new Set([VIEWER_PROTOCOL, 'base64url.bearer.authorization.k8s.io.eA']);
    expect(selectViewerProtocol(offered)).to.equal(VIEWER_PROTOCOL);
    expect(selectViewerProtocol(new Set(['other']))).to.equal(false);
  });
});

describe('review cache', () => {
  it('reuses a result until it expires', async () => {
    const cache = new ReviewCache<string>();
    let loads = 0;
    const load = (): Promise<{ value: string; ttlMs: number }> => {
      loads++;
      return Promise.resolve({ value: `v${loads}`, ttlMs: 100 });
    };
    expect(await cache.get('k', 0, load)).to.equal('v1');
    expect(await cache.get('k', 99, load)).to.equal('v1');
    expect(await cache.get('k', 100, load)).to.equal('v2');
  });

  it('shares one load between concurrent lookups', async () => {
    const cache = new ReviewCache<number>();
    let loads = 0;
    const load = async (): Promise<{ value: number; ttlMs: number }> => {
      loads++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { value: 1, ttlMs: 0 };
    };
    await Promise.all([cache.get('k', 0, load), cache.get('k', 0, load), cache.get('k', 0, load)]);
    expect(loads).to.equal(1);
    expect(cache.size).to.equal(0);
  });

  it('evicts the oldest entry when full', async () => {
    const cache = new ReviewCache<string>(2);
    const load = (value: string) => () => Promise.resolve({ value, ttlMs: 1000 });
    await cache.get('a', 0, load('a'));
    await cache.get('b', 0, load('b'));
    await cache.get('c', 0, load('c'));
    expect(await cache.get('a', 0, load('a2'))).to.equal('a2');
  });

  it('keys by a hash, not the token', () => {
    const key = tokenCacheKey('secret-token', 'scope');
    expect(key).to.not.include('secret');
    expect(key).to.not.equal(tokenCacheKey('secret-token', 'other'));
  });

  it('caps the cache time at the token expiry', () => {
    const token = jwt({ exp: 100 });
    expect(tokenExpiryMs(token)).to.equal(100_000);
    expect(reviewTtlMs(token, 60_000, 90_000)).to.equal(10_000);
    expect(reviewTtlMs(token, 60_000, 0)).to.equal(60_000);
    expect(reviewTtlMs('opaque', 60_000, 0)).to.equal(60_000);
  });
});

describe('backoff', () => {
  it('doubles up to the maximum', () => {
    const policy = { initialMs: 100, maxMs: 1000 };
    expect(
      [1, 2, 3, 4, 5, 30].map((attempt) => backoffDelayMs(attempt, policy, () => 1)),
    ).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
  });

  it('keeps at least half of the step', () => {
    expect(backoffDelayMs(3, { initialMs: 100, maxMs: 1000 }, () => 0)).to.equal(200);
  });
});
