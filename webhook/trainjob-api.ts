// List, watch and get of TrainJobs through the API server, reduced to the metadata that the
// webhook reads.

import { Watch } from '@kubernetes/client-node';
import {
  ANNOTATION_PREFIX,
  TRAINER_STATUS_ANNOTATION,
  TRAINJOB_GROUP,
  TRAINJOB_PLURAL,
  TRAINJOB_VERSION,
} from '../shared/annotations.ts';
import type { TrainJobObject } from '../shared/trainjob.ts';
import { isJsonObject, objectField, stringField } from './json-object.ts';
import { hasStatus, KubeApiError, type KubeClient } from './kube-client.ts';

export interface TrainJobList {
  items: TrainJobObject[];
  resourceVersion: string;
}

/** A watch event: ADDED, MODIFIED, DELETED or BOOKMARK with its object already reduced. */
export interface TrainJobEvent {
  type: string;
  object: TrainJobObject;
}

/** The API calls that the TrainJob cache makes; tests pass a fake. */
export interface TrainJobApi {
  list(signal: AbortSignal): Promise<TrainJobList>;
  /**
   * Watches from `resourceVersion` until the watch ends (resolves) or fails (rejects). A
   * rejection with status 410 means the version is too old and the caller must list again.
   */
  watch(
    resourceVersion: string,
    onEvent: (event: TrainJobEvent) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /** Returns the TrainJob, or undefined when it does not exist. */
  get(namespace: string, name: string, signal: AbortSignal): Promise<TrainJobObject | undefined>;
}

const COLLECTION_PATH = `/apis/${TRAINJOB_GROUP}/${TRAINJOB_VERSION}/${TRAINJOB_PLURAL}`;
const LIST_PAGE_SIZE = 500;

/** Returns a TrainJobApi backed by the API server. */
export function kubeTrainJobApi(client: KubeClient): TrainJobApi {
  return {
    list: (signal) => listAll(client, signal),
    watch: (resourceVersion, onEvent, signal) =>
      watchFrom(new Watch(client.kubeConfig), resourceVersion, onEvent, signal),
    get: async (namespace, name, signal) => {
      const path = `/apis/${TRAINJOB_GROUP}/${TRAINJOB_VERSION}/namespaces/${encodeURIComponent(namespace)}/${TRAINJOB_PLURAL}/${encodeURIComponent(name)}`;
      try {
        return reduceTrainJob(await client.request('GET', path, { signal }));
      } catch (error) {
        if (hasStatus(error, 404)) return undefined;
        throw error;
      }
    },
  };
}

async function listAll(client: KubeClient, signal: AbortSignal): Promise<TrainJobList> {
  const items: TrainJobObject[] = [];
  let resourceVersion: string;
  let continueToken = '';
  do {
    const query = new URLSearchParams({ limit: String(LIST_PAGE_SIZE) });
    if (continueToken !== '') query.set('continue', continueToken);
    const page = await client.request('GET', `${COLLECTION_PATH}?${query.toString()}`, { signal });
    const metadata = isJsonObject(page) ? objectField(page, 'metadata') : undefined;
    for (const item of isJsonObject(page) && Array.isArray(page.items) ? page.items : []) {
      const trainJob = reduceTrainJob(item);
      if (trainJob !== undefined) items.push(trainJob);
    }
    resourceVersion = stringField(metadata, 'resourceVersion') ?? '';
    continueToken = stringField(metadata, 'continue') ?? '';
  } while (continueToken !== '');
  return { items, resourceVersion };
}

function watchFrom(
  watcher: Watch,
  resourceVersion: string,
  onEvent: (event: TrainJobEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let controller: AbortController | undefined;
    let failure: KubeApiError | undefined;
    const handleLine = (type: string, object: unknown): void => {
      if (failure !== undefined) return;
      if (type === 'ERROR') {
        const status = isJsonObject(object) && typeof object.code === 'number' ? object.code : 500;
        failure = new KubeApiError('WATCH', COLLECTION_PATH, status, object);
        controller?.abort();
        return;
      }
      const trainJob = reduceTrainJob(object);
      if (trainJob !== undefined) onEvent({ type, object: trainJob });
    };
    const done = (error: unknown): void => {
      if (failure !== undefined) reject(failure);
      // client-node ends a watch that sent nothing for 30 s with a TimeoutError. The caller
      // then watches again from the last version, so a silently dead stream is replaced too.
      else if (error && (error as { name?: unknown }).name !== 'TimeoutError' && !signal.aborted) {
        reject(toWatchError(error));
      } else resolve();
    };
    const query = { resourceVersion, allowWatchBookmarks: true };
    watcher.watch(COLLECTION_PATH, query, handleLine, done).then((started) => {
      controller = started;
      if (signal.aborted) started.abort();
      else signal.addEventListener('abort', () => started.abort(), { once: true });
    }, reject);
  });
}

function toWatchError(error: unknown): Error {
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number') {
    return new KubeApiError('WATCH', COLLECTION_PATH, status, {
      message: (error as Error).message,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Keeps what the webhook reads: name, namespace, resourceVersion and the annotations with the
 * add-on's prefix, except the large status annotation. Returns undefined for non-objects.
 */
export function reduceTrainJob(object: unknown): TrainJobObject | undefined {
  const metadata = isJsonObject(object) ? objectField(object, 'metadata') : undefined;
  const name = stringField(metadata, 'name');
  const namespace = stringField(metadata, 'namespace');
  if (name === undefined || namespace === undefined) return undefined;
  const annotations: Record<string, string> = {};
  const source = objectField(metadata, 'annotations') ?? {};
  for (const key in source) {
    const value = source[key];
    if (
      key.startsWith(ANNOTATION_PREFIX) &&
      key !== TRAINER_STATUS_ANNOTATION &&
      typeof value === 'string'
    ) {
      annotations[key] = value;
    }
  }
  const trainJob: TrainJobObject = { metadata: { name, namespace, annotations } };
  const resourceVersion = stringField(metadata, 'resourceVersion');
  if (resourceVersion !== undefined) trainJob.metadata.resourceVersion = resourceVersion;
  return trainJob;
}
