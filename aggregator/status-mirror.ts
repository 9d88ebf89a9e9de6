// The optional mirror of the status into the TrainJob's `status.trainerStatus` field, which
// Kubeflow Trainer 2.2 and later define: progressPercentage, estimatedRemainingSeconds,
// metrics as a list of {name, value} strings and lastUpdatedTime. It is written with
// server-side apply on the status subresource, and only when the installed CRD has the field.

import { ApiextensionsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { TRAINJOB_GROUP, TRAINJOB_PLURAL, TRAINJOB_VERSION } from '../shared/annotations.ts';
import type { Logger } from '../shared/logger.ts';
import type { MetricMap } from '../shared/metrics-sample.ts';
import type { TrainerStatusObject } from '../shared/trainer-status.ts';
import { describeApiError } from '../shared/kube-errors.ts';

/** Limits of the CRD's metrics list: names and values 1–64 characters, at most 256 items. */
export const MAX_MIRROR_TEXT_LENGTH = 64;
export const MAX_MIRROR_METRICS = 256;
const MAX_INT32 = 2 ** 31 - 1;

export interface MirrorMetric {
  name: string;
  value: string;
}

export interface MirroredTrainerStatus {
  progressPercentage?: number;
  estimatedRemainingSeconds?: number;
  metrics?: MirrorMetric[];
  lastUpdatedTime: string;
}

/**
 * Converts the annotation object into the CRD's trainerStatus. The metrics list has the
 * training metrics first, then evaluation metrics whose name is not taken yet, each value
 * as a string. Null values, and metrics whose name or value does not fit 1–64 characters,
 * are left out.
 */
export function toMirroredStatus(status: TrainerStatusObject): MirroredTrainerStatus {
  const mirrored: MirroredTrainerStatus = { lastUpdatedTime: status.lastUpdatedTime };
  if (status.progressPercentage !== null) mirrored.progressPercentage = status.progressPercentage;
  const remaining = status.estimatedRemainingSeconds;
  if (remaining !== undefined && remaining <= MAX_INT32) {
    mirrored.estimatedRemainingSeconds = remaining;
  }
  const metrics = mirrorMetrics(status.trainMetrics, status.evalMetrics);
  if (metrics.length > 0) mirrored.metrics = metrics;
  return mirrored;
}

function mirrorMetrics(...maps: (MetricMap | undefined)[]): MirrorMetric[] {
  const metrics: MirrorMetric[] = [];
  const names = new Set<string>();
  for (const map of maps) {
    for (const [name, raw] of Object.entries(map ?? {})) {
      if (metrics.length === MAX_MIRROR_METRICS) return metrics;
      const value = raw === null ? '' : String(raw);
      if (names.has(name) || !fitsMirrorText(name) || !fitsMirrorText(value)) continue;
      names.add(name);
      metrics.push({ name, value });
    }
  }
  return metrics;
}

function fitsMirrorText(text: string): boolean {
  const length = [...text].length;
  return length >= 1 && length <= MAX_MIRROR_TEXT_LENGTH;
}

/**
 * Returns whether the installed TrainJob CRD defines `status.trainerStatus` in the served
 * version. Any failure to read the CRD counts as no, with a warning.
 */
export async function crdHasTrainerStatus(
  kubeConfig: KubeConfig,
  logger: Logger,
): Promise<boolean> {
  const name = `${TRAINJOB_PLURAL}.${TRAINJOB_GROUP}`;
  try {
    const crd = await kubeConfig
      .makeApiClient(ApiextensionsV1Api)
      .readCustomResourceDefinition({ name });
    const version = crd.spec.versions.find((v) => v.name === TRAINJOB_VERSION);
    const statusSchema = version?.schema?.openAPIV3Schema?.properties?.status;
    const found = statusSchema?.properties?.trainerStatus !== undefined;
    if (!found) {
      logger.warn(
        { crd: name, version: TRAINJOB_VERSION },
        'the TrainJob CRD has no status.trainerStatus field, so the status mirror is off',
      );
    }
    return found;
  } catch (error) {
    logger.warn(
      { crd: name, error: describeApiError(error) },
      'cannot read the TrainJob CRD, so the status mirror is off',
    );
    return false;
  }
}
