// The parts of a Kubeflow Trainer TrainJob that this add-on reads, as plain JSON.

import type { JobPhase } from './stream-protocol.ts';

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface TrainJobObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    resourceVersion?: string;
    annotations?: Record<string, string> | null;
    deletionTimestamp?: string;
  };
  spec?: { suspend?: boolean; runtimeRef?: { name: string } };
  status?: { conditions?: Condition[] | null; trainerStatus?: unknown };
}

function hasCondition(trainJob: TrainJobObject, type: string): boolean {
  return (trainJob.status?.conditions ?? []).some((c) => c.type === type && c.status === 'True');
}

/**
 * Derives the phase from the TrainJob's conditions: Failed and Complete win over Suspended,
 * which wins over a running job. `Pending` is never returned here; the aggregator uses it for
 * jobs it has not seen yet.
 */
export function trainJobPhase(trainJob: TrainJobObject): JobPhase {
  if (hasCondition(trainJob, 'Failed')) return 'Failed';
  if (hasCondition(trainJob, 'Complete')) return 'Complete';
  if (hasCondition(trainJob, 'Suspended') || trainJob.spec?.suspend === true) return 'Suspended';
  return 'Running';
}

export function isTerminalPhase(phase: JobPhase): phase is 'Complete' | 'Failed' {
  return phase === 'Complete' || phase === 'Failed';
}
