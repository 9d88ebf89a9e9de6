// The `trainer.opendatahub.io/trainerStatus` annotation value: formatting, final markers and
// parsing it back.
//
// Input: a normalized sample, the time of the write, and the TrainJob's terminal state if any.
// Output: compact JSON whose keys appear in a fixed order, with progressPercentage and
// lastUpdatedTime always present, other scalar keys only when non-null, the summary only when
// non-empty, and metric maps only when non-empty with their names in code-point order. The
// same inputs always give the same bytes, so comparing values detects real changes.

import {
  compareCodePoints,
  EMPTY_SAMPLE,
  normalizeSample,
  setOwnProperty,
  type MetricMap,
  type MetricsSample,
} from './metrics-sample.ts';
import { parseTolerantJson } from './metrics-sample.ts';

export type TerminalState = 'Complete' | 'Failed';

/** A sample together with the summary that the annotation shows for it. */
export interface TrainerStatus {
  sample: MetricsSample;
  summary: string;
}

/** The annotation as a JSON object, in the key order it is written. */
export interface TrainerStatusObject {
  progressPercentage: number | null;
  estimatedRemainingSeconds?: number;
  estimatedRemainingTimeSummary?: string;
  currentStep?: number;
  totalSteps?: number;
  currentEpoch?: number;
  totalEpochs?: number;
  trainMetrics?: MetricMap;
  evalMetrics?: MetricMap;
  lastUpdatedTime: string;
}

export const SUMMARY_COMPLETE = 'complete';
export const SUMMARY_EARLY_STOPPED = 'complete (early stopped)';

/**
 * Summarizes remaining seconds as at most two parts out of days, hours and minutes, with
 * minutes shown only below a day: 90 → `1 minute`, 90060 → `1 day 1 hour`. Returns an empty
 * string for null or non-positive input.
 */
export function summarizeRemainingTime(seconds: number | null): string {
  if (seconds === null || seconds <= 0) return '';
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const parts: string[] = [];
  if (days > 0) parts.push(pluralize(days, 'day'));
  if (hours > 0) parts.push(pluralize(hours, 'hour'));
  if (minutes > 0 && days === 0) parts.push(pluralize(minutes, 'minute'));
  if (parts.length === 0) return 'less than a minute';
  return parts.slice(0, 2).join(' ');
}

function pluralize(count: number, unit: string): string {
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}

/** Returns the status of a running job: the summary comes from the remaining seconds. */
export function runningStatus(sample: MetricsSample): TrainerStatus {
  return { sample, summary: summarizeRemainingTime(sample.estimatedRemainingSeconds) };
}

/**
 * Applies the final markers of a finished job to its last sample.
 *
 * Complete: an early stop (a positive step total not reached and progress below 100) keeps
 * its progress, sets 0 s remaining and reads `complete (early stopped)`; any other completion
 * reads `complete` with progress 100 and 0 s remaining, so a last sample at 100 % whose step
 * count lags the total is a normal finish. Failed: `failed at N%` with N the last progress
 * (0 when unknown); every other field keeps its last value.
 */
export function finalStatus(sample: MetricsSample, state: TerminalState): TrainerStatus {
  if (state === 'Failed') {
    return { sample, summary: `failed at ${sample.progressPercentage ?? 0}%` };
  }
  const { totalSteps, currentStep, progressPercentage } = sample;
  const earlyStopped =
    totalSteps !== null &&
    totalSteps > 0 &&
    currentStep !== null &&
    currentStep < totalSteps &&
    (progressPercentage ?? 0) < 100;
  if (earlyStopped) {
    return { sample: { ...sample, estimatedRemainingSeconds: 0 }, summary: SUMMARY_EARLY_STOPPED };
  }
  return {
    sample: { ...sample, progressPercentage: 100, estimatedRemainingSeconds: 0 },
    summary: SUMMARY_COMPLETE,
  };
}

/** Builds the annotation object, omitting keys by the rules in the file header. */
export function toTrainerStatusObject(status: TrainerStatus, updatedAt: Date): TrainerStatusObject {
  const { sample, summary } = status;
  const object: TrainerStatusObject = {
    progressPercentage: sample.progressPercentage,
  } as TrainerStatusObject;
  if (sample.estimatedRemainingSeconds !== null) {
    object.estimatedRemainingSeconds = sample.estimatedRemainingSeconds;
  }
  if (summary !== '') object.estimatedRemainingTimeSummary = summary;
  if (sample.currentStep !== null) object.currentStep = sample.currentStep;
  if (sample.totalSteps !== null) object.totalSteps = sample.totalSteps;
  if (sample.currentEpoch !== null) object.currentEpoch = sample.currentEpoch;
  if (sample.totalEpochs !== null) object.totalEpochs = sample.totalEpochs;
  const trainMetrics = sortedMetrics(sample.trainMetrics);
  if (trainMetrics !== undefined) object.trainMetrics = trainMetrics;
  const evalMetrics = sortedMetrics(sample.evalMetrics);
  if (evalMetrics !== undefined) object.evalMetrics = evalMetrics;
  object.lastUpdatedTime = formatTimestamp(updatedAt);
  return object;
}

/**
 * Formats the annotation value: compact JSON of toTrainerStatusObject. Metric maps are
 * written by hand because JavaScript objects list integer-like keys such as `10` first,
 * whatever their insertion order, and the names must appear in code-point order.
 */
export function formatTrainerStatus(status: TrainerStatus, updatedAt: Date): string {
  const members = Object.entries(toTrainerStatusObject(status, updatedAt)).map(
    ([key, value]) =>
      `${JSON.stringify(key)}:${isMetricKey(key) ? formatMetrics(value as MetricMap) : JSON.stringify(value)}`,
  );
  return `{${members.join(',')}}`;
}

function isMetricKey(key: string): boolean {
  return key === 'trainMetrics' || key === 'evalMetrics';
}

function formatMetrics(metrics: MetricMap): string {
  const names = Object.keys(metrics).sort(compareCodePoints);
  const members = names.map((name) => `${JSON.stringify(name)}:${JSON.stringify(metrics[name])}`);
  return `{${members.join(',')}}`;
}

function sortedMetrics(metrics: MetricMap | null): MetricMap | undefined {
  if (metrics === null) return undefined;
  const names = Object.keys(metrics).sort(compareCodePoints);
  if (names.length === 0) return undefined;
  const sorted: MetricMap = {};
  for (const name of names) setOwnProperty(sorted, name, metrics[name]!);
  return sorted;
}

/** Formats a time as RFC 3339 in UTC, truncated to whole seconds: `2026-01-23T10:30:45Z`. */
export function formatTimestamp(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Parses an existing annotation value back into a status, so a restarted aggregator resumes
 * from what it wrote. Returns undefined for a missing or unreadable value.
 */
export function parseTrainerStatus(
  value: string | undefined,
): { status: TrainerStatus; lastUpdatedTime: string | undefined } | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = parseTolerantJson(value);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const sample = { ...EMPTY_SAMPLE, ...normalizeSample(record) };
  const summary =
    typeof record.estimatedRemainingTimeSummary === 'string'
      ? record.estimatedRemainingTimeSummary
      : '';
  const lastUpdatedTime =
    typeof record.lastUpdatedTime === 'string' ? record.lastUpdatedTime : undefined;
  return { status: { sample, summary }, lastUpdatedTime };
}

/** Returns whether a summary is one of the final markers, so the status must not change again. */
export function isFinalSummary(summary: string): boolean {
  return (
    summary === SUMMARY_COMPLETE ||
    summary === SUMMARY_EARLY_STOPPED ||
    /^failed at \d+%$/.test(summary)
  );
}
