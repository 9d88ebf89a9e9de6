// The container and volume that the webhook injects, as raw pod-spec JSON.
//
// The sidecar has no probes, because it must never delay or block training. It serves no port
// and does not depend on the trainer or the aggregator being up, so a probe could check
// nothing beyond the process being alive. The kubelet restarts a native sidecar that crashes,
// because of its restartPolicy Always.

import { JOBSET_NAME_LABEL, SIDECAR_CONTAINER_NAME } from '../shared/annotations.ts';
import {
  SIDECAR_ENV,
  TOKEN_EXPIRATION_SECONDS,
  TOKEN_FILE_NAME,
  TOKEN_MOUNT_PATH,
  TOKEN_VOLUME_NAME,
} from '../shared/sidecar-env.ts';
import type { JsonObject } from './json-object.ts';
import type { PodSettings } from './pod-settings.ts';
import { MEBIBYTE, parseQuantity } from './quantity.ts';

/** Chart-wide properties of the sidecar that no TrainJob overrides. */
export interface SidecarImageOptions {
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** WebSocket URL of the aggregator's ingest endpoint. */
  aggregatorUrl: string;
  /** Audience of the projected service-account token. */
  tokenAudience: string;
}

/** UID and GID of the `nonroot` user in distroless images. */
export const SIDECAR_USER_ID = 65532;
/** Share of the memory limit given to the V8 heap; the rest covers code, buffers and stacks. */
const HEAP_SHARE_OF_MEMORY_LIMIT = 0.6;
const MIN_HEAP_MIB = 16;

/** Builds the sidecar container for a TrainJob's settings. */
export function buildSidecarContainer(
  settings: PodSettings,
  options: SidecarImageOptions,
): JsonObject {
  const { resources } = settings;
  const container: JsonObject = {
    name: SIDECAR_CONTAINER_NAME,
    image: options.image,
    imagePullPolicy: options.imagePullPolicy,
    args: ['sidecar'],
    env: buildSidecarEnv(settings, options),
    resources: {
      requests: { cpu: resources.cpuRequest, memory: resources.memoryRequest },
      limits: { cpu: resources.cpuLimit, memory: resources.memoryLimit },
    },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_USER_ID,
      runAsGroup: SIDECAR_USER_ID,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [tokenVolumeMount()],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  // An init container with restartPolicy Always is a native sidecar: it starts before the
  // trainer, runs beside it, and does not keep the pod or its Job from completing.
  if (settings.sidecarMode === 'native') container.restartPolicy = 'Always';
  return container;
}

/** Builds the sidecar's environment; every value is a non-empty string or a downward-API field. */
export function buildSidecarEnv(settings: PodSettings, options: SidecarImageOptions): JsonObject[] {
  return [
    { name: SIDECAR_ENV.aggregatorUrl, value: options.aggregatorUrl },
    { name: SIDECAR_ENV.metricsPort, value: String(settings.metricsPort) },
    { name: SIDECAR_ENV.metricsPath, value: settings.metricsPath },
    { name: SIDECAR_ENV.scrapeIntervalSeconds, value: String(settings.scrapeIntervalSeconds) },
    { name: SIDECAR_ENV.pollIntervalSeconds, value: String(settings.pollIntervalSeconds) },
    { name: SIDECAR_ENV.tokenFile, value: `${TOKEN_MOUNT_PATH}/${TOKEN_FILE_NAME}` },
    { name: SIDECAR_ENV.mode, value: settings.sidecarMode },
    fieldRefEnv(SIDECAR_ENV.podName, 'metadata.name'),
    fieldRefEnv(SIDECAR_ENV.podNamespace, 'metadata.namespace'),
    fieldRefEnv(SIDECAR_ENV.podUid, 'metadata.uid'),
    fieldRefEnv(SIDECAR_ENV.trainJobName, `metadata.labels['${JOBSET_NAME_LABEL}']`),
    {
      name: 'NODE_OPTIONS',
      value: `--max-old-space-size=${heapLimitMiB(settings.resources.memoryLimit)}`,
    },
  ];
}

/** Builds the projected volume with the sidecar's short-lived service-account token. */
export function buildTokenVolume(audience: string): JsonObject {
  return {
    name: TOKEN_VOLUME_NAME,
    projected: {
      sources: [
        {
          serviceAccountToken: {
            audience,
            expirationSeconds: TOKEN_EXPIRATION_SECONDS,
            path: TOKEN_FILE_NAME,
          },
        },
      ],
    },
  };
}

export function tokenVolumeMount(): JsonObject {
  return { name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true };
}

/** Sizes the V8 heap in MiB from a memory limit: 60 % of it, at least 16 MiB. */
export function heapLimitMiB(memoryLimit: string): number {
  const bytes = parseQuantity(memoryLimit) ?? 0;
  return Math.max(MIN_HEAP_MIB, Math.floor((bytes / MEBIBYTE) * HEAP_SHARE_OF_MEMORY_LIMIT));
}

function fieldRefEnv(name: string, fieldPath: string): JsonObject {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}
