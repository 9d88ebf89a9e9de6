// Annotation and label keys that TrainJobs, JobSet pods and this add-on share, and the
// parsers for the TrainJob annotations that users set.

export const ANNOTATION_PREFIX = 'trainer.opendatahub.io/';

/** Opt-in switch on a TrainJob: `true` or `enabled`, trimmed and case-insensitive. */
export const PROGRESSION_TRACKING_ANNOTATION = `${ANNOTATION_PREFIX}progression-tracking`;
/** Port of the trainer's metrics endpoint inside the pod. */
export const METRICS_PORT_ANNOTATION = `${ANNOTATION_PREFIX}metrics-port`;
/** How often the status annotation may change. */
export const METRICS_POLL_INTERVAL_ANNOTATION = `${ANNOTATION_PREFIX}metrics-poll-interval`;
/** The status annotation that dashboards read. */
export const TRAINER_STATUS_ANNOTATION = `${ANNOTATION_PREFIX}trainerStatus`;

// Per-TrainJob overrides of the chart defaults. An invalid value falls back to the default
// and is reported as an admission warning.
/** HTTP path that the sidecar scrapes, `/metrics` by default. */
export const METRICS_PATH_ANNOTATION = `${ANNOTATION_PREFIX}metrics-path`;
/** `primary` (rank 0 only) or `all-nodes` (every `node` pod). */
export const INJECTION_SCOPE_ANNOTATION = `${ANNOTATION_PREFIX}progress-injection-scope`;
/** `native` (init container with restartPolicy Always) or `container` (regular container). */
export const SIDECAR_MODE_ANNOTATION = `${ANNOTATION_PREFIX}progress-sidecar-mode`;
/** Sidecar CPU limit as a Kubernetes quantity; the request is the same value. */
export const SIDECAR_CPU_ANNOTATION = `${ANNOTATION_PREFIX}progress-sidecar-cpu`;
/** Sidecar memory limit as a Kubernetes quantity; the request is the same value. */
export const SIDECAR_MEMORY_ANNOTATION = `${ANNOTATION_PREFIX}progress-sidecar-memory`;

/** Set by the webhook on every pod it injected, so a second admission adds nothing. */
export const INJECTED_ANNOTATION = `${ANNOTATION_PREFIX}progress-sidecar-injected`;

export const JOBSET_NAME_LABEL = 'jobset.sigs.k8s.io/jobset-name';
export const REPLICATED_JOB_NAME_LABEL = 'jobset.sigs.k8s.io/replicatedjob-name';
export const JOB_INDEX_LABEL = 'jobset.sigs.k8s.io/job-index';
/** An annotation on every indexed Job pod, and also a label on Kubernetes 1.28 and later. */
export const COMPLETION_INDEX_KEY = 'batch.kubernetes.io/job-completion-index';

/** Replicated job and container that run the trainer in Kubeflow Trainer runtimes. */
export const TRAINER_REPLICATED_JOB = 'node';
export const TRAINER_CONTAINER_NAME = 'node';
export const SIDECAR_CONTAINER_NAME = 'trainjob-progress';

export const TRAINJOB_GROUP = 'trainer.kubeflow.org';
export const TRAINJOB_VERSION = 'v1alpha1';
export const TRAINJOB_PLURAL = 'trainjobs';
export const TRAINJOB_KIND = 'TrainJob';

export const DEFAULT_METRICS_PORT = 28080;
export const DEFAULT_METRICS_PATH = '/metrics';
export const DEFAULT_POLL_INTERVAL_SECONDS = 30;
export const MIN_POLL_INTERVAL_SECONDS = 5;
export const MAX_POLL_INTERVAL_SECONDS = 300;

/** A parsed annotation value, with a warning when the default was used instead. */
export interface ParsedSetting<T> {
  value: T;
  warning?: string;
}

/** Returns whether a TrainJob opted in: `true` or `enabled`, any case, surrounding spaces ignored. */
export function isProgressionTrackingEnabled(value: string | undefined): boolean {
  const normalized = value?.trim().toLowerCase();
  return normalized === 'true' || normalized === 'enabled';
}

/** Parses the metrics port: an integer 1–65535, otherwise the default and a warning. */
export function parseMetricsPort(value: string | undefined): ParsedSetting<number> {
  if (value === undefined) return { value: DEFAULT_METRICS_PORT };
  const trimmed = value.trim();
  const port = /^\d{1,5}$/.test(trimmed) ? Number(trimmed) : NaN;
  if (port >= 1 && port <= 65535) return { value: port };
  return {
    value: DEFAULT_METRICS_PORT,
    warning:
      `${METRICS_PORT_ANNOTATION}: invalid port ${JSON.stringify(value)}, ` +
      `expected an integer from 1 to 65535; using ${DEFAULT_METRICS_PORT}`,
  };
}

/**
 * Parses the poll interval: a Go duration (`1m30s`, `500ms`) or bare integer seconds, clamped
 * to [5 s, 300 s]. Unparsable or missing values mean 30 s; unparsable ones carry a warning.
 */
export function parsePollIntervalSeconds(value: string | undefined): ParsedSetting<number> {
  if (value === undefined) return { value: DEFAULT_POLL_INTERVAL_SECONDS };
  const trimmed = value.trim();
  const milliseconds = /^[+-]?\d+$/.test(trimmed)
    ? Number(trimmed) * 1000
    : parseGoDurationMilliseconds(trimmed);
  if (milliseconds === undefined) {
    return {
      value: DEFAULT_POLL_INTERVAL_SECONDS,
      warning:
        `${METRICS_POLL_INTERVAL_ANNOTATION}: invalid duration ${JSON.stringify(value)}, ` +
        `expected e.g. 30s, 1m or 45; using ${DEFAULT_POLL_INTERVAL_SECONDS}s`,
    };
  }
  const seconds = milliseconds / 1000;
  return {
    value: Math.min(MAX_POLL_INTERVAL_SECONDS, Math.max(MIN_POLL_INTERVAL_SECONDS, seconds)),
  };
}

const GO_DURATION_UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration in the syntax of Go's time.ParseDuration: an optional sign, then one or
 * more decimal numbers each followed by a unit (ns, us, µs, ms, s, m, h). Returns
 * milliseconds, or undefined when the text is not such a duration.
 */
export function parseGoDurationMilliseconds(text: string): number | undefined {
  const match = /^([+-]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (match === null) return text === '0' ? 0 : undefined;
  const sign = match[1] === '-' ? -1 : 1;
  let total = 0;
  for (const part of match[2]!.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * GO_DURATION_UNIT_MS[part[2]!]!;
  }
  return sign * total;
}
