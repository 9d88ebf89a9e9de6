// Carries out the write decisions of every job: it waits for the time a job's write is due,
// queues it in the global write budget, performs it, and retries failures with capped
// exponential backoff. Each job has at most one write in flight, so an older value can never
// land after a newer one.

import type { Logger } from '../shared/logger.ts';
import { formatTrainerStatus, toTrainerStatusObject } from '../shared/trainer-status.ts';
import { backoffDelayMs, type BackoffPolicy } from '../shared/backoff.ts';
import type { JobState, StatusToWrite } from './job-state.ts';
import { describeApiError } from '../shared/kube-errors.ts';
import type { AggregatorMetrics } from './metrics.ts';
import { toMirroredStatus } from './status-mirror.ts';
import type { TrainJobWriter, WriteOutcome } from './status-writer.ts';
import { WriteBudget } from './write-budget.ts';

export const WRITE_RETRY_POLICY: BackoffPolicy = Object.freeze({ initialMs: 500, maxMs: 30_000 });
const FLUSH_POLL_MS = 25;

export interface WriteSchedulerOptions {
  writesPerSecond: number;
  writeBurst: number;
  refreshIntervals: number;
  mirror: boolean;
  retryPolicy?: BackoffPolicy;
  now?: () => number;
}

export interface WriteSchedulerHooks {
  logger: Logger;
  metrics: Pick<AggregatorMetrics, 'writes' | 'writeBudgetWaits' | 'writeBudgetWaitSeconds'>;
  /** Called after a successful write, e.g. to tell viewers that the final status is on the object. */
  onWritten(state: JobState, final: boolean): void;
  /** Called when a write finds the TrainJob deleted. */
  onGone(state: JobState): void;
}

interface Entry {
  state: JobState;
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
  attempt: number;
  retryAtMs: number;
  /** A content that the API server rejected; it is not written again. */
  rejectedContent: string | undefined;
}

export class WriteScheduler {
  readonly #writer: TrainJobWriter;
  readonly #options: WriteSchedulerOptions;
  readonly #hooks: WriteSchedulerHooks;
  readonly #now: () => number;
  readonly #budget: WriteBudget;
  readonly #entries = new Map<string, Entry>();
  #pumpTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(writer: TrainJobWriter, options: WriteSchedulerOptions, hooks: WriteSchedulerHooks) {
    this.#writer = writer;
    this.#options = options;
    this.#hooks = hooks;
    this.#now = options.now ?? Date.now;
    const budget = { writesPerSecond: options.writesPerSecond, burst: options.writeBurst };
    this.#budget = new WriteBudget(budget, this.#now());
  }

  /** Number of jobs waiting for the write budget. */
  get queueLength(): number {
    return this.#budget.size;
  }

  /** Re-evaluates a job's next write; call it after anything about the job changed. */
  schedule(state: JobState): void {
    const entry = this.#entryOf(state);
    if (entry.inFlight || this.#stopped) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const now = this.#now();
    const decision = state.nextWrite(now, this.#options.refreshIntervals, this.#options.mirror);
    const target = state.statusToWrite();
    if (decision.kind === 'none' || target?.content === entry.rejectedContent) {
      this.#budget.cancel(state.key);
      return;
    }
    const startAtMs = Math.max(decision.kind === 'later' ? decision.atMs : now, entry.retryAtMs);
    if (startAtMs > now) {
      this.#budget.cancel(state.key);
      entry.timer = setTimeout(() => this.schedule(state), startAtMs - now);
      return;
    }
    const priority = decision.kind === 'now' && decision.reason === 'final' ? 'terminal' : 'normal';
    this.#budget.request(state.key, priority, now);
    this.#pump();
  }

  /** Drops a job: cancels its timer and queued request. A write in flight still completes. */
  forget(state: JobState): void {
    const entry = this.#entries.get(state.key);
    if (entry?.state !== state) return;
    clearTimeout(entry.timer);
    this.#budget.cancel(state.key);
    this.#entries.delete(state.key);
  }

  /**
   * Resolves true once no captured final status waits to be written and no write is in
   * flight, or false after `timeoutMs`.
   */
  async flushFinal(timeoutMs: number): Promise<boolean> {
    const deadline = this.#now() + timeoutMs;
    for (;;) {
      if (!this.#hasPendingFinal()) return true;
      if (this.#now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, FLUSH_POLL_MS));
    }
  }

  /** Stops all timers; writes in flight still complete. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#pumpTimer);
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
  }

  #hasPendingFinal(): boolean {
    for (const entry of this.#entries.values()) {
      const { state, inFlight } = entry;
      if (inFlight) return true;
      if (state.finalPending && entry.rejectedContent === undefined) return true;
    }
    return false;
  }

  #entryOf(state: JobState): Entry {
    let entry = this.#entries.get(state.key);
    if (entry === undefined || entry.state !== state) {
      if (entry !== undefined) clearTimeout(entry.timer);
      entry = {
        state,
        timer: undefined,
        inFlight: false,
        attempt: 0,
        retryAtMs: 0,
        rejectedContent: undefined,
      };
      this.#entries.set(state.key, entry);
    }
    return entry;
  }

  #pump(): void {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    const now = this.#now();
    for (let grant = this.#budget.take(now); grant !== undefined; grant = this.#budget.take(now)) {
      if (grant.waitedMs > 0) {
        this.#hooks.metrics.writeBudgetWaits.inc();
        this.#hooks.metrics.writeBudgetWaitSeconds.inc({}, grant.waitedMs / 1000);
      }
      const entry = this.#entries.get(grant.key);
      if (entry !== undefined) void this.#write(entry);
    }
    const waitMs = this.#budget.waitMs(now);
    if (waitMs !== undefined && !this.#stopped) {
      this.#pumpTimer = setTimeout(() => this.#pump(), Math.max(1, waitMs));
    }
  }

  async #write(entry: Entry): Promise<void> {
    const { state } = entry;
    const now = this.#now();
    const target = state.statusToWrite();
    if (target === undefined || entry.inFlight) return;
    entry.inFlight = true;
    try {
      const ok = await this.#writeTargets(entry, target, now);
      if (ok) {
        entry.attempt = 0;
        entry.retryAtMs = 0;
      }
    } catch (error) {
      // Writers return outcomes instead of throwing; this only guards against a bug.
      this.#hooks.logger.error(
        { err: error, trainJob: state.key },
        'status write failed unexpectedly',
      );
      this.#retryLater(entry, undefined);
    } finally {
      entry.inFlight = false;
    }
    if (this.#entries.get(state.key) === entry) this.schedule(state);
  }

  // Returns false when a write failed and the job must wait before the next attempt.
  async #writeTargets(entry: Entry, target: StatusToWrite, now: number): Promise<boolean> {
    const { state } = entry;
    const time = new Date(now);
    let annotationWritten = false;
    if (!(target.final && state.isWritten(target.content))) {
      const value = formatTrainerStatus(target.status, time);
      const outcome = await this.#writer.writeAnnotation(state.namespace, state.name, value);
      if (!this.#handleOutcome(entry, 'annotation', outcome, target)) return false;
      state.markWritten(target.content, now);
      annotationWritten = true;
      this.#logWrite(state, target);
      this.#hooks.onWritten(state, target.final);
    }
    if (!this.#options.mirror || (!annotationWritten && state.mirroredContent === target.content)) {
      return true;
    }
    if (annotationWritten) this.#budget.charge(now, 1);
    const status = { trainerStatus: toMirroredStatus(toTrainerStatusObject(target.status, time)) };
    const outcome = await this.#writer.applyStatus(state.namespace, state.name, status);
    if (outcome.result === 'rejected') state.mirroredContent = target.content;
    if (!this.#handleOutcome(entry, 'mirror', outcome, target)) return !target.final;
    state.mirroredContent = target.content;
    return true;
  }

  // Counts and logs an outcome; returns whether the write succeeded.
  #handleOutcome(
    entry: Entry,
    target: 'annotation' | 'mirror',
    outcome: WriteOutcome,
    status: StatusToWrite,
  ): boolean {
    this.#hooks.metrics.writes.inc({ target, result: outcome.result });
    const { state } = entry;
    const fields = { trainJob: state.key, target };
    switch (outcome.result) {
      case 'written':
        return true;
      case 'gone':
        this.#hooks.logger.info(fields, 'TrainJob not found while writing its status, dropping it');
        this.#hooks.onGone(state);
        return false;
      case 'rejected':
        if (target === 'annotation') entry.rejectedContent = status.content;
        this.#hooks.logger.error(
          { ...fields, statusCode: outcome.statusCode, error: describeApiError(outcome.error) },
          'status write rejected by the API server; this content is not retried',
        );
        return false;
      case 'retry':
        this.#retryLater(entry, outcome.retryAfterMs);
        this.#hooks.logger.warn(
          {
            ...fields,
            statusCode: outcome.statusCode,
            attempt: entry.attempt,
            retryInMs: entry.retryAtMs - this.#now(),
            error: describeApiError(outcome.error),
          },
          'status write failed, retrying',
        );
        return false;
    }
  }

  #retryLater(entry: Entry, retryAfterMs: number | undefined): void {
    entry.attempt++;
    const policy = this.#options.retryPolicy ?? WRITE_RETRY_POLICY;
    entry.retryAtMs = this.#now() + (retryAfterMs ?? backoffDelayMs(entry.attempt, policy));
  }

  #logWrite(state: JobState, target: StatusToWrite): void {
    const fields = { trainJob: state.key, final: target.final };
    if (target.final)
      this.#hooks.logger.info({ ...fields, source: state.finalSource }, 'final status written');
    else this.#hooks.logger.debug(fields, 'status written');
  }
}
