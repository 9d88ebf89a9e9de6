import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { expect } from 'chai';
import { pino } from 'pino';

import { startAggregator, type RunningAggregator } from '../../../aggregator/aggregator.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import {
  Cluster,
  SIDECAR_AUDIENCE,
  SidecarClient,
  uniqueName,
  waitFor,
  withoutTime,
} from './kube-fixtures.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const CLI = path.resolve(import.meta.dirname, '..', '..', '..', 'cli', 'main.ts');

describe('aggregator lifecycle on a real API server', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let namespace: string;
  const running: RunningAggregator[] = [];
  const sidecars: SidecarClient[] = [];

  before(async function () {
    cluster = new Cluster(kubeConfigFor(getControlPlane()));
    namespace = await cluster.createNamespace('aggregator-life');
    await cluster.createServiceAccount(namespace, 'trainer');
  });

  afterEach(async function () {
    for (const sidecar of sidecars.splice(0)) sidecar.close();
    for (const aggregator of running.splice(0)) await aggregator.stop();
  });

  async function start(options: { mirrorStatus?: boolean } = {}): Promise<RunningAggregator> {
    const kubeConfig = kubeConfigFor(getControlPlane());
    const aggregator = await startAggregator({
      kubeConfig,
      logger,
      listenHost: '127.0.0.1',
      listenPort: 0,
      ...options,
    });
    running.push(aggregator);
    await aggregator.ready;
    return aggregator;
  }

  async function stop(aggregator: RunningAggregator): Promise<void> {
    running.splice(running.indexOf(aggregator), 1);
    await aggregator.stop();
  }

  async function connect(
    aggregator: RunningAggregator,
    name: string,
    pod: Parameters<SidecarClient['hello']>[2],
  ): Promise<SidecarClient> {
    const token = await cluster.requestToken(namespace, 'trainer', {
      audiences: [SIDECAR_AUDIENCE],
      pod,
    });
    const sidecar = new SidecarClient(aggregator.url, token);
    sidecars.push(sidecar);
    await sidecar.hello(namespace, name, pod);
    return sidecar;
  }

  const annotationOf = (name: string) => () => cluster.readStatusAnnotation(namespace, name);

  it('writes the final status of a job that ended while it was down', async function () {
    const first = await start();
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name);
    const pod = await cluster.createPrimaryPod(namespace, name, 'trainer');
    const sidecar = await connect(first, name, pod);
    await sidecar.sample({ progressPercentage: 60, currentStep: 600, totalSteps: 1000 });
    await waitFor('the running status', annotationOf(name), (v) => v !== undefined);
    sidecar.close();
    await stop(first);

    await cluster.setCondition(namespace, name, 'Complete');
    await start();
    const value = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('"complete') === true,
    );
    expect(withoutTime(value)).to.equal(
      '{"progressPercentage":60,"estimatedRemainingSeconds":0,' +
        '"estimatedRemainingTimeSummary":"complete (early stopped)","currentStep":600,"totalSteps":1000}',
    );
  });

  it('writes the final status after a restart mid-run', async function () {
    const first = await start();
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name);
    const pod = await cluster.createPrimaryPod(namespace, name, 'trainer');
    const before = await connect(first, name, pod);
    await before.sample({ progressPercentage: 20 });
    await waitFor('the running status', annotationOf(name), (v) => v?.includes(':20,') === true);
    await stop(first);
    expect((await before.closed).code).to.equal(1001);

    const second = await start();
    const after = await connect(second, name, pod);
    await after.sample({ progressPercentage: 70, currentStep: 700, totalSteps: 1000 });
    await cluster.setCondition(namespace, name, 'Failed');
    const value = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('failed at') === true,
    );
    expect(value).to.include('"estimatedRemainingTimeSummary":"failed at 70%"');
  });

  it('leaves a final status unchanged after a restart', async function () {
    const first = await start();
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name);
    const pod = await cluster.createPrimaryPod(namespace, name, 'trainer');
    const sidecar = await connect(first, name, pod);
    await sidecar.sample({ progressPercentage: 30 });
    await cluster.setCondition(namespace, name, 'Failed');
    const final = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('failed at 30%') === true,
    );
    await stop(first);

    const second = await start();
    const reconnected = await connect(second, name, pod);
    await reconnected.sample({ progressPercentage: 90 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await annotationOf(name)()).to.equal(final);
  });

  it('mirrors the status into status.trainerStatus', async function () {
    const aggregator = await start({ mirrorStatus: true });
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name);
    const pod = await cluster.createPrimaryPod(namespace, name, 'trainer');
    const sidecar = await connect(aggregator, name, pod);
    await sidecar.sample({
      progressPercentage: 45,
      estimatedRemainingSeconds: 90,
      trainMetrics: { loss: 0.25 },
      evalMetrics: { eval_accuracy: '0.9' },
    });
    const trainJob = await waitFor(
      'the mirrored status',
      () => cluster.getTrainJob(namespace, name),
      (job) => job.status?.trainerStatus !== undefined,
    );
    const mirrored = trainJob.status!.trainerStatus as Record<string, unknown>;
    expect(mirrored).to.include({ progressPercentage: 45, estimatedRemainingSeconds: 90 });
    expect(mirrored.metrics).to.deep.equal([
      { name: 'loss', value: '0.25' },
      { name: 'eval_accuracy', value: '0.9' },
    ]);
    expect(mirrored.lastUpdatedTime).to.match(/Z$/);
  });

  it('runs as a child process until SIGTERM', async function () {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'aggregator',
        '--listen',
        '127.0.0.1:0',
        '--kubeconfig',
        getControlPlane().kubeconfigPath,
        '--auth',
        'none',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const lines = createInterface(child.stdout);
        lines.on('line', (line) => {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'aggregator listening' && entry.url !== undefined) resolve(entry.url);
        });
        child.once('exit', (code) => reject(new Error(`aggregator exited with ${code}`)));
      });
      await waitFor(
        'readiness',
        async () => (await fetch(`${url}/readyz`)).status,
        (status) => status === 200,
      );
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
