// A cache of TrainJobs fed by a list and a watch, so admissions read TrainJobs from memory.
//
// The loop lists, then watches from the list's resourceVersion. A watch that ends, or that
// client-node closes after 30 s of silence, is reopened from the last version seen. A 410
// Gone, or RELIST_INTERVAL_MS since the last list, starts over with a list. Failures back off
// with full jitter. A miss (a TrainJob created just now, or a JobSet without a TrainJob) gets
// one live read, bounded in time, whose outcome is kept for LIVE_RESULT_TTL_MS so a burst of
// pods from the same JobSet causes a single read.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../shared/logger.ts';
import type { TrainJobObject } from '../shared/trainjob.ts';
import type { TrainJobLookup, TrainJobReference } from './injection-decision.ts';
import { hasStatus } from './kube-client.ts';
import type { WebhookMetrics } from './metrics.ts';
import type { TrainJobApi, TrainJobEvent } from './trainjob-api.ts';

export interface TrainJobCacheOptions {
  api: TrainJobApi;
  logger: Logger;
  metrics?: WebhookMetrics;
  /** Time limit of the live read on a miss, in milliseconds. */
  liveReadTimeoutMs: number;
}

const LIVE_RESULT_TTL_MS = 5_000;
const MAX_LIVE_RESULTS = 1_000;
const RELIST_INTERVAL_MS = 10 * 60_000;
const BACKOFF_INITIAL_MS = 500;
const MIN_WATCH_DURATION_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

export class TrainJobCache {
  readonly #options: TrainJobCacheOptions;
  readonly #lookups = new Map<string, TrainJobLookup>();
  readonly #liveResults = new Map<string, { lookup: TrainJobLookup; expiresAt: number }>();
  readonly #liveReads = new Map<string, Promise<TrainJobLookup>>();
  readonly #stopController = new AbortController();
  #synced = false;
  #syncedWaiters = Promise.withResolvers<void>();
  #loop: Promise<void> | undefined;

  constructor(options: TrainJobCacheOptions) {
    this.#options = options;
  }

  /** True once the first list has been stored. */
  get synced(): boolean {
    return this.#synced;
  }

  get size(): number {
    return this.#lookups.size;
  }

  /** Resolves once the first list has been stored. */
  whenSynced(): Promise<void> {
    return this.#syncedWaiters.promise;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopController.abort();
    await this.#loop;
  }

  /**
   * Looks up a TrainJob: synchronously from the cache, otherwise with one shared, bounded
   * live read. A failed or timed-out read resolves to a `failed` lookup instead of rejecting.
   */
  lookup(reference: TrainJobReference): TrainJobLookup | Promise<TrainJobLookup> {
    const key = `${reference.namespace}/${reference.name}`;
    const cached = this.#lookups.get(key);
    if (cached !== undefined) {
      this.#options.metrics?.trainJobLookups.inc(['cache', 'found']);
      return cached;
    }
    const live = this.#liveResults.get(key);
    if (live !== undefined && live.expiresAt > Date.now()) return live.lookup;
    let pending = this.#liveReads.get(key);
    if (pending === undefined) {
      pending = this.#readLive(reference, key).finally(() => this.#liveReads.delete(key));
      this.#liveReads.set(key, pending);
    }
    return pending;
  }

  async #readLive(reference: TrainJobReference, key: string): Promise<TrainJobLookup> {
    const { api, liveReadTimeoutMs, metrics } = this.#options;
    const signal = AbortSignal.any([
      this.#stopController.signal,
      AbortSignal.timeout(liveReadTimeoutMs),
    ]);
    let lookup: TrainJobLookup;
    try {
      const trainJob = await untilAborted(
        api.get(reference.namespace, reference.name, signal),
        signal,
      );
      lookup = trainJob === undefined ? { status: 'not-found' } : { status: 'found', trainJob };
    } catch (error) {
      const reason = signal.aborted
        ? `timed out after ${liveReadTimeoutMs} ms`
        : (error as Error).message;
      metrics?.trainJobLookups.inc(['live', 'failed']);
      return { status: 'failed', message: `reading TrainJob ${key} failed: ${reason}` };
    }
    metrics?.trainJobLookups.inc(['live', lookup.status]);
    this.#rememberLiveResult(key, lookup);
    return lookup;
  }

  #rememberLiveResult(key: string, lookup: TrainJobLookup): void {
    if (this.#liveResults.size >= MAX_LIVE_RESULTS) {
      const oldest = this.#liveResults.keys().next();
      if (oldest.done !== true) this.#liveResults.delete(oldest.value);
    }
    this.#liveResults.set(key, { lookup, expiresAt: Date.now() + LIVE_RESULT_TTL_MS });
  }

  async #run(): Promise<void> {
    const { signal } = this.#stopController;
    let resourceVersion = '';
    let listedAt = 0;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === '' || Date.now() - listedAt > RELIST_INTERVAL_MS) {
          resourceVersion = await this.#list(signal);
          listedAt = Date.now();
        }
        const watchStartedAt = Date.now();
        await this.#options.api.watch(
          resourceVersion,
          (event) => {
            resourceVersion = this.#apply(event) ?? resourceVersion;
          },
          signal,
        );
        failures = 0;
        // A server that ends every watch at once would otherwise be called in a tight loop.
        if (Date.now() - watchStartedAt < MIN_WATCH_DURATION_MS) {
          await sleep(MIN_WATCH_DURATION_MS, undefined, { signal }).catch(() => undefined);
        }
      } catch (error) {
        if (signal.aborted) break;
        if (hasStatus(error, 410)) {
          this.#options.logger.info('TrainJob watch expired (410 Gone), listing again');
          resourceVersion = '';
          continue;
        }
        failures++;
        const delayMs =
          Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** failures);
        this.#options.logger.warn(
          { err: error, failures, retryInMs: Math.round(delayMs) },
          'TrainJob list or watch failed, retrying',
        );
        await sleep(delayMs, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  async #list(signal: AbortSignal): Promise<string> {
    const list = await this.#options.api.list(signal);
    const keys = new Set<string>();
    for (const trainJob of list.items) keys.add(this.#store(trainJob));
    for (const key of this.#lookups.keys()) {
      if (!keys.has(key)) this.#lookups.delete(key);
    }
    if (!this.#synced) {
      this.#synced = true;
      this.#syncedWaiters.resolve();
      this.#options.logger.info({ trainJobs: list.items.length }, 'TrainJob cache synced');
    }
    return list.resourceVersion;
  }

  // Returns the event's resourceVersion, the point to resume the watch from.
  #apply(event: TrainJobEvent): string | undefined {
    const { metadata } = event.object;
    if (event.type === 'ADDED' || event.type === 'MODIFIED') this.#store(event.object);
    else if (event.type === 'DELETED')
      this.#lookups.delete(`${metadata.namespace}/${metadata.name}`);
    return metadata.resourceVersion;
  }

  #store(trainJob: TrainJobObject): string {
    const key = `${trainJob.metadata.namespace}/${trainJob.metadata.name}`;
    this.#lookups.set(key, { status: 'found', trainJob });
    this.#liveResults.delete(key);
    return key;
  }
}

// Rejects once `signal` aborts, even when `promise` ignores the signal.
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise((resolve, reject) => {
    const abort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
