// Namespaces, TrainJobs and JobSet-style pods for the webhook's integration tests, created
// through the raw JSON client so the tests see exactly what the API server stores.

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  COMPLETION_INDEX_KEY,
  JOB_INDEX_LABEL,
  JOBSET_NAME_LABEL,
  REPLICATED_JOB_NAME_LABEL,
  TRAINJOB_GROUP,
  TRAINJOB_KIND,
  TRAINJOB_PLURAL,
  TRAINJOB_VERSION,
} from '../../../shared/annotations.ts';
import type { KubeClient } from '../../../webhook/kube-client.ts';

export const TEST_NAMESPACE_LABEL = 'trainjob-progress.test/webhook';

export interface StoredPod {
  metadata: {
    name: string;
    namespace: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  spec: {
    initContainers?: ContainerSpec[];
    containers: ContainerSpec[];
    volumes?: { name: string; projected?: unknown }[];
  };
}

export interface ContainerSpec {
  name: string;
  restartPolicy?: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  [key: string]: unknown;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export async function createNamespace(
  client: KubeClient,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await client.request('POST', '/api/v1/namespaces', {
    body: {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { [TEST_NAMESPACE_LABEL]: 'true', ...labels } },
    },
  });
}

/** Requests deletion; without a controller-manager the namespace stays Terminating. */
export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  await client.request('DELETE', `/api/v1/namespaces/${name}`).catch(() => undefined);
}

export async function createTrainJob(
  client: KubeClient,
  namespace: string,
  name: string,
  annotations: Record<string, string>,
): Promise<void> {
  await client.request(
    'POST',
    `/apis/${TRAINJOB_GROUP}/${TRAINJOB_VERSION}/namespaces/${namespace}/${TRAINJOB_PLURAL}`,
    {
      body: {
        apiVersion: `${TRAINJOB_GROUP}/${TRAINJOB_VERSION}`,
        kind: TRAINJOB_KIND,
        metadata: { name, annotations },
        spec: { runtimeRef: { name: 'torch-distributed' } },
      },
    },
  );
}

export interface PodOptions {
  replicatedJob?: string;
  jobIndex?: string;
  completionIndex?: string;
  /** Replaces the default spec. */
  spec?: Record<string, unknown>;
  labels?: Record<string, string> | null;
}

/** Returns a pod as the JobSet controller creates it: generateName, no name, no namespace. */
export function jobSetPod(trainJob: string, options: PodOptions = {}): Record<string, unknown> {
  const replicatedJob = options.replicatedJob ?? 'node';
  const jobIndex = options.jobIndex ?? '0';
  const completionIndex = options.completionIndex ?? '0';
  const labels =
    options.labels === null
      ? undefined
      : {
          [JOBSET_NAME_LABEL]: trainJob,
          [REPLICATED_JOB_NAME_LABEL]: replicatedJob,
          [JOB_INDEX_LABEL]: jobIndex,
          [COMPLETION_INDEX_KEY]: completionIndex,
          ...options.labels,
        };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${trainJob}-${replicatedJob}-${jobIndex}-${completionIndex}-`,
      labels,
      annotations: { [COMPLETION_INDEX_KEY]: completionIndex },
    },
    // The local control plane runs without the ServiceAccount admission plugin, which sets
    // serviceAccountName on every pod in a real cluster.
    spec: { serviceAccountName: 'default', ...(options.spec ?? DEFAULT_SPEC) },
  };
}

const DEFAULT_SPEC = {
  restartPolicy: 'OnFailure',
  containers: [
    {
      name: 'node',
      image: 'docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
      command: ['torchrun', 'train.py'],
    },
  ],
};

export async function createPod(
  client: KubeClient,
  namespace: string,
  pod: unknown,
  dryRun = false,
): Promise<StoredPod> {
  const query = dryRun ? '?dryRun=All' : '';
  return (await client.request('POST', `/api/v1/namespaces/${namespace}/pods${query}`, {
    body: pod,
  })) as StoredPod;
}

export async function listPods(client: KubeClient, namespace: string): Promise<StoredPod[]> {
  const list = (await client.request('GET', `/api/v1/namespaces/${namespace}/pods`)) as {
    items: StoredPod[];
  };
  return list.items;
}

export function sidecarOf(pod: StoredPod): ContainerSpec | undefined {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find(
    (c) => c.name === 'trainjob-progress',
  );
}

/** Calls `check` every 200 ms until it returns true or `timeoutMs` passes. */
export async function waitFor(
  description: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(200);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${description}${lastError instanceof Error ? `: ${lastError.message}` : ''}`,
  );
}
