import { expect } from 'chai';
import { pino } from 'pino';

import { JobState } from '../../../aggregator/job-state.ts';
import { createAggregatorMetrics } from '../../../aggregator/metrics.ts';
import type { TrainJobWriter, WriteOutcome } from '../../../aggregator/status-writer.ts';
import { WriteScheduler } from '../../../aggregator/write-scheduler.ts';
import {
  METRICS_POLL_INTERVAL_ANNOTATION,
  PROGRESSION_TRACKING_ANNOTATION,
} from '../../../shared/annotations.ts';
import { EMPTY_SAMPLE, type MetricsSample } from '../../../shared/metrics-sample.ts';
import type { TrainJobObject } from '../../../shared/trainjob.ts';

interface Call {
  kind: 'annotation' | 'status';
  name: string;
  body: unknown;
}

class FakeWriter implements TrainJobWriter {
  readonly calls: Call[] = [];
  readonly outcomes: WriteOutcome[] = [];

  writeAnnotation(_namespace: string, name: string, value: string): Promise<WriteOutcome> {
    this.calls.push({ kind: 'annotation', name, body: JSON.parse(value) });
    return Promise.resolve(this.outcomes.shift() ?? { result: 'written' });
  }

  applyStatus(_namespace: string, name: string, status: object): Promise<WriteOutcome> {
    this.calls.push({ kind: 'status', name, body: status });
    return Promise.resolve(this.outcomes.shift() ?? { result: 'written' });
  }

  annotations(name?: string): Record<string, unknown>[] {
    return this.calls
      .filter((call) => call.kind === 'annotation' && (name === undefined || call.name === name))
      .map((call) => call.body as Record<string, unknown>);
  }
}

function trainJob(name: string, complete = false): TrainJobObject {
  return {
    metadata: {
      name,
      namespace: 'team',
      annotations: {
        [PROGRESSION_TRACKING_ANNOTATION]: 'enabled',
        [METRICS_POLL_INTERVAL_ANNOTATION]: '5s',
      },
    },
    status: { conditions: complete ? [{ type: 'Complete', status: 'True' }] : [] },
  };
}

function sample(fields: Partial<MetricsSample>): MetricsSample {
  return { ...EMPTY_SAMPLE, ...fields };
}

const silent = pino({ level: 'silent' });

function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error('condition not met in time'));
      else setTimeout(check, 5);
    };
    check();
  });
}

describe('write scheduler', () => {
  let writer: FakeWriter;
  let scheduler: WriteScheduler;
  let goneJobs: string[];
  const metrics = createAggregatorMetrics({ trainJobs: () => 0, writeQueueLength: () => 0 });

  function create(options: { qps?: number; burst?: number; mirror?: boolean } = {}): void {
    writer = new FakeWriter();
    goneJobs = [];
    scheduler = new WriteScheduler(
      writer,
      {
        writesPerSecond: options.qps ?? 100,
        writeBurst: options.burst ?? 100,
        refreshIntervals: 5,
        mirror: options.mirror ?? false,
        retryPolicy: { initialMs: 10, maxMs: 20 },
      },
      {
        logger: silent,
        metrics,
        onWritten: () => undefined,
        onGone: (state) => {
          goneJobs.push(state.name);
          scheduler.forget(state);
        },
      },
    );
  }

  function job(name: string, percent: number): JobState {
    const state = new JobState('team', name, 10, Date.now());
    state.applyTrainJob(trainJob(name), Date.now());
    state.recordSample(sample({ progressPercentage: percent }), new Date(), Date.now());
    return state;
  }

  afterEach(() => scheduler.stop());

  it('writes the first status at once', async () => {
    create();
    scheduler.schedule(job('a', 10));
    await until(() => writer.calls.length === 1);
    expect(writer.annotations()[0]).to.include({ progressPercentage: 10 });
  });

  it('retries a failed write with backoff', async () => {
    create();
    writer.outcomes.push(
      { result: 'retry', error: new Error('unavailable'), statusCode: 503 },
      { result: 'retry', error: new Error('unavailable'), statusCode: 429 },
    );
    const state = job('a', 10);
    scheduler.schedule(state);
    await until(() => writer.calls.length === 3);
    expect(state.isWritten(state.statusToWrite()!.content)).to.equal(true);
  });

  it('drops a job whose TrainJob is gone', async () => {
    create();
    writer.outcomes.push({ result: 'gone' });
    scheduler.schedule(job('a', 10));
    await until(() => goneJobs.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(writer.calls).to.have.length(1);
    expect(goneJobs).to.deep.equal(['a']);
  });

  it('does not retry a rejected content', async () => {
    create();
    writer.outcomes.push({ result: 'rejected', error: new Error('invalid'), statusCode: 422 });
    const state = job('a', 10);
    scheduler.schedule(state);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(writer.calls).to.have.length(1);
  });

  it('stays within the write budget', async () => {
    create({ qps: 10, burst: 2 });
    for (let i = 0; i < 20; i++) scheduler.schedule(job(`job-${i}`, i));
    await new Promise((resolve) => setTimeout(resolve, 450));
    expect(writer.calls.length).to.be.within(2, 2 + 5);
    expect(scheduler.queueLength).to.be.greaterThan(0);
  });

  it('writes a final status before queued running ones', async () => {
    create({ qps: 5, burst: 1 });
    for (let i = 0; i < 5; i++) scheduler.schedule(job(`running-${i}`, i));
    const finished = job('finished', 90);
    finished.applyTrainJob(trainJob('finished', true), Date.now());
    finished.completeFinalCapture(
      finished.beginFinalCapture().lastSample!,
      'last-sample',
      Date.now(),
    );
    scheduler.schedule(finished);
    await until(() => writer.calls.length === 2);
    expect(writer.calls[1]?.name).to.equal('finished');
    expect(writer.annotations('finished')[0]).to.include({
      progressPercentage: 100,
      estimatedRemainingTimeSummary: 'complete',
    });
  });

  it('flushes pending final statuses', async () => {
    create({ qps: 1, burst: 1 });
    scheduler.schedule(job('running', 1));
    const finished = job('finished', 40);
    finished.applyTrainJob(trainJob('finished', true), Date.now());
    finished.completeFinalCapture(
      finished.beginFinalCapture().lastSample!,
      'last-sample',
      Date.now(),
    );
    scheduler.schedule(finished);
    expect(await scheduler.flushFinal(2000)).to.equal(true);
    expect(finished.finalWritten).to.equal(true);
  });

  it('mirrors the status after the annotation', async () => {
    create({ mirror: true });
    const state = new JobState('team', 'a', 10, Date.now());
    state.applyTrainJob(trainJob('a'), Date.now());
    state.recordSample(
      sample({ progressPercentage: 10, trainMetrics: { loss: 0.5, note: 'x'.repeat(65) } }),
      new Date(),
      Date.now(),
    );
    scheduler.schedule(state);
    await until(() => writer.calls.length === 2);
    expect(writer.calls.map((call) => call.kind)).to.deep.equal(['annotation', 'status']);
    const status = (writer.calls[1]!.body as { trainerStatus: Record<string, unknown> })
      .trainerStatus;
    expect(status).to.include({ progressPercentage: 10 });
    expect(status.metrics).to.deep.equal([{ name: 'loss', value: '0.5' }]);
  });
});
