// Follows one TrainJob through the Kubernetes API (list, then watch) and turns each
// version of the object into a progress view, until the job has ended.

import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { TrainJobWatcher } from '../shared/trainjob-watcher.ts';
import type { JobProgress } from '../shared/stream-protocol.ts';
import { isTerminalPhase } from '../shared/trainjob.ts';
import { progressFromTrainJob } from './progress-view.ts';

/** The end of a follow: the job's last view, or the reason it could not be followed. */
export type FollowEnd =
  | { kind: 'ended'; progress: JobProgress }
  | { kind: 'deleted' }
  | { kind: 'not-found' }
  | { kind: 'error'; message: string };

export interface FollowCallbacks {
  onProgress(progress: JobProgress): void;
}

/**
 * Resolves once the TrainJob is Complete or Failed and its final status is on the
 * annotation, or `finalWaitMs` after it ended without one (a job whose aggregator is not
 * running, or that never opted in).
 */
export function followApiServer(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  finalWaitMs: number,
  callbacks: FollowCallbacks,
): Promise<FollowEnd> {
  return new Promise((resolve) => {
    let finalTimer: NodeJS.Timeout | undefined;
    let latest: JobProgress | undefined;
    const finish = (end: FollowEnd): void => {
      clearTimeout(finalTimer);
      void watcher.stop().then(() => resolve(end));
    };
    const onProgress = (progress: JobProgress): void => {
      latest = progress;
      callbacks.onProgress(progress);
      if (!isTerminalPhase(progress.phase)) return;
      if (progress.final) finish({ kind: 'ended', progress });
      else
        finalTimer ??= setTimeout(() => finish({ kind: 'ended', progress: latest! }), finalWaitMs);
    };
    const watcher = new TrainJobWatcher(
      kubeConfig,
      {
        onList: (trainJobs) => {
          const trainJob = trainJobs[0];
          if (trainJob === undefined) finish({ kind: 'not-found' });
          else onProgress(progressFromTrainJob(trainJob));
        },
        onUpsert: (trainJob) => onProgress(progressFromTrainJob(trainJob)),
        onDelete: () => finish({ kind: 'deleted' }),
      },
      { namespace, fieldSelector: `metadata.name=${name}`, logger: pino({ level: 'silent' }) },
    );
    watcher.start();
  });
}
