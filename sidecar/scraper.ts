// One HTTP GET of the trainer's metrics endpoint, with a deadline and a body size cap. It
// uses node:http rather than fetch: loading undici costs several MiB of resident memory.

import { request } from 'node:http';

import { MAX_BODY_BYTES } from '../shared/metrics-sample.ts';

export const SCRAPE_TIMEOUT_MS = 2000;

/** The outcome of one scrape. `refused` is the normal state while the model loads. */
export type ScrapeResult =
  | { kind: 'ok'; body: Buffer }
  | { kind: 'http-error'; status: number }
  | { kind: 'too-large'; bytes: number }
  | { kind: 'refused' }
  | { kind: 'timeout' }
  | { kind: 'failed'; error: Error };

export interface ScrapeOptions {
  timeoutMs?: number;
  maxBodyBytes?: number;
}

/**
 * Fetches the endpoint once. Resolves with the outcome and never rejects. The timeout covers
 * connecting, the response headers and the whole body. A body beyond maxBodyBytes is aborted
 * as soon as it crosses the cap.
 */
export function scrapeMetrics(url: URL, options: ScrapeOptions = {}): Promise<ScrapeResult> {
  const timeoutMs = options.timeoutMs ?? SCRAPE_TIMEOUT_MS;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;

  return new Promise((resolve) => {
    let settled = false;
    const req = request(url, { agent: false, headers: { accept: 'application/json' } });

    const finish = (result: ScrapeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);

    req.on('error', (error: NodeJS.ErrnoException) => finish(classifyError(error)));
    req.on('response', (response) => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        finish({ kind: 'http-error', status });
        return;
      }
      const declared = Number(response.headers['content-length']);
      if (declared > maxBodyBytes) {
        finish({ kind: 'too-large', bytes: declared });
        return;
      }

      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > maxBodyBytes) finish({ kind: 'too-large', bytes: received });
        else chunks.push(chunk);
      });
      response.on('end', () => finish({ kind: 'ok', body: Buffer.concat(chunks) }));
      response.on('error', (error) => finish({ kind: 'failed', error }));
      response.on('close', () => {
        finish({ kind: 'failed', error: new Error('connection closed before the body ended') });
      });
    });
    req.end();
  });
}

function classifyError(error: NodeJS.ErrnoException): ScrapeResult {
  if (error.code === 'ECONNREFUSED') return { kind: 'refused' };
  return { kind: 'failed', error };
}
