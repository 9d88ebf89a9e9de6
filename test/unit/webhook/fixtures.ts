// Pods, TrainJobs and defaults shared by the webhook's unit tests.

import {
  COMPLETION_INDEX_KEY,
  JOB_INDEX_LABEL,
  JOBSET_NAME_LABEL,
  PROGRESSION_TRACKING_ANNOTATION,
  REPLICATED_JOB_NAME_LABEL,
} from '../../../shared/annotations.ts';
import type { TrainJobObject } from '../../../shared/trainjob.ts';
import type { AdmissionRequest } from '../../../webhook/admission-review.ts';
import type { InjectionDefaults } from '../../../webhook/pod-settings.ts';
import type { SidecarImageOptions } from '../../../webhook/sidecar-container.ts';

export const NAMESPACE = 'team-a';

export const DEFAULTS: InjectionDefaults = Object.freeze({
  scope: 'primary',
  sidecarMode: 'native',
  nativeSidecarsSupported: true,
  metricsPath: '/metrics',
  resources: { cpuRequest: '50m', cpuLimit: '100m', memoryRequest: '64Mi', memoryLimit: '64Mi' },
});

export const SIDECAR_OPTIONS: SidecarImageOptions = Object.freeze({
  image: 'registry.example/trainjob-progress:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  aggregatorUrl: 'ws://trainjob-progress-aggregator.trainjob-progress.svc:8080/v1/ingest',
  tokenAudience: 'trainjob-progress',
});

export function trainJob(name: string, annotations: Record<string, string> = {}): TrainJobObject {
  return { metadata: { name, namespace: NAMESPACE, annotations, resourceVersion: '1' } };
}

export function optedIn(name: string, extra: Record<string, string> = {}): TrainJobObject {
  return trainJob(name, { [PROGRESSION_TRACKING_ANNOTATION]: 'true', ...extra });
}

export interface PodShape {
  job?: string;
  replicatedJob?: string | undefined;
  jobIndex?: string | undefined;
  completionIndex?: string | undefined;
  completionIndexLabel?: string | undefined;
  namespace?: string;
}

/** Returns a pod as the JobSet controller creates it, with generateName and no namespace. */
export function jobSetPod(shape: PodShape = {}): Record<string, unknown> {
  const job = shape.job ?? 'llama';
  const replicatedJob = 'replicatedJob' in shape ? shape.replicatedJob : 'node';
  const jobIndex = 'jobIndex' in shape ? shape.jobIndex : '0';
  const completionIndex = 'completionIndex' in shape ? shape.completionIndex : '0';
  const labels: Record<string, string> = { [JOBSET_NAME_LABEL]: job };
  if (replicatedJob !== undefined) labels[REPLICATED_JOB_NAME_LABEL] = replicatedJob;
  if (jobIndex !== undefined) labels[JOB_INDEX_LABEL] = jobIndex;
  if (shape.completionIndexLabel !== undefined)
    labels[COMPLETION_INDEX_KEY] = shape.completionIndexLabel;
  const annotations: Record<string, string> = {};
  if (completionIndex !== undefined) annotations[COMPLETION_INDEX_KEY] = completionIndex;
  const metadata: Record<string, unknown> = {
    generateName: `${job}-${replicatedJob ?? 'x'}-${jobIndex ?? 'x'}-${completionIndex ?? 'x'}-`,
    labels,
    annotations,
  };
  if (shape.namespace !== undefined) metadata.namespace = shape.namespace;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: {
      restartPolicy: 'Never',
      serviceAccountName: 'default',
      containers: [{ name: 'node', image: 'pytorch/pytorch:2.5.0' }],
    },
  };
}

export function admissionRequest(
  pod: unknown,
  overrides: Partial<AdmissionRequest> = {},
): AdmissionRequest {
  return {
    uid: 'c3a8a4f2-0000-4000-8000-000000000001',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    operation: 'CREATE',
    namespace: NAMESPACE,
    object: pod,
    dryRun: false,
    ...overrides,
  };
}

/** Wraps a request in an AdmissionReview body. */
export function reviewBody(request: AdmissionRequest): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: request.uid,
      kind: request.kind,
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: request.operation,
      namespace: request.namespace,
      userInfo: { username: 'system:serviceaccount:kube-system:jobset-controller' },
      object: request.object,
      oldObject: null,
      dryRun: request.dryRun,
    },
  };
}
