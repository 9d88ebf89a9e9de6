// The global budget for TrainJob writes: one token bucket shared by every job, so the
// number of API writes per second stays bounded whatever the number of jobs.
//
// Each job has at most one queued request. Requests for final statuses are granted before
// all others. Within a priority, requests are granted in the order they were made, and a
// job that writes again goes to the back of the queue. So jobs take turns (round-robin),
// and a busy job cannot starve a quiet one.

import { TokenBucket } from './token-bucket.ts';

export type WritePriority = 'terminal' | 'normal';

/** A request granted by `take`, with how long it waited in the queue. */
export interface WriteGrant {
  key: string;
  priority: WritePriority;
  waitedMs: number;
}

export interface WriteBudgetOptions {
  writesPerSecond: number;
  burst: number;
}

export class WriteBudget {
  readonly #bucket: TokenBucket;
  // A Set iterates in insertion order, so it is a FIFO queue without duplicates.
  readonly #terminal = new Set<string>();
  readonly #normal = new Set<string>();
  readonly #requestedAt = new Map<string, number>();

  constructor(options: WriteBudgetOptions, nowMs: number) {
    this.#bucket = new TokenBucket(options.writesPerSecond, options.burst, nowMs);
  }

  /** Number of queued requests. */
  get size(): number {
    return this.#terminal.size + this.#normal.size;
  }

  has(key: string): boolean {
    return this.#terminal.has(key) || this.#normal.has(key);
  }

  /**
   * Queues a write for `key`. A key already queued keeps its place, except that a terminal
   * request moves a normal one into the terminal queue.
   */
  request(key: string, priority: WritePriority, nowMs: number): void {
    if (priority === 'terminal' && !this.#terminal.has(key)) {
      this.#normal.delete(key);
      this.#terminal.add(key);
    } else if (priority === 'normal' && !this.has(key)) {
      this.#normal.add(key);
    }
    if (!this.#requestedAt.has(key)) this.#requestedAt.set(key, nowMs);
  }

  cancel(key: string): void {
    this.#terminal.delete(key);
    this.#normal.delete(key);
    this.#requestedAt.delete(key);
  }

  /** Removes and returns the next request when a token is available, terminal ones first. */
  take(nowMs: number): WriteGrant | undefined {
    const next = this.#peek();
    if (next === undefined || !this.#bucket.tryTake(nowMs)) return undefined;
    const [key, priority] = next;
    (priority === 'terminal' ? this.#terminal : this.#normal).delete(key);
    const requestedAt = this.#requestedAt.get(key) ?? nowMs;
    this.#requestedAt.delete(key);
    return { key, priority, waitedMs: Math.max(0, nowMs - requestedAt) };
  }

  /** Takes tokens for extra API calls made under one grant, such as the status mirror. */
  charge(nowMs: number, cost: number): void {
    this.#bucket.charge(nowMs, cost);
  }

  /** Milliseconds until the next request can be granted, or undefined when none is queued. */
  waitMs(nowMs: number): number | undefined {
    return this.size === 0 ? undefined : this.#bucket.waitMs(nowMs);
  }

  #peek(): [string, WritePriority] | undefined {
    for (const key of this.#terminal) return [key, 'terminal'];
    for (const key of this.#normal) return [key, 'normal'];
    return undefined;
  }
}
