// Turns an admission request into a response: reads the pod, looks up its TrainJob, decides,
// builds the patch, and records the outcome in metrics and one debug log line. Every response
// allows the pod, because each failure inside becomes an allowed response with a warning.

import { INJECTED_ANNOTATION } from '../shared/annotations.ts';
import type { Logger } from '../shared/logger.ts';
import type { TrainJobObject } from '../shared/trainjob.ts';
import {
  allowedResponse,
  erroredResponse,
  patchedResponse,
  type AdmissionRequest,
  type AdmissionResponse,
} from './admission-review.ts';
import {
  decideInjection,
  trainJobReference,
  type Decision,
  type ErrorReason,
  type SkipReason,
  type TrainJobLookup,
} from './injection-decision.ts';
import { isJsonObject, objectField, stringField, type JsonObject } from './json-object.ts';
import type { WebhookMetrics } from './metrics.ts';
import {
  buildInjectionPatch,
  ContainerNameConflictError,
  PodShapeError,
  type AddOperation,
} from './patch-builder.ts';
import type { InjectionDefaults } from './pod-settings.ts';
import {
  buildSidecarContainer,
  buildTokenVolume,
  type SidecarImageOptions,
} from './sidecar-container.ts';

export interface TrainJobLookupSource {
  lookup(reference: { namespace: string; name: string }): TrainJobLookup | Promise<TrainJobLookup>;
}

export interface AdmissionHandlerOptions {
  defaults: InjectionDefaults;
  sidecar: SidecarImageOptions;
  trainJobs: TrainJobLookupSource;
  metrics: WebhookMetrics;
  logger: Logger;
}

const ERROR_LOG_INTERVAL_MS = 10_000;

export class AdmissionHandler {
  readonly #options: AdmissionHandlerOptions;
  readonly #tokenVolume: JsonObject;
  readonly #warnedTrainJobs = new WeakSet<TrainJobObject>();
  readonly #errorLog = new Map<ErrorReason, { loggedAt: number; suppressed: number }>();

  constructor(options: AdmissionHandlerOptions) {
    this.#options = options;
    this.#tokenVolume = buildTokenVolume(options.sidecar.tokenAudience);
  }

  /**
   * Reviews a request. The response is synchronous when the TrainJob is cached. A live read
   * that does not finish within `budgetMs` yields an allowed response without a patch.
   */
  review(
    request: AdmissionRequest,
    budgetMs: number,
  ): AdmissionResponse | Promise<AdmissionResponse> {
    const { kind, operation } = request;
    if (kind?.kind !== 'Pod' || kind.group !== '' || operation !== 'CREATE') {
      return this.#skip(request, 'not-pod-create', []);
    }
    const reference = trainJobReference(request.object, request.namespace);
    if (reference === undefined) return this.#decide(request, undefined);
    const lookup = this.#options.trainJobs.lookup(reference);
    if (!(lookup instanceof Promise)) return this.#decide(request, lookup);
    return withDeadline(lookup, budgetMs).then((result) =>
      result === undefined
        ? this.#error(
            request,
            'timeout',
            `looking up TrainJob ${reference.namespace}/${reference.name} took longer than ${budgetMs} ms`,
          )
        : this.#decide(request, result),
    );
  }

  #decide(request: AdmissionRequest, lookup: TrainJobLookup | undefined): AdmissionResponse {
    let decision: Decision;
    try {
      decision = decideInjection({
        pod: request.object,
        requestNamespace: request.namespace,
        lookup,
        defaults: this.#options.defaults,
      });
    } catch (error) {
      return this.#error(request, 'internal', (error as Error).message);
    }
    if (decision.action === 'error') return this.#error(request, decision.reason, decision.message);
    if (lookup?.status === 'found') this.#reportSettingWarnings(request, decision, lookup.trainJob);

    const warnings = decision.warnings.map((warning) => warning.message);
    if (decision.action === 'skip') {
      if (decision.notice !== undefined) warnings.push(decision.notice);
      return this.#skip(request, decision.reason, warnings);
    }
    return this.#inject(request, decision, warnings);
  }

  #inject(
    request: AdmissionRequest,
    decision: Extract<Decision, { action: 'inject' }>,
    warnings: string[],
  ): AdmissionResponse {
    const { settings } = decision;
    const container = buildSidecarContainer(settings, this.#options.sidecar);
    let operations: AddOperation[];
    try {
      operations = buildInjectionPatch(request.object as JsonObject, {
        container,
        volume: this.#tokenVolume,
        containerList: settings.sidecarMode === 'native' ? 'initContainers' : 'containers',
        annotation: { key: INJECTED_ANNOTATION, value: settings.sidecarMode },
      });
    } catch (error) {
      if (error instanceof ContainerNameConflictError) {
        warnings.push(`trainjob-progress: sidecar not injected: ${error.message}`);
        return this.#skip(request, 'name-conflict', warnings);
      }
      const reason = error instanceof PodShapeError ? 'invalid-pod' : 'internal';
      return this.#error(request, reason, (error as Error).message);
    }
    if (operations.length === 0) return this.#skip(request, 'already-injected', warnings);

    const reason = operations.some((op) => addsValue(op, container)) ? 'injected' : 'completed';
    this.#options.metrics.admissions.inc(['injected', reason]);
    this.#logDecision(request, 'injected', reason, decision.settings.sidecarMode);
    return patchedResponse(request.uid, operations, warnings);
  }

  #skip(request: AdmissionRequest, reason: SkipReason, warnings: string[]): AdmissionResponse {
    this.#options.metrics.admissions.inc(['skipped', reason]);
    this.#logDecision(request, 'skipped', reason);
    return allowedResponse(request.uid, warnings);
  }

  #error(request: AdmissionRequest, reason: ErrorReason, message: string): AdmissionResponse {
    this.#options.metrics.admissions.inc(['error', reason]);
    const entry = this.#errorLog.get(reason) ?? { loggedAt: 0, suppressed: 0 };
    const now = Date.now();
    if (now - entry.loggedAt >= ERROR_LOG_INTERVAL_MS) {
      const fields = { ...requestFields(request), reason, suppressed: entry.suppressed };
      this.#options.logger.warn(fields, `sidecar not injected: ${message}`);
      this.#errorLog.set(reason, { loggedAt: now, suppressed: 0 });
    } else {
      entry.suppressed++;
      this.#errorLog.set(reason, entry);
    }
    return erroredResponse(request.uid, message);
  }

  // Warns once per TrainJob version, however many of its pods are admitted.
  #reportSettingWarnings(
    request: AdmissionRequest,
    decision: Exclude<Decision, { action: 'error' }>,
    trainJob: TrainJobObject,
  ): void {
    if (decision.warnings.length === 0) return;
    for (const warning of decision.warnings) {
      this.#options.metrics.settingFallbacks.inc([warning.setting]);
    }
    if (this.#warnedTrainJobs.has(trainJob)) return;
    this.#warnedTrainJobs.add(trainJob);
    const { namespace, name } = trainJob.metadata;
    for (const warning of decision.warnings) {
      this.#options.logger.warn(
        { ...requestFields(request), trainJob: `${namespace}/${name}`, setting: warning.setting },
        warning.message,
      );
    }
  }

  #logDecision(request: AdmissionRequest, result: string, reason: string, mode?: string): void {
    const { logger } = this.#options;
    if (!logger.isLevelEnabled('debug')) return;
    const child = logger.child(requestFields(request));
    child.debug({ result, reason, mode, dryRun: request.dryRun }, `admission ${result}: ${reason}`);
  }
}

// Resolves with undefined when `promise` has not settled within `budgetMs`.
function withDeadline<T>(promise: Promise<T>, budgetMs: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, budgetMs), undefined);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function addsValue(operation: AddOperation, value: unknown): boolean {
  return (
    operation.value === value || (Array.isArray(operation.value) && operation.value[0] === value)
  );
}

/** Log fields of a request: uid, operation and the pod as `namespace/name` or `namespace/generateName*`. */
export function requestFields(request: AdmissionRequest): Record<string, unknown> {
  const metadata = isJsonObject(request.object)
    ? objectField(request.object, 'metadata')
    : undefined;
  const name = stringField(metadata, 'name');
  const generateName = stringField(metadata, 'generateName');
  const namespace = request.namespace ?? stringField(metadata, 'namespace') ?? '';
  const pod = name !== undefined && name !== '' ? name : `${generateName ?? ''}*`;
  return { uid: request.uid, operation: request.operation, object: `${namespace}/${pod}` };
}
