// Lists, then watches, TrainJobs, and keeps doing so whatever happens to the connection.
//
// Each watch starts from the resourceVersion of the last list or event. The API server
// ends a watch after WATCH_TIMEOUT_SECONDS, which is below the 30-second inactivity abort
// of client-node 2.0's Watch, and a new watch starts at once from where the last one
// stopped. A 410 Gone answer
// or ERROR event means that version has been compacted away: the watcher lists again. Other
// failures retry with capped exponential backoff, which resets once events arrive. A
// watchdog aborts a watch that neither sends anything nor ends within WATCHDOG_MS, because
// watches can go silent without an error.

import { CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import { TRAINJOB_GROUP, TRAINJOB_PLURAL, TRAINJOB_VERSION } from './annotations.ts';
import type { Logger } from './logger.ts';
import type { TrainJobObject } from './trainjob.ts';
import { backoffDelayMs, sleep, type BackoffPolicy } from './backoff.ts';
import { describeApiError, statusCodeOf } from './kube-errors.ts';

export const WATCH_TIMEOUT_SECONDS = 25;
export const WATCHDOG_MS = 45_000;
export const LIST_PAGE_SIZE = 500;
const MIN_WATCH_MS = 1000;
export const WATCH_RETRY_POLICY: BackoffPolicy = Object.freeze({ initialMs: 1000, maxMs: 30_000 });

export interface TrainJobWatchHandlers {
  /** A complete list, after the first start and after every relist. */
  onList(trainJobs: TrainJobObject[]): void;
  onUpsert(trainJob: TrainJobObject): void;
  onDelete(trainJob: TrainJobObject): void;
  /** Counts restarts by reason: `expired`, `timeout`, `watchdog`, `error`. */
  onRestart?(reason: string): void;
}

export interface TrainJobWatcherOptions {
  /** Watch one namespace; all namespaces when undefined. */
  namespace?: string;
  /** E.g. `metadata.name=my-job`, to follow a single TrainJob. */
  fieldSelector?: string;
  logger: Logger;
  watchdogMs?: number;
  retryPolicy?: BackoffPolicy;
}

type WatchEnd =
  | { kind: 'ended'; eventsSeen: boolean }
  | { kind: 'expired' }
  | { kind: 'failed'; error: unknown; eventsSeen: boolean };

export class TrainJobWatcher {
  readonly #kubeConfig: KubeConfig;
  readonly #api: CustomObjectsApi;
  readonly #handlers: TrainJobWatchHandlers;
  readonly #options: TrainJobWatcherOptions;
  readonly #stop = new AbortController();
  #resourceVersion: string | undefined;
  #loop: Promise<void> | undefined;
  #abortWatch: (() => void) | undefined;

  constructor(
    kubeConfig: KubeConfig,
    handlers: TrainJobWatchHandlers,
    options: TrainJobWatcherOptions,
  ) {
    this.#kubeConfig = kubeConfig;
    this.#api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.#handlers = handlers;
    this.#options = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Stops the watcher: an in-flight list is abandoned and an open watch is aborted at once,
   * so the returned promise settles without waiting for the watch timeout. Safe to call from
   * a handler.
   */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#abortWatch?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { logger } = this.#options;
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      let end: WatchEnd;
      try {
        if (this.#resourceVersion === undefined)
          await untilAborted(this.#list(), this.#stop.signal);
        // A handler of the list may have stopped the watcher.
        if (this.#stop.signal.aborted) break;
        end = await this.#watchOnce(this.#resourceVersion!);
      } catch (error) {
        end = { kind: 'failed', error, eventsSeen: false };
      }
      if (this.#stop.signal.aborted) break;
      if (end.kind === 'expired') {
        this.#resourceVersion = undefined;
        this.#handlers.onRestart?.('expired');
        logger.info('TrainJob watch expired (410 Gone), listing again');
        continue;
      }
      if (end.eventsSeen) attempt = 0;
      if (end.kind === 'ended') continue;
      attempt++;
      const delayMs = backoffDelayMs(attempt, this.#options.retryPolicy ?? WATCH_RETRY_POLICY);
      this.#handlers.onRestart?.('error');
      logger.warn(
        { error: describeApiError(end.error), attempt, retryInMs: delayMs },
        'TrainJob list or watch failed, retrying',
      );
      await sleep(delayMs, this.#stop.signal);
    }
  }

  async #list(): Promise<void> {
    const items: TrainJobObject[] = [];
    let continueToken: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = (await this.#listPage(continueToken)) as {
        items: TrainJobObject[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      items.push(...page.items);
      resourceVersion = page.metadata?.resourceVersion;
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken !== undefined && !this.#stop.signal.aborted);
    // After stop(), a list that was abandoned in flight must not reach the handlers.
    if (this.#stop.signal.aborted) return;
    this.#handlers.onList(items);
    this.#resourceVersion = resourceVersion;
  }

  #listPage(continueToken: string | undefined): Promise<unknown> {
    const common = {
      group: TRAINJOB_GROUP,
      version: TRAINJOB_VERSION,
      limit: LIST_PAGE_SIZE,
      ...(continueToken === undefined ? {} : { _continue: continueToken }),
      ...(this.#options.fieldSelector === undefined
        ? {}
        : { fieldSelector: this.#options.fieldSelector }),
    };
    const namespace = this.#options.namespace;
    return namespace === undefined
      ? this.#api.listCustomObjectForAllNamespaces({ ...common, resourcePlural: TRAINJOB_PLURAL })
      : this.#api.listNamespacedCustomObject({ ...common, namespace, plural: TRAINJOB_PLURAL });
  }

  #watchPath(): string {
    const namespace = this.#options.namespace;
    const scope = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
    return `/apis/${TRAINJOB_GROUP}/${TRAINJOB_VERSION}${scope}/${TRAINJOB_PLURAL}`;
  }

  // Runs one watch request until it ends, fails, expires or goes silent.
  #watchOnce(resourceVersion: string): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let eventsSeen = false;
      let settled = false;
      let controller: AbortController | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        this.#abortWatch = undefined;
        controller?.abort();
        resolve(end);
      };
      const armWatchdog = (): void => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          this.#handlers.onRestart?.('watchdog');
          this.#options.logger.warn(
            { watchdogMs: this.#watchdogMs },
            'TrainJob watch went silent, restarting it',
          );
          finish({ kind: 'ended', eventsSeen });
        }, this.#watchdogMs);
      };
      this.#abortWatch = () => finish({ kind: 'ended', eventsSeen });
      if (this.#stop.signal.aborted) return finish({ kind: 'ended', eventsSeen });
      armWatchdog();

      const startedAt = Date.now();
      const onEvent = (type: string, object: unknown): void => {
        armWatchdog();
        let end: WatchEnd | undefined;
        try {
          end = this.#handleEvent(type, object);
        } catch (error) {
          // client-node drops exceptions thrown by watch callbacks without a trace.
          this.#options.logger.error(
            { err: error, type },
            'handling a TrainJob watch event failed',
          );
        }
        if (end !== undefined) finish(end);
        else eventsSeen = true;
      };
      const onDone = (error: unknown): void => {
        if (error === null || error === undefined) {
          // A watch that closes at once without events would otherwise restart in a tight loop.
          if (!eventsSeen && Date.now() - startedAt < MIN_WATCH_MS) {
            return finish({ kind: 'failed', error: new Error('watch closed at once'), eventsSeen });
          }
          return finish({ kind: 'ended', eventsSeen });
        }
        if (statusCodeOf(error) === 410) return finish({ kind: 'expired' });
        if (
          (error as { name?: string }).name === 'AbortError' ||
          (error as { name?: string }).name === 'TimeoutError'
        ) {
          this.#handlers.onRestart?.('timeout');
          return finish({ kind: 'ended', eventsSeen });
        }
        finish({ kind: 'failed', error, eventsSeen });
      };
      const query = {
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: WATCH_TIMEOUT_SECONDS,
        ...(this.#options.fieldSelector === undefined
          ? {}
          : { fieldSelector: this.#options.fieldSelector }),
      };
      new Watch(this.#kubeConfig).watch(this.#watchPath(), query, onEvent, onDone).then(
        (started) => {
          controller = started;
          if (settled) started.abort();
        },
        (error: unknown) => finish({ kind: 'failed', error, eventsSeen }),
      );
    });
  }

  get #watchdogMs(): number {
    return this.#options.watchdogMs ?? WATCHDOG_MS;
  }

  // Applies one watch event; returns how the watch ends when the event ends it.
  #handleEvent(type: string, object: unknown): WatchEnd | undefined {
    if (type === 'ERROR') {
      const status = object as { code?: number; message?: string };
      if (status.code === 410) return { kind: 'expired' };
      return {
        kind: 'failed',
        error: new Error(`watch error event: ${status.message ?? 'unknown'}`),
        eventsSeen: false,
      };
    }
    const trainJob = object as TrainJobObject;
    const version = trainJob.metadata?.resourceVersion;
    if (version !== undefined) this.#resourceVersion = version;
    if (type === 'ADDED' || type === 'MODIFIED') this.#handlers.onUpsert(trainJob);
    else if (type === 'DELETED') this.#handlers.onDelete(trainJob);
    return undefined;
  }
}

/**
 * Resolves with `work`, or as soon as `signal` aborts. The work goes on in the background
 * after an abort, but its result and any error are ignored.
 */
function untilAborted(work: Promise<void>, signal: AbortSignal): Promise<void> {
  let onAbort = (): void => undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve;
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  // The race handles a rejection of `work` even when it comes after the abort.
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
