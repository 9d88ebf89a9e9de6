// The state of one TrainJob and the decision when its annotation is written.
//
// Inputs: the TrainJob as the watch reports it, samples from its sidecars, the final status
// once captured, and each successful write. Output: `nextWrite(now)`, which decides whether the
// annotation is due now, at a later time, or not at all:
// - nothing is written for a job that the watch has not reported, that has not opted in or
//   that is suspended;
// - the first content and the final status are written at once;
// - a changed content waits until one poll interval has passed since the last write;
// - an unchanged content is rewritten only to refresh lastUpdatedTime, once every
//   `refreshIntervals` poll intervals, and only while samples keep arriving;
// - once the job is Complete or Failed, samples no longer change the status, and once the
//   final status is on the object nothing changes it.
// Contents are compared without lastUpdatedTime.

import {
  DEFAULT_POLL_INTERVAL_SECONDS,
  isProgressionTrackingEnabled,
  METRICS_POLL_INTERVAL_ANNOTATION,
  parsePollIntervalSeconds,
  PROGRESSION_TRACKING_ANNOTATION,
  TRAINER_STATUS_ANNOTATION,
} from '../shared/annotations.ts';
import type { MetricsSample } from '../shared/metrics-sample.ts';
import type { JobPhase, JobProgress } from '../shared/stream-protocol.ts';
import {
  finalStatus,
  formatTrainerStatus,
  isFinalSummary,
  parseTrainerStatus,
  runningStatus,
  toTrainerStatusObject,
  type TerminalState,
  type TrainerStatus,
} from '../shared/trainer-status.ts';
import { isTerminalPhase, trainJobPhase, type TrainJobObject } from '../shared/trainjob.ts';
import { History } from './history.ts';

export type WriteReason = 'first' | 'changed' | 'refresh' | 'final';

export type WriteDecision =
  { kind: 'none' } | { kind: 'now'; reason: WriteReason } | { kind: 'later'; atMs: number };

/** The source of a final status; the values are listed in the order they are tried. */
export type FinalSource = 'termination-message' | 'last-sample' | 'annotation' | 'none';

/** The changes from applying a TrainJob, for the caller to act on. */
export interface TrainJobChange {
  phaseChanged: boolean;
  /** Set when the poll interval annotation is invalid and was read for the first time or changed. */
  pollIntervalWarning?: string;
}

/** The status that a write should put on the object, and its content for comparisons. */
export interface StatusToWrite {
  status: TrainerStatus;
  content: string;
  final: boolean;
}

/** Inputs of the final capture that the job itself holds. */
export interface FinalCaptureInputs {
  state: TerminalState;
  lastSample: MetricsSample | undefined;
  annotationSample: MetricsSample | undefined;
}

const NO_WRITE: WriteDecision = Object.freeze({ kind: 'none' });
const CONTENT_TIME = new Date(0);

/** Formats a status with a fixed time, so that equal contents give equal strings. */
export function statusContent(status: TrainerStatus): string {
  return formatTrainerStatus(status, CONTENT_TIME);
}

interface LatestSample {
  sample: MetricsSample;
  status: TrainerStatus;
  content: string;
  observedAt: Date;
  receivedAtMs: number;
}

interface FinalRecord {
  status: TrainerStatus;
  content: string;
  at: Date;
  source: FinalSource;
}

export class JobState {
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  readonly history: History;
  /** Highest sample seq received from each pod, by pod UID. */
  readonly lastSeqByPod = new Map<string, number>();
  /** Whether the watch has reported the TrainJob. */
  known = false;
  optedIn = false;
  phase: JobPhase = 'Pending';
  pollIntervalMs = DEFAULT_POLL_INTERVAL_SECONDS * 1000;
  /** Open sidecar connections for this job. */
  connections = 0;
  lastActivityMs: number;
  /** Content of the last successful status mirror write. */
  mirroredContent: string | undefined;

  #latest: LatestSample | undefined;
  #annotation: { status: TrainerStatus; time: Date } | undefined;
  #final: FinalRecord | undefined;
  #written: { content: string; atMs: number } | undefined;
  #capturing = false;

  constructor(
    namespace: string,
    name: string,
    historyLimit: number,
    nowMs: number,
    historyBytes?: number,
  ) {
    this.namespace = namespace;
    this.name = name;
    this.key = jobKey(namespace, name);
    this.history = new History(historyLimit, historyBytes);
    this.lastActivityMs = nowMs;
  }

  /** Updates the job from the TrainJob object of a list or watch event. */
  applyTrainJob(trainJob: TrainJobObject, nowMs: number): TrainJobChange {
    const annotations = trainJob.metadata.annotations ?? {};
    const firstSight = !this.known;
    this.known = true;
    this.optedIn = isProgressionTrackingEnabled(annotations[PROGRESSION_TRACKING_ANNOTATION]);

    const interval = parsePollIntervalSeconds(annotations[METRICS_POLL_INTERVAL_ANNOTATION]);
    const intervalChanged = interval.value * 1000 !== this.pollIntervalMs;
    this.pollIntervalMs = interval.value * 1000;

    const previousPhase = this.phase;
    this.phase = trainJobPhase(trainJob);
    this.#adoptAnnotation(annotations[TRAINER_STATUS_ANNOTATION], firstSight, nowMs);
    const change: TrainJobChange = { phaseChanged: previousPhase !== this.phase };
    if ((firstSight || intervalChanged) && interval.warning !== undefined) {
      change.pollIntervalWarning = interval.warning;
    }
    return change;
  }

  // The annotation on the object seeds the state after a restart. Later events mostly echo
  // this process's own writes, which must not move `written` back to an older content.
  // A final summary counts as final only while the phase is Complete or Failed. On a job
  // that is still running it was copied from another job's manifest, so its values are
  // shown as a running status and the next sample replaces it.
  #adoptAnnotation(value: string | undefined, firstSight: boolean, nowMs: number): void {
    const parsed = parseTrainerStatus(value);
    if (parsed === undefined) return;
    const time = parseTime(parsed.lastUpdatedTime) ?? new Date(nowMs);
    const writtenAtMs = Math.min(nowMs, time.getTime());
    const content = statusContent(parsed.status);
    const finalSummary = isFinalSummary(parsed.status.summary);
    if (this.#final === undefined && finalSummary && isTerminalPhase(this.phase)) {
      this.#final = { status: parsed.status, content, at: time, source: 'annotation' };
      this.#written = { content, atMs: writtenAtMs };
      return;
    }
    if (!firstSight) return;
    const status = finalSummary ? runningStatus(parsed.status.sample) : parsed.status;
    this.#annotation = { status, time };
    this.#written = { content, atMs: writtenAtMs };
  }

  /**
   * Records a sample as the job's latest and adds it to the history. Returns false, and
   * records nothing, once the job is Complete or Failed.
   */
  recordSample(sample: MetricsSample, observedAt: Date, nowMs: number): boolean {
    this.lastActivityMs = nowMs;
    if (this.#final !== undefined || isTerminalPhase(this.phase)) return false;
    const status = runningStatus(sample);
    const content = statusContent(status);
    this.#latest = { sample, status, content, observedAt, receivedAtMs: nowMs };
    const entry = {
      time: observedAt.toISOString(),
      status: toTrainerStatusObject(status, observedAt),
    };
    this.history.add(entry, content);
    return true;
  }

  /** Accepts `seq` from a pod when it is above the last one seen; returns whether it was. */
  acceptSeq(podUid: string, seq: number): boolean {
    if (seq <= (this.lastSeqByPod.get(podUid) ?? 0)) return false;
    this.lastSeqByPod.set(podUid, seq);
    return true;
  }

  /** Whether the job is Complete or Failed, opted in, and has no final status yet. */
  get needsFinalCapture(): boolean {
    return (
      this.optedIn && isTerminalPhase(this.phase) && this.#final === undefined && !this.#capturing
    );
  }

  /** Marks the capture as started and returns the job's own sources. */
  beginFinalCapture(): FinalCaptureInputs {
    if (!isTerminalPhase(this.phase)) {
      throw new Error(`cannot capture the final status of ${this.key} in phase ${this.phase}`);
    }
    this.#capturing = true;
    return {
      state: this.phase,
      lastSample: this.#latest?.sample,
      annotationSample: this.#annotation?.status.sample,
    };
  }

  /** Applies the final markers to the chosen sample; the result never changes afterwards. */
  completeFinalCapture(sample: MetricsSample, source: FinalSource, nowMs: number): void {
    this.#capturing = false;
    if (this.#final !== undefined || !isTerminalPhase(this.phase)) return;
    const status = finalStatus(sample, this.phase);
    this.#final = { status, content: statusContent(status), at: new Date(nowMs), source };
  }

  get finalSource(): FinalSource | undefined {
    return this.#final?.source;
  }

  /** Whether a final status is being captured or waits to be written. */
  get finalPending(): boolean {
    return this.#capturing || (this.#final !== undefined && !this.finalWritten);
  }

  /** Whether the final status is on the object, so the job's status can no longer change. */
  get finalWritten(): boolean {
    return this.#final !== undefined && this.#written?.content === this.#final.content;
  }

  /** Decides when the annotation is written next; see the rules in the file header. */
  nextWrite(nowMs: number, refreshIntervals: number, mirrorEnabled = false): WriteDecision {
    if (!this.known || !this.optedIn || this.phase === 'Suspended') return NO_WRITE;
    if (this.#final !== undefined) {
      const mirrorPending = mirrorEnabled && this.mirroredContent !== this.#final.content;
      return this.finalWritten && !mirrorPending ? NO_WRITE : { kind: 'now', reason: 'final' };
    }
    if (isTerminalPhase(this.phase) || this.#latest === undefined) return NO_WRITE;
    if (this.#written === undefined) return { kind: 'now', reason: 'first' };
    if (this.#latest.content !== this.#written.content) {
      return dueAt(this.#written.atMs + this.pollIntervalMs, nowMs, 'changed');
    }
    if (this.#latest.receivedAtMs <= this.#written.atMs) return NO_WRITE;
    return dueAt(this.#written.atMs + refreshIntervals * this.pollIntervalMs, nowMs, 'refresh');
  }

  /** The status that a write made now should put on the object, if any. */
  statusToWrite(): StatusToWrite | undefined {
    if (this.#final !== undefined) {
      return { status: this.#final.status, content: this.#final.content, final: true };
    }
    if (this.#latest === undefined || isTerminalPhase(this.phase)) return undefined;
    return { status: this.#latest.status, content: this.#latest.content, final: false };
  }

  /** Returns whether the object already carries this content. */
  isWritten(content: string): boolean {
    return this.#written?.content === content;
  }

  markWritten(content: string, atMs: number): void {
    this.#written = { content, atMs };
  }

  /** Whether the job has a status to show, from a sample, the object or the final capture. */
  get hasStatus(): boolean {
    return (
      this.#final !== undefined || this.#latest !== undefined || this.#annotation !== undefined
    );
  }

  /** Returns the live state that viewers receive. */
  progress(): JobProgress {
    return {
      namespace: this.namespace,
      name: this.name,
      phase: this.phase,
      status: this.#statusObject(),
      final: this.finalWritten,
    };
  }

  #statusObject(): JobProgress['status'] {
    if (this.#final !== undefined) return toTrainerStatusObject(this.#final.status, this.#final.at);
    if (this.#latest !== undefined) {
      return toTrainerStatusObject(this.#latest.status, this.#latest.observedAt);
    }
    if (this.#annotation !== undefined) {
      return toTrainerStatusObject(this.#annotation.status, this.#annotation.time);
    }
    return null;
  }
}

/** Returns the key of a TrainJob in maps: `namespace/name`. */
export function jobKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function dueAt(atMs: number, nowMs: number, reason: WriteReason): WriteDecision {
  return atMs <= nowMs ? { kind: 'now', reason } : { kind: 'later', atMs };
}

function parseTime(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}
