// Writes to TrainJobs: the status annotation as a JSON merge patch that touches only that
// key (custom resources reject strategic merge patches, and a merge patch without a
// resourceVersion never conflicts), and the optional status mirror.

import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import {
  TRAINER_STATUS_ANNOTATION,
  TRAINJOB_GROUP,
  TRAINJOB_PLURAL,
  TRAINJOB_VERSION,
} from '../shared/annotations.ts';
import { isRetryable, retryAfterMs, statusCodeOf } from '../shared/kube-errors.ts';

/**
 * The result of one write: `written`; `gone` when the TrainJob no longer exists (404);
 * `retry` when repeating it may succeed (no response, 401, 403, 408, 429, 5xx); `rejected`
 * when the API server refused this content (other 4xx), which only a new content fixes.
 */
export type WriteOutcome =
  | { result: 'written' }
  | { result: 'gone' }
  | { result: 'retry'; error: unknown; statusCode: number | undefined; retryAfterMs?: number }
  | { result: 'rejected'; error: unknown; statusCode: number };

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const SERVER_SIDE_APPLY = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

export interface TrainJobWriter {
  writeAnnotation(namespace: string, name: string, value: string): Promise<WriteOutcome>;
  applyStatus(namespace: string, name: string, status: object): Promise<WriteOutcome>;
}

export class StatusWriter implements TrainJobWriter {
  readonly #api: CustomObjectsApi;
  readonly #fieldManager: string;

  constructor(kubeConfig: KubeConfig, fieldManager: string) {
    this.#api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.#fieldManager = fieldManager;
  }

  /** Sets the status annotation with a merge patch of `{"metadata":{"annotations":{…}}}`. */
  async writeAnnotation(namespace: string, name: string, value: string): Promise<WriteOutcome> {
    const body = { metadata: { annotations: { [TRAINER_STATUS_ANNOTATION]: value } } };
    return this.#call(() =>
      this.#api.patchNamespacedCustomObject(
        { ...this.#target(namespace, name), body, fieldManager: this.#fieldManager },
        MERGE_PATCH,
      ),
    );
  }

  /** Server-side applies `status` on the status subresource under this field manager. */
  async applyStatus(namespace: string, name: string, status: object): Promise<WriteOutcome> {
    const body = {
      apiVersion: `${TRAINJOB_GROUP}/${TRAINJOB_VERSION}`,
      kind: 'TrainJob',
      metadata: { name, namespace },
      status,
    };
    return this.#call(() =>
      this.#api.patchNamespacedCustomObjectStatus(
        { ...this.#target(namespace, name), body, fieldManager: this.#fieldManager, force: true },
        SERVER_SIDE_APPLY,
      ),
    );
  }

  #target(namespace: string, name: string) {
    return {
      group: TRAINJOB_GROUP,
      version: TRAINJOB_VERSION,
      plural: TRAINJOB_PLURAL,
      namespace,
      name,
    };
  }

  async #call(request: () => Promise<unknown>): Promise<WriteOutcome> {
    try {
      await request();
      return { result: 'written' };
    } catch (error) {
      return classifyWriteError(error);
    }
  }
}

/** Maps a failed write to an outcome by its HTTP status code; see WriteOutcome. */
export function classifyWriteError(error: unknown): WriteOutcome {
  const statusCode = statusCodeOf(error);
  if (statusCode === 404) return { result: 'gone' };
  if (statusCode === undefined || isRetryable(error) || statusCode === 401 || statusCode === 403) {
    const outcome: WriteOutcome = { result: 'retry', error, statusCode };
    const delay = retryAfterMs(error);
    if (delay !== undefined) outcome.retryAfterMs = delay;
    return outcome;
  }
  return { result: 'rejected', error, statusCode };
}
