// Kubelet duties for the demo's pod, done by hand because no kubelet runs on the local
// control plane: resolving downward-API environment values, mounting projected
// service-account tokens, and reporting container states through the pod status subresource.

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import {
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Api,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * Resolves a container's environment as the kubelet would: literal values, and `fieldRef`
 * values from the pod's metadata and spec. Throws on a source the demo cannot resolve, so a
 * new kind of reference in the injected sidecar is noticed instead of silently left empty.
 */
export function resolveContainerEnv(pod: V1Pod, container: V1Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) {
      env[variable.name] = variable.value;
    } else if (variable.valueFrom?.fieldRef !== undefined) {
      env[variable.name] = resolveFieldPath(pod, variable.valueFrom.fieldRef.fieldPath);
    } else if (variable.valueFrom?.resourceFieldRef !== undefined) {
      env[variable.name] = resolveResourceField(container, variable.valueFrom.resourceFieldRef);
    } else {
      throw new Error(`environment variable ${variable.name} has a source the demo cannot resolve`);
    }
  }
  return env;
}

function resolveFieldPath(pod: V1Pod, fieldPath: string): string {
  const metadata = pod.metadata ?? {};
  const mapMatch = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (mapMatch !== null) {
    const map = mapMatch[1] === 'labels' ? metadata.labels : metadata.annotations;
    return map?.[mapMatch[2]!] ?? '';
  }
  const fields: Record<string, string | undefined> = {
    'metadata.name': metadata.name,
    'metadata.namespace': metadata.namespace,
    'metadata.uid': metadata.uid,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
    'spec.nodeName': pod.spec?.nodeName,
    'status.podIP': '127.0.0.1',
    'status.hostIP': '127.0.0.1',
  };
  if (!(fieldPath in fields)) throw new Error(`unsupported fieldRef path ${fieldPath}`);
  return fields[fieldPath] ?? '';
}

function resolveResourceField(
  container: V1Container,
  reference: { resource: string; divisor?: string | number },
): string {
  const [kind, resource] = reference.resource.split('.') as [string, string];
  const quantities =
    kind === 'limits' ? container.resources?.limits : container.resources?.requests;
  const quantity = quantities?.[resource];
  if (quantity === undefined) throw new Error(`container has no ${reference.resource}`);
  return String(quantity);
}

/**
 * Mounts the container's projected service-account token volumes under `localRoot`: requests from the
 * TokenRequest API a token bound to the pod, with the volume's audience and lifetime, and
 * writes it where the container expects it. Returns a map from each mount path to its local
 * folder, so paths in the environment can be rewritten.
 */
export async function mountProjectedTokens(
  core: CoreV1Api,
  pod: V1Pod,
  container: V1Container,
  localRoot: string,
): Promise<Map<string, string>> {
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.spec?.volumes?.find((candidate) => candidate.name === mount.name);
    const sources = volume?.projected?.sources ?? [];
    const tokenSources = sources.filter((source) => source.serviceAccountToken !== undefined);
    if (tokenSources.length === 0) continue;
    const localDir = path.join(localRoot, mount.name);
    await mkdir(localDir, { recursive: true });
    for (const source of tokenSources) {
      const projection = source.serviceAccountToken!;
      const token = await requestPodToken(
        core,
        pod,
        projection.audience,
        projection.expirationSeconds,
      );
      await writeFile(path.join(localDir, projection.path), token, { mode: 0o600 });
    }
    mounts.set(mount.mountPath, localDir);
  }
  return mounts;
}

async function requestPodToken(
  core: CoreV1Api,
  pod: V1Pod,
  audience: string | undefined,
  expirationSeconds: number | undefined,
): Promise<string> {
  const response = await core.createNamespacedServiceAccountToken({
    name: pod.spec?.serviceAccountName ?? 'default',
    namespace: pod.metadata!.namespace!,
    body: {
      spec: {
        audiences: audience === undefined ? [] : [audience],
        expirationSeconds: expirationSeconds ?? 3600,
        boundObjectRef: {
          apiVersion: 'v1',
          kind: 'Pod',
          name: pod.metadata!.name!,
          uid: pod.metadata!.uid!,
        },
      },
    },
  });
  const token = response.status?.token;
  if (token === undefined || token === '') {
    throw new Error(`TokenRequest for pod ${pod.metadata!.name} returned no token`);
  }
  return token;
}

/** Rewrites environment values under a container mount path to the local folder. */
export function rewriteMountPaths(
  env: Record<string, string>,
  mounts: Map<string, string>,
): Record<string, string> {
  const rewritten = { ...env };
  for (const [name, value] of Object.entries(rewritten)) {
    for (const [mountPath, localDir] of mounts) {
      if (value === mountPath || value.startsWith(`${mountPath}/`)) {
        rewritten[name] = localDir + value.slice(mountPath.length);
      }
    }
  }
  return rewritten;
}

/** Reports the pod as running on this machine, as the kubelet does once containers start. */
export async function reportPodRunning(core: CoreV1Api, pod: V1Pod): Promise<void> {
  const now = new Date().toISOString();
  const containerStatuses = (pod.spec?.containers ?? []).map((container) => ({
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    ready: true,
    restartCount: 0,
    started: true,
    state: { running: { startedAt: now } },
  }));
  await patchPodStatus(core, pod, {
    phase: 'Running',
    podIP: '127.0.0.1',
    hostIP: '127.0.0.1',
    startTime: now,
    containerStatuses,
  });
}

/** Reports the trainer container as terminated with its termination message. */
export async function reportContainerTerminated(
  core: CoreV1Api,
  pod: V1Pod,
  containerName: string,
  exitCode: number,
  message: string,
): Promise<void> {
  const container = pod.spec?.containers?.find((candidate) => candidate.name === containerName);
  const now = new Date().toISOString();
  await patchPodStatus(core, pod, {
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    containerStatuses: [
      {
        name: containerName,
        image: container?.image ?? '',
        imageID: '',
        ready: false,
        restartCount: 0,
        started: false,
        state: {
          terminated: {
            exitCode,
            reason: exitCode === 0 ? 'Completed' : 'Error',
            message,
            startedAt: pod.status?.startTime ?? now,
            finishedAt: now,
          },
        },
      },
    ],
  });
}

async function patchPodStatus(core: CoreV1Api, pod: V1Pod, status: object): Promise<void> {
  await core.patchNamespacedPodStatus(
    { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status } },
    MERGE_PATCH,
  );
}
