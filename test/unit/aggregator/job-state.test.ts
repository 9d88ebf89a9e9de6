import { expect } from 'chai';

import { JobState, statusContent } from '../../../aggregator/job-state.ts';
import {
  METRICS_POLL_INTERVAL_ANNOTATION,
  PROGRESSION_TRACKING_ANNOTATION,
  TRAINER_STATUS_ANNOTATION,
} from '../../../shared/annotations.ts';
import { EMPTY_SAMPLE, type MetricsSample } from '../../../shared/metrics-sample.ts';
import { formatTrainerStatus, runningStatus } from '../../../shared/trainer-status.ts';
import type { Condition, TrainJobObject } from '../../../shared/trainjob.ts';

const T0 = Date.parse('2026-01-23T10:00:00Z');
const POLL_MS = 10_000;
const REFRESH = 5;

function sample(fields: Partial<MetricsSample>): MetricsSample {
  return { ...EMPTY_SAMPLE, ...fields };
}

function trainJob(
  options: {
    annotations?: Record<string, string>;
    conditions?: Condition[];
    suspend?: boolean;
  } = {},
): TrainJobObject {
  return {
    metadata: {
      name: 'llm',
      namespace: 'team',
      annotations: {
        [PROGRESSION_TRACKING_ANNOTATION]: 'true',
        [METRICS_POLL_INTERVAL_ANNOTATION]: '10s',
        ...options.annotations,
      },
    },
    spec: { runtimeRef: { name: 'torch-distributed' }, suspend: options.suspend ?? false },
    status: { conditions: options.conditions ?? [] },
  };
}

const complete: Condition[] = [{ type: 'Complete', status: 'True' }];
const failed: Condition[] = [{ type: 'Failed', status: 'True' }];

function runningJob(): JobState {
  const state = new JobState('team', 'llm', 100, T0);
  state.applyTrainJob(trainJob(), T0);
  return state;
}

/** Records a sample at `nowMs` and marks whatever is due now as written. */
function writeIfDue(state: JobState, nowMs: number): boolean {
  const decision = state.nextWrite(nowMs, REFRESH);
  if (decision.kind !== 'now') return false;
  state.markWritten(state.statusToWrite()!.content, nowMs);
  return true;
}

describe('job state writes', () => {
  it('writes nothing before the first sample', () => {
    expect(runningJob().nextWrite(T0, REFRESH)).to.deep.equal({ kind: 'none' });
  });

  it('writes the first sample at once', () => {
    const state = runningJob();
    state.recordSample(sample({ progressPercentage: 1 }), new Date(T0), T0);
    expect(state.nextWrite(T0, REFRESH)).to.deep.equal({ kind: 'now', reason: 'first' });
  });

  it('waits a poll interval after a write for a change', () => {
    const state = runningJob();
    state.recordSample(sample({ progressPercentage: 1 }), new Date(T0), T0);
    writeIfDue(state, T0);
    state.recordSample(sample({ progressPercentage: 2 }), new Date(T0 + 1000), T0 + 1000);
    expect(state.nextWrite(T0 + 1000, REFRESH)).to.deep.equal({
      kind: 'later',
      atMs: T0 + POLL_MS,
    });
    expect(state.nextWrite(T0 + POLL_MS, REFRESH)).to.deep.equal({
      kind: 'now',
      reason: 'changed',
    });
  });

  it('uses the poll interval annotation', () => {
    const state = new JobState('team', 'llm', 100, T0);
    state.applyTrainJob(
      trainJob({ annotations: { [METRICS_POLL_INTERVAL_ANNOTATION]: '1m' } }),
      T0,
    );
    state.recordSample(sample({ progressPercentage: 1 }), new Date(T0), T0);
    writeIfDue(state, T0);
    state.recordSample(sample({ progressPercentage: 2 }), new Date(T0), T0 + 1);
    expect(state.nextWrite(T0 + 1, REFRESH)).to.deep.equal({ kind: 'later', atMs: T0 + 60_000 });
  });

  it('reports an invalid poll interval once', () => {
    const state = new JobState('team', 'llm', 100, T0);
    const job = trainJob({ annotations: { [METRICS_POLL_INTERVAL_ANNOTATION]: 'soon' } });
    expect(state.applyTrainJob(job, T0).pollIntervalWarning).to.match(/invalid duration "soon"/);
    expect(state.applyTrainJob(job, T0).pollIntervalWarning).to.equal(undefined);
    expect(state.pollIntervalMs).to.equal(30_000);
  });

  it('skips a write when only the observation time changed', () => {
    const state = runningJob();
    state.recordSample(sample({ progressPercentage: 5 }), new Date(T0), T0);
    writeIfDue(state, T0);
    state.recordSample(sample({ progressPercentage: 5 }), new Date(T0 + 20_000), T0 + 20_000);
    expect(state.nextWrite(T0 + 20_000, REFRESH)).to.deep.equal({
      kind: 'later',
      atMs: T0 + REFRESH * POLL_MS,
    });
  });

  it('refreshes an unchanged status while samples arrive', () => {
    const state = runningJob();
    state.recordSample(sample({ progressPercentage: 5 }), new Date(T0), T0);
    writeIfDue(state, T0);
    const later = T0 + REFRESH * POLL_MS;
    state.recordSample(sample({ progressPercentage: 5 }), new Date(later - 1000), later - 1000);
    expect(state.nextWrite(later, REFRESH)).to.deep.equal({ kind: 'now', reason: 'refresh' });
  });

  it('stops refreshing when samples stop', () => {
    const state = runningJob();
    state.recordSample(sample({ progressPercentage: 5 }), new Date(T0), T0);
    writeIfDue(state, T0);
    expect(state.nextWrite(T0 + 3600_000, REFRESH)).to.deep.equal({ kind: 'none' });
  });

  it('writes nothing for a job that has not opted in', () => {
    const state = new JobState('team', 'llm', 100, T0);
    state.applyTrainJob(trainJob({ annotations: { [PROGRESSION_TRACKING_ANNOTATION]: 'no' } }), T0);
    state.recordSample(sample({ progressPercentage: 1 }), new Date(T0), T0);
    expect(state.nextWrite(T0, REFRESH).kind).to.equal('none');
  });

  it('writes nothing before the watch reports the job', () => {
    const state = new JobState('team', 'llm', 100, T0);
    state.recordSample(sample({ progressPercentage: 1 }), new Date(T0), T0);
    expect(state.nextWrite(T0, REFRESH).kind).to.equal('none');
    state.applyTrainJob(trainJob(), T0 + 5);
    expect(state.nextWrite(T0 + 5, REFRESH)).to.deep.equal({ kind: 'now', reason: 'first' });
  });

  it('writes nothing while suspended', () => {
    const state = new JobState('team', 'llm', 100, T0);
    state.applyTrainJob(trainJob({ suspend: true }), T0);
    state.recordSample(sample({ progressPercentage: 1 }), new Date(T0), T0);
    expect(state.phase).to.equal('Suspended');
    expect(state.nextWrite(T0, REFRESH).kind).to.equal('none');
  });

  it('resumes from the annotation after a restart', () => {
    const previous = sample({ progressPercentage: 40, currentStep: 400, totalSteps: 1000 });
    const value = formatTrainerStatus(runningStatus(previous), new Date(T0 - 3000));
    const state = new JobState('team', 'llm', 100, T0);
    state.applyTrainJob(trainJob({ annotations: { [TRAINER_STATUS_ANNOTATION]: value } }), T0);
    state.recordSample(previous, new Date(T0), T0);
    expect(state.isWritten(statusContent(runningStatus(previous)))).to.equal(true);
    state.recordSample(sample({ progressPercentage: 41 }), new Date(T0), T0);
    expect(state.nextWrite(T0, REFRESH)).to.deep.equal({
      kind: 'later',
      atMs: T0 - 3000 + POLL_MS,
    });
  });

  it('ignores its own writes echoed by the watch', () => {
    const state = runningJob();
    state.recordSample(sample({ progressPercentage: 1 }), new Date(T0), T0);
    writeIfDue(state, T0);
    const echoed = formatTrainerStatus(
      runningStatus(sample({ progressPercentage: 0 })),
      new Date(T0),
    );
    state.applyTrainJob(trainJob({ annotations: { [TRAINER_STATUS_ANNOTATION]: echoed } }), T0 + 1);
    expect(
      state.isWritten(statusContent(runningStatus(sample({ progressPercentage: 1 })))),
    ).to.equal(true);
  });
});

describe('job state final status', () => {
  function finishedJob(conditions: Condition[], last: MetricsSample): JobState {
    const state = runningJob();
    state.recordSample(last, new Date(T0), T0);
    writeIfDue(state, T0);
    state.applyTrainJob(trainJob({ conditions }), T0 + 1000);
    return state;
  }

  it('needs a capture once the job completes', () => {
    const state = finishedJob(complete, sample({ progressPercentage: 90 }));
    expect(state.needsFinalCapture).to.equal(true);
    expect(state.nextWrite(T0 + 1000, REFRESH).kind).to.equal('none');
  });

  it('writes the final status at once, inside the poll interval', () => {
    const state = finishedJob(complete, sample({ progressPercentage: 90 }));
    const inputs = state.beginFinalCapture();
    state.completeFinalCapture(inputs.lastSample!, 'last-sample', T0 + 1000);
    expect(state.nextWrite(T0 + 1000, REFRESH)).to.deep.equal({ kind: 'now', reason: 'final' });
    expect(state.statusToWrite()?.status.summary).to.equal('complete');
    expect(state.statusToWrite()?.status.sample.progressPercentage).to.equal(100);
  });

  it('writes failed at the last progress', () => {
    const state = finishedJob(failed, sample({ progressPercentage: 37 }));
    const inputs = state.beginFinalCapture();
    expect(inputs.state).to.equal('Failed');
    state.completeFinalCapture(inputs.lastSample!, 'last-sample', T0 + 1000);
    expect(state.statusToWrite()?.status.summary).to.equal('failed at 37%');
  });

  it('ignores samples after the job ends', () => {
    const state = finishedJob(complete, sample({ progressPercentage: 90 }));
    expect(
      state.recordSample(sample({ progressPercentage: 95 }), new Date(T0), T0 + 2000),
    ).to.equal(false);
    expect(state.beginFinalCapture().lastSample?.progressPercentage).to.equal(90);
  });

  it('never changes the final status once written', () => {
    const state = finishedJob(failed, sample({ progressPercentage: 50 }));
    state.completeFinalCapture(state.beginFinalCapture().lastSample!, 'last-sample', T0 + 1000);
    writeIfDue(state, T0 + 1000);
    expect(state.finalWritten).to.equal(true);
    state.completeFinalCapture(
      sample({ progressPercentage: 99 }),
      'termination-message',
      T0 + 2000,
    );
    state.applyTrainJob(trainJob({ conditions: [...failed, ...complete] }), T0 + 3000);
    expect(state.recordSample(sample({ progressPercentage: 99 }), new Date(), T0 + 3000)).to.equal(
      false,
    );
    expect(state.nextWrite(T0 + 3000, REFRESH).kind).to.equal('none');
    expect(state.progress().status?.estimatedRemainingTimeSummary).to.equal('failed at 50%');
    expect(state.progress().final).to.equal(true);
  });

  it('treats a final annotation as final after a restart', () => {
    const value =
      '{"progressPercentage":100,"estimatedRemainingSeconds":0,' +
      '"estimatedRemainingTimeSummary":"complete","lastUpdatedTime":"2026-01-23T09:00:00Z"}';
    const state = new JobState('team', 'llm', 100, T0);
    state.applyTrainJob(
      trainJob({ conditions: complete, annotations: { [TRAINER_STATUS_ANNOTATION]: value } }),
      T0,
    );
    expect(state.needsFinalCapture).to.equal(false);
    expect(state.finalWritten).to.equal(true);
    expect(state.nextWrite(T0, REFRESH).kind).to.equal('none');
  });

  it('treats a copied final annotation on a running job as running', () => {
    const value =
      '{"progressPercentage":100,"estimatedRemainingSeconds":0,' +
      '"estimatedRemainingTimeSummary":"complete","lastUpdatedTime":"2026-01-23T09:00:00Z"}';
    const state = new JobState('team', 'llm', 100, T0);
    state.applyTrainJob(trainJob({ annotations: { [TRAINER_STATUS_ANNOTATION]: value } }), T0);
    expect(state.finalSource).to.equal(undefined);
    expect(state.progress().final).to.equal(false);
    expect(state.progress().status?.estimatedRemainingTimeSummary).to.equal(undefined);
    expect(state.recordSample(sample({ progressPercentage: 5 }), new Date(T0), T0)).to.equal(true);
    expect(state.nextWrite(T0, REFRESH)).to.deep.equal({ kind: 'now', reason: 'changed' });
    expect(state.statusToWrite()?.status.sample.progressPercentage).to.equal(5);
  });

  it('captures a job that ended while the aggregator was down', () => {
    const value = formatTrainerStatus(
      runningStatus(sample({ progressPercentage: 70 })),
      new Date(T0),
    );
    const state = new JobState('team', 'llm', 100, T0);
    state.applyTrainJob(
      trainJob({ conditions: complete, annotations: { [TRAINER_STATUS_ANNOTATION]: value } }),
      T0,
    );
    expect(state.needsFinalCapture).to.equal(true);
    const inputs = state.beginFinalCapture();
    expect(inputs.lastSample).to.equal(undefined);
    expect(inputs.annotationSample?.progressPercentage).to.equal(70);
  });

  it('keeps the mirror pending after the final annotation', () => {
    const state = finishedJob(complete, sample({ progressPercentage: 100 }));
    state.completeFinalCapture(state.beginFinalCapture().lastSample!, 'last-sample', T0 + 1000);
    writeIfDue(state, T0 + 1000);
    expect(state.nextWrite(T0 + 1000, REFRESH, true)).to.deep.equal({
      kind: 'now',
      reason: 'final',
    });
    state.mirroredContent = state.statusToWrite()!.content;
    expect(state.nextWrite(T0 + 1000, REFRESH, true).kind).to.equal('none');
  });
});

describe('job state samples', () => {
  it('accepts increasing seqs per pod', () => {
    const state = runningJob();
    expect(state.acceptSeq('pod-a', 1)).to.equal(true);
    expect(state.acceptSeq('pod-a', 1)).to.equal(false);
    expect(state.acceptSeq('pod-a', 3)).to.equal(true);
    expect(state.acceptSeq('pod-a', 2)).to.equal(false);
    expect(state.acceptSeq('pod-b', 1)).to.equal(true);
    expect(state.lastSeqByPod.get('pod-a')).to.equal(3);
  });

  it('shows the latest sample to viewers', () => {
    const state = runningJob();
    state.recordSample(sample({ progressPercentage: 12, currentStep: 120 }), new Date(T0), T0);
    expect(state.progress()).to.deep.equal({
      namespace: 'team',
      name: 'llm',
      phase: 'Running',
      final: false,
      status: { progressPercentage: 12, currentStep: 120, lastUpdatedTime: '2026-01-23T10:00:00Z' },
    });
  });
});
