// The TrainJobs that the aggregator tracks, fed by the TrainJob watch and by sidecar
// streams. It applies each change to the job's state and passes it on: to the write
// scheduler, to the final capture when a job reaches Complete or Failed, and to viewers.

import type { Logger } from '../shared/logger.ts';
import type { MetricsSample } from '../shared/metrics-sample.ts';
import type { JobProgress } from '../shared/stream-protocol.ts';
import type { TrainJobObject } from '../shared/trainjob.ts';
import type { FinalCaptureInputs, FinalSource } from './job-state.ts';
import { JobState, jobKey } from './job-state.ts';
import { chooseFinalSample } from './final-capture.ts';

/** How long a deleted TrainJob's samples are dropped instead of starting a new state. */
export const TOMBSTONE_MS = 10 * 60 * 1000;
/** How long a job that the watch does not know, with no sidecar connected, is kept. */
export const UNKNOWN_JOB_IDLE_MS = 60 * 1000;

export interface JobRegistryDeps {
  historyLimit: number;
  /** Byte budget of each job's history; DEFAULT_HISTORY_BYTES when undefined. */
  historyBytes?: number;
  logger: Logger;
  scheduler: { schedule(state: JobState): void; forget(state: JobState): void };
  viewers: {
    publish(progress: JobProgress): void;
    publishRemoved(namespace: string, name: string): void;
  };
  /** Chooses the sample of the final status; must not reject. */
  captureFinal(
    state: JobState,
    inputs: FinalCaptureInputs,
  ): Promise<{ sample: MetricsSample; source: FinalSource }>;
  onFinalCaptured?(state: JobState, source: FinalSource): void;
  now?: () => number;
}

export class JobRegistry {
  readonly #jobs = new Map<string, JobState>();
  readonly #tombstones = new Map<string, number>();
  readonly #deps: JobRegistryDeps;
  readonly #now: () => number;
  #synced = false;

  constructor(deps: JobRegistryDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
  }

  get size(): number {
    return this.#jobs.size;
  }

  /** Whether the first TrainJob list has been applied. */
  get synced(): boolean {
    return this.#synced;
  }

  get(namespace: string, name: string): JobState | undefined {
    return this.#jobs.get(jobKey(namespace, name));
  }

  /** Returns the jobs that viewers see: opted in or with a status, in one namespace or all. */
  visibleJobs(namespace?: string): JobState[] {
    return [...this.#jobs.values()].filter(
      (state) => (namespace === undefined || state.namespace === namespace) && isVisible(state),
    );
  }

  /** Returns the job if viewers may see it. */
  visibleJob(namespace: string, name: string): JobState | undefined {
    const state = this.get(namespace, name);
    return state !== undefined && isVisible(state) ? state : undefined;
  }

  /** Applies the TrainJob of an ADDED or MODIFIED event. */
  applyTrainJob(trainJob: TrainJobObject): void {
    const { namespace, name } = trainJob.metadata;
    const key = jobKey(namespace, name);
    this.#tombstones.delete(key);
    const state = this.#jobs.get(key) ?? this.#create(namespace, name);
    const change = state.applyTrainJob(trainJob, this.#now());
    if (change.pollIntervalWarning !== undefined) {
      this.#deps.logger.warn({ trainJob: key }, change.pollIntervalWarning);
    }
    if (change.phaseChanged)
      this.#deps.logger.info({ trainJob: key, phase: state.phase }, 'TrainJob phase changed');
    if (state.needsFinalCapture) this.#startFinalCapture(state);
    this.#changed(state);
  }

  /** Applies a complete list: every listed job is applied and every other known job removed. */
  applyList(trainJobs: readonly TrainJobObject[]): void {
    const listed = new Set<string>();
    for (const trainJob of trainJobs) {
      listed.add(jobKey(trainJob.metadata.namespace, trainJob.metadata.name));
      this.applyTrainJob(trainJob);
    }
    for (const state of [...this.#jobs.values()]) {
      if (state.known && !listed.has(state.key)) this.remove(state.namespace, state.name);
    }
    this.#synced = true;
  }

  /** Drops a deleted TrainJob's state, and its samples for a while. */
  remove(namespace: string, name: string): void {
    const key = jobKey(namespace, name);
    this.#tombstones.set(key, this.#now() + TOMBSTONE_MS);
    const state = this.#jobs.get(key);
    if (state === undefined) return;
    this.#jobs.delete(key);
    this.#deps.scheduler.forget(state);
    this.#deps.viewers.publishRemoved(namespace, name);
    this.#deps.logger.info({ trainJob: key }, 'TrainJob deleted, state dropped');
  }

  /**
   * Returns the state that a sidecar's samples go to, creating it when the watch has not
   * reported the job yet. Returns undefined for a job deleted a short while ago.
   */
  stateForSamples(namespace: string, name: string): JobState | undefined {
    const key = jobKey(namespace, name);
    const tombstone = this.#tombstones.get(key);
    if (tombstone !== undefined && tombstone > this.#now()) return undefined;
    return this.#jobs.get(key) ?? this.#create(namespace, name);
  }

  /** Records a sample; returns false when the job no longer takes samples (it has ended). */
  recordSample(state: JobState, sample: MetricsSample, observedAt: Date): boolean {
    if (!state.recordSample(sample, observedAt, this.#now())) return false;
    this.#changed(state);
    return true;
  }

  /** Tells viewers about a change that happened outside the registry, such as a write. */
  publish(state: JobState): void {
    if (this.#jobs.get(state.key) === state && isVisible(state))
      this.#deps.viewers.publish(state.progress());
  }

  /** Removes expired tombstones and idle jobs that the watch never reported. */
  sweep(): void {
    const now = this.#now();
    for (const [key, expiresAt] of this.#tombstones) {
      if (expiresAt <= now) this.#tombstones.delete(key);
    }
    if (!this.#synced) return;
    for (const state of [...this.#jobs.values()]) {
      if (
        !state.known &&
        state.connections === 0 &&
        now - state.lastActivityMs > UNKNOWN_JOB_IDLE_MS
      ) {
        this.#jobs.delete(state.key);
        this.#deps.scheduler.forget(state);
      }
    }
  }

  #create(namespace: string, name: string): JobState {
    const state = new JobState(
      namespace,
      name,
      this.#deps.historyLimit,
      this.#now(),
      this.#deps.historyBytes,
    );
    this.#jobs.set(state.key, state);
    return state;
  }

  #changed(state: JobState): void {
    this.#deps.scheduler.schedule(state);
    this.publish(state);
  }

  #startFinalCapture(state: JobState): void {
    const inputs = state.beginFinalCapture();
    const capture = this.#deps.captureFinal(state, inputs).catch((error: unknown) => {
      this.#deps.logger.error(
        { err: error, trainJob: state.key },
        "final capture failed, using the job's own data",
      );
      return chooseFinalSample({ terminationMessage: undefined, ...inputs });
    });
    void capture.then((choice) => {
      state.completeFinalCapture(choice.sample, choice.source, this.#now());
      if (this.#jobs.get(state.key) !== state) return;
      this.#deps.onFinalCaptured?.(state, choice.source);
      this.#changed(state);
    });
  }
}

function isVisible(state: JobState): boolean {
  return state.known ? state.optedIn || state.hasStatus : state.connections > 0;
}
