// Kubernetes objects that the demo creates, shaped as Kubeflow Trainer, JobSet and the Job
// controller shape them in a real cluster.

import type { V1Pod } from '@kubernetes/client-node';

import {
  COMPLETION_INDEX_KEY,
  JOB_INDEX_LABEL,
  JOBSET_NAME_LABEL,
  METRICS_POLL_INTERVAL_ANNOTATION,
  METRICS_PORT_ANNOTATION,
  PROGRESSION_TRACKING_ANNOTATION,
  REPLICATED_JOB_NAME_LABEL,
  TRAINER_CONTAINER_NAME,
  TRAINER_REPLICATED_JOB,
  TRAINJOB_GROUP,
  TRAINJOB_KIND,
  TRAINJOB_VERSION,
} from '../shared/annotations.ts';
import type { TrainJobObject } from '../shared/trainjob.ts';

/** Builds an opted-in TrainJob whose status annotation may change every `pollInterval`. */
export function buildTrainJob(
  namespace: string,
  name: string,
  metricsPort: number,
  pollInterval: string,
): TrainJobObject {
  return {
    apiVersion: `${TRAINJOB_GROUP}/${TRAINJOB_VERSION}`,
    kind: TRAINJOB_KIND,
    metadata: {
      name,
      namespace,
      annotations: {
        [PROGRESSION_TRACKING_ANNOTATION]: 'true',
        [METRICS_PORT_ANNOTATION]: String(metricsPort),
        [METRICS_POLL_INTERVAL_ANNOTATION]: pollInterval,
      },
    },
    spec: { runtimeRef: { name: 'torch-distributed' } },
  };
}

/**
 * Builds the rank-0 trainer pod as the Job controller creates it for a JobSet: only generateName,
 * the JobSet labels, and the completion index as both annotation and label.
 */
export function buildPrimaryPod(trainJobName: string, serviceAccountName: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${trainJobName}-${TRAINER_REPLICATED_JOB}-0-0-`,
      labels: {
        [JOBSET_NAME_LABEL]: trainJobName,
        [REPLICATED_JOB_NAME_LABEL]: TRAINER_REPLICATED_JOB,
        [JOB_INDEX_LABEL]: '0',
        [COMPLETION_INDEX_KEY]: '0',
        'batch.kubernetes.io/job-name': `${trainJobName}-${TRAINER_REPLICATED_JOB}-0`,
      },
      annotations: { [COMPLETION_INDEX_KEY]: '0' },
    },
    spec: {
      serviceAccountName,
      restartPolicy: 'Never',
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: TRAINER_CONTAINER_NAME,
          image: 'docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
          command: ['python3', '/workspace/train_digits.py'],
          terminationMessagePath: '/dev/termination-log',
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          },
          resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { memory: '2Gi' } },
        },
      ],
    },
  };
}

/** Registers the webhook at a loopback URL, with the defaults the Helm chart uses. */
export function buildWebhookConfiguration(name: string, url: string, caBundlePem: string) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name },
    webhooks: [
      {
        name: 'pods.trainjob-progress.opendatahub.io',
        admissionReviewVersions: ['v1'],
        clientConfig: { url, caBundle: Buffer.from(caBundlePem).toString('base64') },
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        timeoutSeconds: 5,
        reinvocationPolicy: 'Never',
        rules: [
          {
            apiGroups: [''],
            apiVersions: ['v1'],
            operations: ['CREATE'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        objectSelector: { matchExpressions: [{ key: JOBSET_NAME_LABEL, operator: 'Exists' }] },
        namespaceSelector: {
          matchExpressions: [
            {
              key: 'kubernetes.io/metadata.name',
              operator: 'NotIn',
              values: ['kube-system', 'kube-public', 'kube-node-lease'],
            },
          ],
        },
      },
    ],
  };
}
