// Formatting of a TrainJob's progress for `tail` and `status`: a progress bar line for
// terminals, one plain line per update otherwise, a multi-line report, and JSON records.

import { TRAINER_STATUS_ANNOTATION } from '../shared/annotations.ts';
import type { MetricMap } from '../shared/metrics-sample.ts';
import type { JobProgress } from '../shared/stream-protocol.ts';
import {
  isFinalSummary,
  parseTrainerStatus,
  toTrainerStatusObject,
  type TrainerStatusObject,
} from '../shared/trainer-status.ts';
import { trainJobPhase, type TrainJobObject } from '../shared/trainjob.ts';

const BAR_WIDTH = 24;
const LINE_METRICS = 3;

/** Builds the view of a TrainJob object as the API server returns it. */
export function progressFromTrainJob(trainJob: TrainJobObject): JobProgress {
  const status = readStatusAnnotation(trainJob.metadata.annotations?.[TRAINER_STATUS_ANNOTATION]);
  const summary = status?.estimatedRemainingTimeSummary ?? '';
  return {
    namespace: trainJob.metadata.namespace,
    name: trainJob.metadata.name,
    phase: trainJobPhase(trainJob),
    status,
    final: isFinalSummary(summary),
  };
}

const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/**
 * Reads the annotation value with the same rules as an endpoint body, so a field of the
 * wrong type is dropped instead of shown; null when absent or not a JSON object. A missing
 * or malformed lastUpdatedTime reads as an empty string.
 */
export function readStatusAnnotation(value: string | undefined): TrainerStatusObject | null {
  const parsed = parseTrainerStatus(value);
  if (parsed === undefined) return null;
  const object = toTrainerStatusObject(parsed.status, new Date(0));
  const time = parsed.lastUpdatedTime;
  object.lastUpdatedTime = time !== undefined && RFC3339_SECONDS.test(time) ? time : '';
  return object;
}

// C0 and C1 control characters other than the newline, which would let a metric name or
// value move the cursor, recolor or clear the user's terminal.
// eslint-disable-next-line no-control-regex -- matching control characters is the point.
const CONTROL_CHARACTERS = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/g;

/** Replaces control characters with `\uXXXX` escapes before text reaches a terminal. */
export function escapeControlCharacters(text: string): string {
  return text.replace(
    CONTROL_CHARACTERS,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function progressBar(percent: number | null, width = BAR_WIDTH): string {
  const filled = Math.round(((percent ?? 0) / 100) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function stepText(status: TrainerStatusObject): string | undefined {
  if (status.currentStep === undefined) return undefined;
  return status.totalSteps === undefined
    ? `${status.currentStep}`
    : `${status.currentStep}/${status.totalSteps}`;
}

function epochText(status: TrainerStatusObject): string | undefined {
  if (status.currentEpoch === undefined) return undefined;
  const current = formatNumber(status.currentEpoch);
  return status.totalEpochs === undefined ? current : `${current}/${status.totalEpochs}`;
}

function formatNumber(value: number | string | null): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return value;
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
}

/** Returns the loss first, then evaluation metrics, at most `limit` of them, as `name=value`. */
function headlineMetrics(status: TrainerStatusObject, limit = LINE_METRICS): string[] {
  const parts: string[] = [];
  const loss = status.trainMetrics?.loss;
  if (loss !== undefined) parts.push(`loss=${formatNumber(loss)}`);
  for (const [name, value] of Object.entries(status.evalMetrics ?? {})) {
    if (parts.length >= limit) break;
    parts.push(`${name}=${formatNumber(value)}`);
  }
  return parts;
}

/** Formats one terminal line: name, phase, bar, percent, step, epoch, ETA and metrics. */
export function formatBarLine(progress: JobProgress): string {
  const status = progress.status;
  const parts = [progress.name, progress.phase];
  if (status === null) return [...parts, 'waiting for progress'].join('  ');
  parts.push(
    `${progressBar(status.progressPercentage)} ${formatPercent(status.progressPercentage)}`,
  );
  const step = stepText(status);
  if (step !== undefined) parts.push(`step ${step}`);
  const epoch = epochText(status);
  if (epoch !== undefined) parts.push(`epoch ${epoch}`);
  const summary = status.estimatedRemainingTimeSummary;
  if (summary !== undefined) parts.push(progress.final ? summary : `ETA ${summary}`);
  parts.push(...headlineMetrics(status));
  return escapeControlCharacters(parts.join('  '));
}

/** Formats the line that logs and pipes receive for each update. */
export function formatPlainLine(progress: JobProgress): string {
  const status = progress.status;
  const updated = status?.lastUpdatedTime;
  const time =
    updated === undefined || updated === ''
      ? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
      : updated;
  const parts = [time, `${progress.namespace}/${progress.name}`, progress.phase];
  if (status === null) return [...parts, 'no progress yet'].join(' ');
  parts.push(`progress=${formatPercent(status.progressPercentage)}`);
  const step = stepText(status);
  if (step !== undefined) parts.push(`step=${step}`);
  const epoch = epochText(status);
  if (epoch !== undefined) parts.push(`epoch=${epoch}`);
  const summary = status.estimatedRemainingTimeSummary;
  if (summary !== undefined)
    parts.push(`${progress.final ? 'final' : 'eta'}=${JSON.stringify(summary)}`);
  parts.push(...headlineMetrics(status, Number.POSITIVE_INFINITY));
  return escapeControlCharacters(parts.join(' '));
}

function formatPercent(percent: number | null): string {
  return percent === null ? '?%' : `${percent}%`;
}

/** Formats a multi-line report of everything the annotation contains. */
export function formatReport(progress: JobProgress): string {
  const rows: [string, string][] = [
    ['TrainJob', `${progress.namespace}/${progress.name}`],
    ['Phase', progress.phase],
  ];
  const status = progress.status;
  if (status === null) return table([...rows, ['Progress', 'not reported yet']]);

  rows.push(...statusRows(status, progress.final));
  const blocks = [
    table(rows),
    metricsBlock('Train metrics', status.trainMetrics),
    metricsBlock('Eval metrics', status.evalMetrics),
  ];
  return escapeControlCharacters(blocks.filter((block) => block !== '').join('\n'));
}

function statusRows(status: TrainerStatusObject, final: boolean): [string, string][] {
  const percent = status.progressPercentage;
  const rows: [string, string][] = [
    ['Progress', `${formatPercent(percent)} ${progressBar(percent)}`],
  ];
  const step = stepText(status);
  if (step !== undefined) rows.push(['Step', step.replace('/', ' / ')]);
  const epoch = epochText(status);
  if (epoch !== undefined) rows.push(['Epoch', epoch.replace('/', ' / ')]);

  const summary = status.estimatedRemainingTimeSummary;
  const seconds = status.estimatedRemainingSeconds;
  // A finished job always shows 0 s remaining, so its result is the summary alone.
  const remaining = final || seconds === undefined ? undefined : `(${seconds} s)`;
  const text = [summary, remaining].filter(Boolean).join(' ');
  if (text !== '') rows.push([final ? 'Result' : 'Remaining', text]);
  rows.push(['Updated', status.lastUpdatedTime === '' ? 'unknown' : status.lastUpdatedTime]);
  return rows;
}

function table(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

function metricsBlock(title: string, metrics: MetricMap | undefined): string {
  const entries = Object.entries(metrics ?? {});
  if (entries.length === 0) return '';
  const width = Math.max(...entries.map(([name]) => name.length));
  const lines = entries.map(([name, value]) => `  ${name.padEnd(width)}  ${formatNumber(value)}`);
  return [title, ...lines].join('\n');
}

/** Formats the JSON record that `--json` prints for each update. */
export function toJsonRecord(progress: JobProgress): string {
  return JSON.stringify({
    namespace: progress.namespace,
    name: progress.name,
    phase: progress.phase,
    final: progress.final,
    status: progress.status,
  });
}
