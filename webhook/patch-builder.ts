// The JSON Patch that injects the sidecar into a raw pod.
//
// Input: the pod exactly as the API server sent it, and the container, volume and annotation
// to inject. Output: RFC 6902 operations that only add. A missing or null map or array is
// created whole, a present one is appended to (`/-`) or given new keys, so nothing that is
// already in the pod is removed, replaced or moved. The parts of an injection that the pod
// already has are kept and not added twice. These are the sidecar container (in either list),
// a volume named like the token volume, the injected annotation, and the env vars and token
// mount of an existing sidecar container. Applying the output and building again yields no
// operations.
//
// A container named like the sidecar counts as an earlier injection only when it carries a
// marker of one: the injected annotation on the pod, the aggregator URL env var, or the token
// mount. Any other container of that name belongs to the user, and the builder throws
// ContainerNameConflictError instead of changing it.

import { SIDECAR_CONTAINER_NAME } from '../shared/annotations.ts';
import { SIDECAR_ENV, TOKEN_MOUNT_PATH, TOKEN_VOLUME_NAME } from '../shared/sidecar-env.ts';
import { isJsonObject, objectField, type JsonObject } from './json-object.ts';

export interface AddOperation {
  op: 'add';
  path: string;
  value: unknown;
}

export type ContainerList = 'initContainers' | 'containers';

export interface SidecarInjection {
  container: JsonObject;
  volume: JsonObject;
  /** List that a new sidecar container goes into: native sidecars are init containers. */
  containerList: ContainerList;
  annotation: { key: string; value: string };
}

/** Error for a pod field of the wrong JSON type, which an add-only patch cannot fix. */
export class PodShapeError extends Error {
  readonly code = 'ERR_POD_SHAPE';
}

/** Error for a container named like the sidecar that carries no marker of an injection. */
export class ContainerNameConflictError extends Error {
  readonly code = 'ERR_CONTAINER_NAME_CONFLICT';
  /** JSON Pointer of the conflicting container, such as `/spec/containers/1`. */
  readonly path: string;

  constructor(path: string) {
    super(
      `container ${JSON.stringify(SIDECAR_CONTAINER_NAME)} at ${path} was not added by the ` +
        'trainjob-progress webhook; rename it to get the progress sidecar',
    );
    this.path = path;
  }
}

/** Escapes a key for a JSON Pointer: `~` becomes `~0`, then `/` becomes `~1`. */
export function escapePointerSegment(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * Builds the add-only patch described in the file header. Throws PodShapeError and
 * ContainerNameConflictError.
 */
export function buildInjectionPatch(pod: JsonObject, injection: SidecarInjection): AddOperation[] {
  const operations: AddOperation[] = [];
  const annotatedBefore = Object.hasOwn(
    objectField(objectField(pod, 'metadata'), 'annotations') ?? {},
    injection.annotation.key,
  );
  addAnnotation(pod, injection.annotation, operations);
  const spec = pod.spec;
  if (!isJsonObject(spec)) throw new PodShapeError('the pod has no spec object');
  addVolume(spec, injection.volume, operations);
  addContainer(spec, injection, annotatedBefore, operations);
  return operations;
}

function addAnnotation(
  pod: JsonObject,
  annotation: SidecarInjection['annotation'],
  operations: AddOperation[],
): void {
  const metadata = fieldOfType(pod, 'metadata', 'object', '/metadata');
  if (metadata === undefined) {
    const value = { annotations: { [annotation.key]: annotation.value } };
    operations.push({ op: 'add', path: '/metadata', value });
    return;
  }
  const annotations = fieldOfType(metadata, 'annotations', 'object', '/metadata/annotations');
  if (annotations === undefined) {
    const value = { [annotation.key]: annotation.value };
    operations.push({ op: 'add', path: '/metadata/annotations', value });
  } else if (!Object.hasOwn(annotations, annotation.key)) {
    const path = `/metadata/annotations/${escapePointerSegment(annotation.key)}`;
    operations.push({ op: 'add', path, value: annotation.value });
  }
}

function addVolume(spec: JsonObject, volume: JsonObject, operations: AddOperation[]): void {
  appendUnlessNamed(spec, 'volumes', '/spec/volumes', volume, operations);
}

function addContainer(
  spec: JsonObject,
  injection: SidecarInjection,
  annotatedBefore: boolean,
  operations: AddOperation[],
): void {
  for (const list of ['initContainers', 'containers'] as const) {
    const containers = fieldOfType(spec, list, 'array', `/spec/${list}`);
    const index = containers?.findIndex((item) => nameOf(item) === SIDECAR_CONTAINER_NAME) ?? -1;
    if (index >= 0) {
      const existing = containers![index] as JsonObject;
      const path = `/spec/${list}/${index}`;
      if (!annotatedBefore && !hasInjectionMarker(existing)) {
        throw new ContainerNameConflictError(path);
      }
      completeContainer(existing, path, injection.container, operations);
      return;
    }
  }
  const list = injection.containerList;
  appendUnlessNamed(spec, list, `/spec/${list}`, injection.container, operations);
}

// Tolerates fields of the wrong type, which completeContainer reports as PodShapeError.
function hasInjectionMarker(container: JsonObject): boolean {
  const { env, volumeMounts } = container;
  const hasUrl =
    Array.isArray(env) && env.some((item) => nameOf(item) === SIDECAR_ENV.aggregatorUrl);
  const hasMount = Array.isArray(volumeMounts) && volumeMounts.some(isTokenMount);
  return hasUrl || hasMount;
}

function isTokenMount(item: unknown): boolean {
  return (
    isJsonObject(item) && (item.name === TOKEN_VOLUME_NAME || item.mountPath === TOKEN_MOUNT_PATH)
  );
}

// Adds the env vars and the token mount that an earlier, partial injection left out.
function completeContainer(
  existing: JsonObject,
  path: string,
  expected: JsonObject,
  operations: AddOperation[],
): void {
  const env = fieldOfType(existing, 'env', 'array', `${path}/env`);
  const expectedEnv = (expected.env as JsonObject[] | undefined) ?? [];
  if (env === undefined) {
    operations.push({ op: 'add', path: `${path}/env`, value: expectedEnv });
  } else {
    for (const item of expectedEnv) {
      if (!env.some((present) => nameOf(present) === item.name)) {
        operations.push({ op: 'add', path: `${path}/env/-`, value: item });
      }
    }
  }
  const mounts = fieldOfType(existing, 'volumeMounts', 'array', `${path}/volumeMounts`);
  const mount = ((expected.volumeMounts as JsonObject[] | undefined) ?? [])[0];
  if (mount === undefined) return;
  const mounted = mounts?.some(isTokenMount);
  if (mounts === undefined) {
    operations.push({ op: 'add', path: `${path}/volumeMounts`, value: [mount] });
  } else if (!mounted) {
    operations.push({ op: 'add', path: `${path}/volumeMounts/-`, value: mount });
  }
}

// Appends `item` to the array `parent[key]`, creating the array when it is missing or null,
// unless an element with the same name is already there.
function appendUnlessNamed(
  parent: JsonObject,
  key: string,
  path: string,
  item: JsonObject,
  operations: AddOperation[],
): void {
  const items = fieldOfType(parent, key, 'array', path);
  if (items === undefined) {
    operations.push({ op: 'add', path, value: [item] });
  } else if (!items.some((existing) => nameOf(existing) === item.name)) {
    operations.push({ op: 'add', path: `${path}/-`, value: item });
  }
}

function fieldOfType(
  parent: JsonObject,
  key: string,
  type: 'object',
  path: string,
): JsonObject | undefined;
function fieldOfType(
  parent: JsonObject,
  key: string,
  type: 'array',
  path: string,
): unknown[] | undefined;
function fieldOfType(
  parent: JsonObject,
  key: string,
  type: 'object' | 'array',
  path: string,
): JsonObject | unknown[] | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return undefined;
  if (type === 'array' ? Array.isArray(value) : isJsonObject(value)) {
    return value as JsonObject | unknown[];
  }
  throw new PodShapeError(`${path} is not ${type === 'array' ? 'an array' : 'an object'}`);
}

function nameOf(item: unknown): unknown {
  return isJsonObject(item) ? item.name : undefined;
}
