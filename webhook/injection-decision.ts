// The inject-or-skip decision for one pod, as a pure function of the pod, the request's
// namespace, the outcome of the TrainJob lookup and the chart defaults.
//
// Precedence, first match wins:
//  1. the object is not a pod with metadata and spec             → error  invalid-pod
//  2. no `jobset.sigs.k8s.io/jobset-name` label                 → skip   no-jobset-label
//  3. replicated job `dataset-initializer`/`model-initializer`  → skip   initializer
//     replicated job `launcher`                                 → skip   launcher
//     any other replicated job than `node`, or none             → skip   not-trainer
//  4. neither the request nor the pod names a namespace          → error  invalid-pod
//  5. the TrainJob lookup failed or was not made                 → error  lookup-failed
//     the TrainJob does not exist                                → skip   trainjob-not-found
//  6. the TrainJob has not opted in                              → skip   not-opted-in
//  7. scope `primary` and the pod is not job index 0 with
//     completion index 0                                         → skip   not-primary
//  8. the pod names no service account                           → skip   no-service-account
//  9. otherwise                                                  → inject
// Only global rank 0 serves the metrics endpoint, and it runs in the `node` job, so launcher
// and initializer pods never get a sidecar. The API server rejects a projected token volume
// in a pod without serviceAccountName. The ServiceAccount admission plugin sets that field
// before webhooks run, so step 8 matters only where the plugin is off, and there it keeps the
// sidecar from getting the pod rejected. Warnings about invalid TrainJob settings travel with
// steps 7 to 9, where the settings are read, and step 8 adds one of its own.

import {
  COMPLETION_INDEX_KEY,
  isProgressionTrackingEnabled,
  JOB_INDEX_LABEL,
  JOBSET_NAME_LABEL,
  PROGRESSION_TRACKING_ANNOTATION,
  REPLICATED_JOB_NAME_LABEL,
  TRAINER_REPLICATED_JOB,
} from '../shared/annotations.ts';
import type { TrainJobObject } from '../shared/trainjob.ts';
import {
  isJsonObject,
  objectField,
  readStringMap,
  stringField,
  type JsonObject,
} from './json-object.ts';
import {
  resolvePodSettings,
  type InjectionDefaults,
  type PodSettings,
  type ResolvedSettings,
  type SettingWarning,
} from './pod-settings.ts';

export type SkipReason =
  | 'not-pod-create'
  | 'no-jobset-label'
  | 'initializer'
  | 'launcher'
  | 'not-trainer'
  | 'trainjob-not-found'
  | 'not-opted-in'
  | 'not-primary'
  | 'no-service-account'
  | 'already-injected'
  | 'name-conflict';

export type ErrorReason = 'invalid-pod' | 'lookup-failed' | 'timeout' | 'internal';

export type TrainJobLookup =
  | { status: 'found'; trainJob: TrainJobObject }
  | { status: 'not-found' }
  | { status: 'failed'; message: string };

export interface TrainJobReference {
  namespace: string;
  name: string;
}

export interface DecisionInput {
  pod: unknown;
  /** `request.namespace` of the AdmissionReview; pods from controllers often lack their own. */
  requestNamespace: string | undefined;
  /** Outcome of looking up `trainJobReference(pod, requestNamespace)`, if one was needed. */
  lookup: TrainJobLookup | undefined;
  defaults: InjectionDefaults;
}

export type Decision =
  | {
      action: 'inject';
      trainJob: TrainJobReference;
      settings: PodSettings;
      warnings: readonly SettingWarning[];
    }
  | {
      action: 'skip';
      reason: SkipReason;
      warnings: readonly SettingWarning[];
      /** A warning for the user that is not about a setting. */
      notice?: string;
    }
  | { action: 'error'; reason: ErrorReason; message: string };

const INITIALIZER_JOBS = new Set(['dataset-initializer', 'model-initializer']);
const LAUNCHER_JOB = 'launcher';
const NO_WARNINGS: readonly SettingWarning[] = Object.freeze([]);
const NO_SERVICE_ACCOUNT_NOTICE =
  'trainjob-progress: sidecar not injected: the pod names no serviceAccountName, so it cannot mount a service-account token';

/**
 * Returns the TrainJob that decides about this pod, or undefined when the pod's labels alone
 * decide (steps 1–4), so the caller looks up only what can change the outcome.
 */
export function trainJobReference(
  pod: unknown,
  requestNamespace: string | undefined,
): TrainJobReference | undefined {
  const metadata = isJsonObject(pod) ? objectField(pod, 'metadata') : undefined;
  const labels = objectField(metadata, 'labels');
  const name = stringField(labels, JOBSET_NAME_LABEL);
  if (name === undefined || name === '') return undefined;
  if (stringField(labels, REPLICATED_JOB_NAME_LABEL) !== TRAINER_REPLICATED_JOB) return undefined;
  const namespace = podNamespace(metadata, requestNamespace);
  return namespace === undefined ? undefined : { namespace, name };
}

/** Decides whether to inject the sidecar, by the precedence in the file header. */
export function decideInjection(input: DecisionInput): Decision {
  const metadata = isJsonObject(input.pod) ? objectField(input.pod, 'metadata') : undefined;
  if (metadata === undefined || objectField(input.pod as JsonObject, 'spec') === undefined) {
    return {
      action: 'error',
      reason: 'invalid-pod',
      message: 'the object is not a pod with metadata and spec',
    };
  }
  const labels = objectField(metadata, 'labels');
  const jobSetName = stringField(labels, JOBSET_NAME_LABEL);
  if (jobSetName === undefined || jobSetName === '') return skip('no-jobset-label');

  const replicatedJob = stringField(labels, REPLICATED_JOB_NAME_LABEL);
  if (replicatedJob !== TRAINER_REPLICATED_JOB) {
    if (replicatedJob !== undefined && INITIALIZER_JOBS.has(replicatedJob))
      return skip('initializer');
    return skip(replicatedJob === LAUNCHER_JOB ? 'launcher' : 'not-trainer');
  }

  const namespace = podNamespace(metadata, input.requestNamespace);
  if (namespace === undefined) {
    return {
      action: 'error',
      reason: 'invalid-pod',
      message: 'neither the request nor the pod names a namespace',
    };
  }
  const trainJob = input.lookup;
  if (trainJob === undefined) {
    return {
      action: 'error',
      reason: 'lookup-failed',
      message: `TrainJob ${namespace}/${jobSetName} was not looked up`,
    };
  }
  if (trainJob.status === 'failed') {
    return { action: 'error', reason: 'lookup-failed', message: trainJob.message };
  }
  if (trainJob.status === 'not-found') return skip('trainjob-not-found');

  const annotations = trainJob.trainJob.metadata.annotations ?? {};
  if (!isProgressionTrackingEnabled(annotations[PROGRESSION_TRACKING_ANNOTATION])) {
    return skip('not-opted-in');
  }
  const { settings, warnings } = settingsOf(trainJob.trainJob, input.defaults);
  if (settings.scope === 'primary' && !isPrimaryPod(metadata, labels)) {
    return { action: 'skip', reason: 'not-primary', warnings };
  }
  if (!namesServiceAccount(objectField(input.pod as JsonObject, 'spec'))) {
    return {
      action: 'skip',
      reason: 'no-service-account',
      warnings,
      notice: NO_SERVICE_ACCOUNT_NOTICE,
    };
  }
  return { action: 'inject', trainJob: { namespace, name: jobSetName }, settings, warnings };
}

/**
 * Returns whether the pod runs global rank 0: job index 0 of its replicated job and completion
 * index 0 of that Job. The completion index is read from the annotation, then the label; a pod
 * with neither belongs to a non-indexed Job and counts as index 0.
 */
export function isPrimaryPod(
  metadata: Record<string, unknown>,
  labels: Record<string, unknown> | undefined,
): boolean {
  if (stringField(labels, JOB_INDEX_LABEL) !== '0') return false;
  const completionIndex =
    stringField(objectField(metadata, 'annotations'), COMPLETION_INDEX_KEY) ??
    stringField(labels, COMPLETION_INDEX_KEY);
  return completionIndex === undefined || completionIndex === '0';
}

// `serviceAccount` is the deprecated alias that the API server still accepts.
function namesServiceAccount(spec: JsonObject | undefined): boolean {
  const name = stringField(spec, 'serviceAccountName') ?? stringField(spec, 'serviceAccount');
  return name !== undefined && name !== '';
}

function podNamespace(
  metadata: Record<string, unknown> | undefined,
  requestNamespace: string | undefined,
): string | undefined {
  if (requestNamespace !== undefined && requestNamespace !== '') return requestNamespace;
  const own = stringField(metadata, 'namespace');
  return own === '' ? undefined : own;
}

function skip(reason: SkipReason): Decision {
  return { action: 'skip', reason, warnings: NO_WARNINGS };
}

// TrainJob objects from the cache are replaced, never changed, on every update, so the parsed
// settings can be kept per object for as long as the object lives.
const settingsByTrainJob = new WeakMap<
  TrainJobObject,
  { defaults: InjectionDefaults; resolved: ResolvedSettings }
>();

function settingsOf(trainJob: TrainJobObject, defaults: InjectionDefaults): ResolvedSettings {
  const cached = settingsByTrainJob.get(trainJob);
  if (cached !== undefined && cached.defaults === defaults) return cached.resolved;
  const resolved = resolvePodSettings(readStringMap(trainJob.metadata.annotations), defaults);
  settingsByTrainJob.set(trainJob, { defaults, resolved });
  return resolved;
}
