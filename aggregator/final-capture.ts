// The final status of a TrainJob that reached Complete or Failed.
//
// Sources, in order: the termination message of the trainer container (`node`) in the
// primary pod, which the training SDK writes as the endpoint's JSON when training ends.
// Then the last sample a sidecar streamed, then the annotation already on the object. The first usable
// one wins. A termination message is read from the container's current state only (an
// earlier attempt's message in `lastState` is stale), and a message that is not a complete
// JSON object (the kubelet truncates messages at 4 KiB) or that carries no known key is
// skipped.

import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import {
  COMPLETION_INDEX_KEY,
  JOB_INDEX_LABEL,
  JOBSET_NAME_LABEL,
  REPLICATED_JOB_NAME_LABEL,
  TRAINER_CONTAINER_NAME,
  TRAINER_REPLICATED_JOB,
} from '../shared/annotations.ts';
import type { Logger } from '../shared/logger.ts';
import { EMPTY_SAMPLE, parseMetricsBody, type MetricsSample } from '../shared/metrics-sample.ts';
import type { FinalSource } from './job-state.ts';

/** How long the primary pod read may take before the capture goes on without it. */
export const POD_READ_TIMEOUT_MS = 1000;

export interface FinalCandidates {
  terminationMessage: string | undefined;
  lastSample: MetricsSample | undefined;
  annotationSample: MetricsSample | undefined;
}

export interface FinalChoice {
  sample: MetricsSample;
  source: FinalSource;
  /** The reason the termination message was skipped, when there was one. */
  skippedMessage?: string;
}

/** Chooses the sample that the final status is built from; see the file header. */
export function chooseFinalSample(candidates: FinalCandidates): FinalChoice {
  let skippedMessage: string | undefined;
  if (candidates.terminationMessage !== undefined) {
    const parsed = parseMetricsBody(candidates.terminationMessage);
    if (parsed.ok && hasAnyValue(parsed.sample)) {
      return { sample: parsed.sample, source: 'termination-message' };
    }
    skippedMessage = parsed.ok ? 'the message carries no known key' : parsed.reason;
  }
  const choice: FinalChoice =
    candidates.lastSample !== undefined
      ? { sample: candidates.lastSample, source: 'last-sample' }
      : candidates.annotationSample !== undefined
        ? { sample: candidates.annotationSample, source: 'annotation' }
        : { sample: { ...EMPTY_SAMPLE }, source: 'none' };
  if (skippedMessage !== undefined) choice.skippedMessage = skippedMessage;
  return choice;
}

function hasAnyValue(sample: MetricsSample): boolean {
  return Object.values(sample).some((value) => value !== null);
}

/**
 * Picks the primary pod among pods with the TrainJob's JobSet name, replicated job `node`
 * and job index 0: the newest one whose completion index (label or annotation) is 0 or
 * absent.
 */
export function selectPrimaryPod(pods: readonly V1Pod[]): V1Pod | undefined {
  const candidates = pods.filter((pod) => {
    const index =
      pod.metadata?.labels?.[COMPLETION_INDEX_KEY] ??
      pod.metadata?.annotations?.[COMPLETION_INDEX_KEY];
    return index === undefined || index === '0';
  });
  return candidates.sort((a, b) => creationTime(b) - creationTime(a))[0];
}

function creationTime(pod: V1Pod): number {
  const created = pod.metadata?.creationTimestamp;
  return created === undefined ? 0 : new Date(created).getTime();
}

/** Returns the termination message of the `node` container's current state, if any. */
export function terminationMessageOf(pod: V1Pod): string | undefined {
  const container = pod.status?.containerStatuses?.find(
    (status) => status.name === TRAINER_CONTAINER_NAME,
  );
  const message = container?.state?.terminated?.message;
  return message === undefined || message === '' ? undefined : message;
}

/** Label selector of the pods that can be a TrainJob's primary pod. */
export function primaryPodSelector(trainJobName: string): string {
  return [
    `${JOBSET_NAME_LABEL}=${trainJobName}`,
    `${REPLICATED_JOB_NAME_LABEL}=${TRAINER_REPLICATED_JOB}`,
    `${JOB_INDEX_LABEL}=0`,
  ].join(',');
}

/**
 * Reads the termination message of a TrainJob's primary pod. Returns undefined when there
 * is no such pod or message, or when the read fails or takes longer than
 * POD_READ_TIMEOUT_MS, so that the final status is never delayed for long.
 */
export async function readTerminationMessage(
  coreApi: CoreV1Api,
  namespace: string,
  trainJobName: string,
  logger: Logger,
): Promise<string | undefined> {
  const signal = AbortSignal.timeout(POD_READ_TIMEOUT_MS);
  const list = coreApi.listNamespacedPod({
    namespace,
    labelSelector: primaryPodSelector(trainJobName),
  });
  const timeout = new Promise<undefined>((resolve) => {
    signal.addEventListener('abort', () => resolve(undefined), { once: true });
  });
  try {
    const pods = await Promise.race([list, timeout]);
    if (pods === undefined) {
      logger.warn({ timeoutMs: POD_READ_TIMEOUT_MS }, 'primary pod read timed out');
      return undefined;
    }
    const pod = selectPrimaryPod(pods.items);
    return pod === undefined ? undefined : terminationMessageOf(pod);
  } catch (error) {
    logger.warn({ err: error }, 'primary pod read failed, using the last sample instead');
    return undefined;
  }
}
