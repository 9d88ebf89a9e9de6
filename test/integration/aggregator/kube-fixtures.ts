// Kubernetes objects for the aggregator's integration tests: namespaces, TrainJobs with
// conditions, service accounts, primary pods with a kubelet-like status, and tokens.

import { randomBytes } from 'node:crypto';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import WebSocket from 'ws';

import {
  startAggregator,
  type AggregatorOptions,
  type RunningAggregator,
} from '../../../aggregator/aggregator.ts';

import {
  JOB_INDEX_LABEL,
  JOBSET_NAME_LABEL,
  METRICS_POLL_INTERVAL_ANNOTATION,
  PROGRESSION_TRACKING_ANNOTATION,
  REPLICATED_JOB_NAME_LABEL,
  TRAINER_STATUS_ANNOTATION,
} from '../../../shared/annotations.ts';
import type { TrainJobObject } from '../../../shared/trainjob.ts';

export const TRAINJOB = { group: 'trainer.kubeflow.org', version: 'v1alpha1', plural: 'trainjobs' };
export const SIDECAR_AUDIENCE = 'trainjob-progress';
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Starts an aggregator on a free loopback port and waits for its first TrainJob list. */
export async function startReadyAggregator(options: AggregatorOptions): Promise<RunningAggregator> {
  const aggregator = await startAggregator({ listenHost: '127.0.0.1', listenPort: 0, ...options });
  await aggregator.ready;
  return aggregator;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export class Cluster {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly rbac: RbacAuthorizationV1Api;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.rbac = kubeConfig.makeApiClient(RbacAuthorizationV1Api);
  }

  async createNamespace(prefix: string): Promise<string> {
    const name = uniqueName(prefix);
    await this.core.createNamespace({ body: { metadata: { name } } });
    return name;
  }

  async createTrainJob(
    namespace: string,
    name: string,
    annotations: Record<string, string> = {},
    suspend = false,
  ): Promise<TrainJobObject> {
    const body = {
      apiVersion: `${TRAINJOB.group}/${TRAINJOB.version}`,
      kind: 'TrainJob',
      metadata: {
        name,
        annotations: {
          [PROGRESSION_TRACKING_ANNOTATION]: 'true',
          [METRICS_POLL_INTERVAL_ANNOTATION]: '5s',
          ...annotations,
        },
      },
      spec: { runtimeRef: { name: 'torch-distributed' }, suspend },
    };
    return (await this.custom.createNamespacedCustomObject({
      ...TRAINJOB,
      namespace,
      body,
    })) as TrainJobObject;
  }

  async getTrainJob(namespace: string, name: string): Promise<TrainJobObject> {
    return (await this.custom.getNamespacedCustomObject({
      ...TRAINJOB,
      namespace,
      name,
    })) as TrainJobObject;
  }

  async readStatusAnnotation(namespace: string, name: string): Promise<string | undefined> {
    const trainJob = await this.getTrainJob(namespace, name);
    return trainJob.metadata.annotations?.[TRAINER_STATUS_ANNOTATION];
  }

  /** Sets a True condition through the status subresource, as the Trainer controller would. */
  async setCondition(namespace: string, name: string, type: string): Promise<void> {
    const condition = {
      type,
      status: 'True',
      reason: `${type}ByTest`,
      message: 'set by an aggregator integration test',
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    await this.custom.patchNamespacedCustomObjectStatus(
      { ...TRAINJOB, namespace, name, body: { status: { conditions: [condition] } } },
      MERGE_PATCH,
    );
  }

  async setAnnotations(
    namespace: string,
    name: string,
    annotations: Record<string, string | null>,
  ): Promise<void> {
    await this.custom.patchNamespacedCustomObject(
      { ...TRAINJOB, namespace, name, body: { metadata: { annotations } } },
      MERGE_PATCH,
    );
  }

  async setLabels(
    namespace: string,
    name: string,
    labels: Record<string, string | null>,
  ): Promise<void> {
    await this.custom.patchNamespacedCustomObject(
      { ...TRAINJOB, namespace, name, body: { metadata: { labels } } },
      MERGE_PATCH,
    );
  }

  async deleteTrainJob(namespace: string, name: string): Promise<void> {
    await this.custom.deleteNamespacedCustomObject({ ...TRAINJOB, namespace, name });
  }

  async createServiceAccount(namespace: string, name: string): Promise<void> {
    await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  }

  /** Creates the primary pod of a TrainJob, as the JobSet controller would; it stays Pending. */
  async createPrimaryPod(
    namespace: string,
    trainJob: string,
    serviceAccount: string,
  ): Promise<V1Pod> {
    return this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: uniqueName(`${trainJob}-node-0-0`),
          labels: {
            [JOBSET_NAME_LABEL]: trainJob,
            [REPLICATED_JOB_NAME_LABEL]: 'node',
            [JOB_INDEX_LABEL]: '0',
            'batch.kubernetes.io/job-completion-index': '0',
          },
        },
        spec: {
          serviceAccountName: serviceAccount,
          containers: [{ name: 'node', image: 'registry.invalid/trainer:never-pulled' }],
        },
      },
    });
  }

  /** Plays the kubelet: the `node` container terminated with this message. */
  async setTerminationMessage(namespace: string, pod: string, message: string): Promise<void> {
    const status = {
      phase: 'Succeeded',
      containerStatuses: [
        {
          name: 'node',
          image: 'registry.invalid/trainer:never-pulled',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, reason: 'Completed', message } },
        },
      ],
    };
    await this.core.patchNamespacedPodStatus(
      { namespace, name: pod, body: { status } },
      MERGE_PATCH,
    );
  }

  /** Requests a token of `serviceAccount`, bound to `pod` when given. */
  async requestToken(
    namespace: string,
    serviceAccount: string,
    options: { audiences?: string[]; pod?: V1Pod } = {},
  ): Promise<string> {
    const spec: Record<string, unknown> = { expirationSeconds: 600 };
    if (options.audiences !== undefined) spec.audiences = options.audiences;
    if (options.pod !== undefined) {
      spec.boundObjectRef = {
        apiVersion: 'v1',
        kind: 'Pod',
        name: options.pod.metadata!.name,
        uid: options.pod.metadata!.uid,
      };
    }
    const request = await this.core.createNamespacedServiceAccountToken({
      namespace,
      name: serviceAccount,
      body: { spec },
    });
    return request.status?.token ?? '';
  }

  /** Lets `serviceAccount` get TrainJobs in `namespace`. */
  async grantTrainJobRead(namespace: string, serviceAccount: string): Promise<void> {
    const name = `${serviceAccount}-trainjob-reader`;
    await this.rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name },
        rules: [{ apiGroups: [TRAINJOB.group], resources: [TRAINJOB.plural], verbs: ['get'] }],
      },
    });
    await this.rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
      },
    });
  }
}

/** Polls `read` until `accept` returns true for its value; returns that value. */
export async function waitFor<T>(
  description: string,
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (accept(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${description}; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A sidecar-like WebSocket client of the ingest endpoint. */
export class SidecarClient {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #messages: Record<string, unknown>[] = [];
  readonly #waiters: {
    resolve: (message: Record<string, unknown>) => void;
    reject: (error: Error) => void;
  }[] = [];
  #seq = 0;

  constructor(aggregatorUrl: string, token: string | undefined) {
    const headers = token === undefined ? {} : { Authorization: `Bearer ${token}` };
    this.socket = new WebSocket(`${aggregatorUrl.replace(/^http/, 'ws')}/v1/ingest`, {
      headers,
      perMessageDeflate: false,
    });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`HTTP ${response.statusCode}`)),
      );
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const waiter of this.#waiters.splice(0))
          waiter.reject(new Error(`closed with ${code}`));
      });
    });
    this.socket.on('message', (data) => {
      const message = JSON.parse((data as Buffer).toString()) as Record<string, unknown>;
      const waiter = this.#waiters.shift();
      if (waiter === undefined) this.#messages.push(message);
      else waiter.resolve(message);
    });
  }

  /** Returns the next message; rejects when none comes in time or the socket closes. */
  next(timeoutMs = 5000): Promise<Record<string, unknown>> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('no message from the aggregator in time')),
        timeoutMs,
      );
      const settle = (): void => clearTimeout(timer);
      this.#waiters.push({
        resolve: (message) => {
          settle();
          resolve(message);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
    });
  }

  /** Sends hello for `pod` and returns the welcome. */
  async hello(namespace: string, trainJob: string, pod: V1Pod): Promise<Record<string, unknown>> {
    await this.opened;
    this.socket.send(
      JSON.stringify({
        type: 'hello',
        namespace,
        trainJob,
        pod: pod.metadata!.name,
        podUid: pod.metadata!.uid,
        sidecarVersion: 'test',
        pollIntervalSeconds: 5,
        scrapeIntervalSeconds: 5,
      }),
    );
    return this.next();
  }

  /** Sends one sample and waits for its ack. */
  async sample(sample: Record<string, unknown>): Promise<void> {
    const seq = ++this.#seq;
    this.socket.send(
      JSON.stringify({ type: 'sample', seq, observedAt: new Date().toISOString(), sample }),
    );
    const reply = await this.next();
    if (reply.type !== 'ack' || reply.seq !== seq)
      throw new Error(`expected ack ${seq}, got ${JSON.stringify(reply)}`);
  }

  close(): void {
    this.socket.close();
  }
}

/** Removes lastUpdatedTime from an annotation value, keeping the rest byte for byte. */
export function withoutTime(value: string | undefined): string | undefined {
  return value?.replace(/,"lastUpdatedTime":"[^"]*"/, '');
}
