import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { pino } from 'pino';

import type { RunningAggregator } from '../../../aggregator/aggregator.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import {
  Cluster,
  SIDECAR_AUDIENCE,
  SidecarClient,
  startReadyAggregator,
  uniqueName,
  waitFor,
  withoutTime,
} from './kube-fixtures.ts';

const FINAL_DEADLINE_MS = 2000;
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

const RUNNING_SAMPLE = {
  progressPercentage: 45,
  estimatedRemainingSeconds: 9855,
  currentStep: 4530,
  totalSteps: 10000,
  currentEpoch: 2,
  totalEpochs: 5,
  trainMetrics: { loss: 0.234, learning_rate: 0.00005, throughput_samples_sec: 128.5 },
  evalMetrics: { eval_f1_score: 0.87, eval_accuracy: 0.89 },
  ignoredKey: 'x',
};
const RUNNING_ANNOTATION =
  '{"progressPercentage":45,"estimatedRemainingSeconds":9855,' +
  '"estimatedRemainingTimeSummary":"2 hours 44 minutes","currentStep":4530,"totalSteps":10000,' +
  '"currentEpoch":2,"totalEpochs":5,' +
  '"trainMetrics":{"learning_rate":0.00005,"loss":0.234,"throughput_samples_sec":128.5},' +
  '"evalMetrics":{"eval_accuracy":0.89,"eval_f1_score":0.87}}';

describe('aggregator on a real API server', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let aggregator: RunningAggregator;
  let namespace: string;
  let viewerToken: string;
  const sidecars: SidecarClient[] = [];

  before(async function () {
    const kubeConfig = kubeConfigFor(getControlPlane());
    cluster = new Cluster(kubeConfig);
    namespace = await cluster.createNamespace('aggregator');
    await cluster.createServiceAccount(namespace, 'trainer');
    await cluster.createServiceAccount(namespace, 'viewer');
    await cluster.grantTrainJobRead(namespace, 'viewer');
    viewerToken = await cluster.requestToken(namespace, 'viewer');
    aggregator = await startReadyAggregator({ kubeConfig, logger });
  });

  after(async function () {
    for (const sidecar of sidecars) sidecar.close();
    await aggregator?.stop();
  });

  /** Creates an opted-in TrainJob, its primary pod and a connected sidecar. */
  async function startJob(
    annotations: Record<string, string> = {},
  ): Promise<{ name: string; pod: V1Pod; sidecar: SidecarClient }> {
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name, annotations);
    const pod = await cluster.createPrimaryPod(namespace, name, 'trainer');
    const token = await cluster.requestToken(namespace, 'trainer', {
      audiences: [SIDECAR_AUDIENCE],
      pod,
    });
    const sidecar = new SidecarClient(aggregator.url, token);
    sidecars.push(sidecar);
    expect(await sidecar.hello(namespace, name, pod)).to.deep.equal({
      type: 'welcome',
      lastSeq: 0,
    });
    return { name, pod, sidecar };
  }

  function annotationOf(name: string): () => Promise<string | undefined> {
    return () => cluster.readStatusAnnotation(namespace, name);
  }

  it('writes the annotation with the exact bytes', async function () {
    const { name, sidecar } = await startJob();
    await sidecar.sample(RUNNING_SAMPLE);
    const value = await waitFor('the annotation', annotationOf(name), (v) => v !== undefined);
    expect(withoutTime(value)).to.equal(RUNNING_ANNOTATION);
    expect(value).to.match(/,"lastUpdatedTime":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"}$/);
  });

  it('touches no other annotation', async function () {
    const { name, sidecar } = await startJob({ 'example.com/owner': 'team-a' });
    await sidecar.sample({ progressPercentage: 3 });
    await waitFor('the annotation', annotationOf(name), (v) => v !== undefined);
    const trainJob = await cluster.getTrainJob(namespace, name);
    expect(trainJob.metadata.annotations?.['example.com/owner']).to.equal('team-a');
  });

  it('keeps changes of concurrent writers', async function () {
    const { name, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 20 });
    await waitFor('the first write', annotationOf(name), (v) => v?.includes(':20,') === true);

    // Another client changes the TrainJob between two writes of the aggregator.
    await cluster.setAnnotations(namespace, name, { 'example.com/owner': 'team-b' });
    await cluster.setLabels(namespace, name, { 'example.com/queue': 'batch' });
    await sidecar.sample({ progressPercentage: 21 });
    await waitFor(
      'the second write',
      annotationOf(name),
      (v) => v?.includes(':21,') === true,
      15_000,
    );

    const { metadata } = await cluster.getTrainJob(namespace, name);
    const labels = (metadata as { labels?: Record<string, string> }).labels;
    expect(metadata.annotations?.['example.com/owner']).to.equal('team-b');
    expect(labels?.['example.com/queue']).to.equal('batch');
  });

  it('waits the poll interval before the next write', async function () {
    const { name, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 10 });
    await waitFor('the first write', annotationOf(name), (v) => v?.includes(':10,') === true);
    await sidecar.sample({ progressPercentage: 11 });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await annotationOf(name)()).to.include('"progressPercentage":10,');
    await waitFor('the second write', annotationOf(name), (v) => v?.includes(':11,') === true);
  });

  it('writes complete within two seconds', async function () {
    const { name, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 99, currentStep: 990, totalSteps: 1000 });
    await waitFor('the running status', annotationOf(name), (v) => v !== undefined);
    const started = Date.now();
    await cluster.setCondition(namespace, name, 'Complete');
    const value = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('"estimatedRemainingTimeSummary":"complete') === true,
      FINAL_DEADLINE_MS + 1000,
    );
    expect(Date.now() - started).to.be.below(FINAL_DEADLINE_MS);
    expect(withoutTime(value)).to.equal(
      '{"progressPercentage":99,"estimatedRemainingSeconds":0,' +
        '"estimatedRemainingTimeSummary":"complete (early stopped)","currentStep":990,"totalSteps":1000}',
    );
  });

  it('writes failed at the last progress', async function () {
    const { name, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 37, currentStep: 370, totalSteps: 1000 });
    await waitFor('the running status', annotationOf(name), (v) => v !== undefined);
    await cluster.setCondition(namespace, name, 'Failed');
    const value = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('failed at') === true,
      FINAL_DEADLINE_MS,
    );
    expect(withoutTime(value)).to.equal(
      '{"progressPercentage":37,"estimatedRemainingTimeSummary":"failed at 37%",' +
        '"currentStep":370,"totalSteps":1000}',
    );
  });

  it('prefers the termination message over the last sample', async function () {
    const { name, pod, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 98, currentStep: 980, totalSteps: 1000 });
    await waitFor('the running status', annotationOf(name), (v) => v !== undefined);
    const message = JSON.stringify({
      progressPercentage: 100,
      currentStep: 1000,
      totalSteps: 1000,
      trainMetrics: { loss: 0.12 },
    });
    await cluster.setTerminationMessage(namespace, pod.metadata!.name!, message);
    await cluster.setCondition(namespace, name, 'Complete');
    const value = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('"complete"') === true,
      FINAL_DEADLINE_MS,
    );
    expect(withoutTime(value)).to.equal(
      '{"progressPercentage":100,"estimatedRemainingSeconds":0,' +
        '"estimatedRemainingTimeSummary":"complete","currentStep":1000,"totalSteps":1000,' +
        '"trainMetrics":{"loss":0.12}}',
    );
  });

  it('skips a truncated termination message', async function () {
    const { name, pod, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 60 });
    await waitFor('the running status', annotationOf(name), (v) => v !== undefined);
    await cluster.setTerminationMessage(
      namespace,
      pod.metadata!.name!,
      '{"progressPercentage": 10',
    );
    await cluster.setCondition(namespace, name, 'Failed');
    const value = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('failed at') === true,
    );
    expect(value).to.include('"failed at 60%"');
  });

  it('ignores samples after the final status', async function () {
    const { name, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 50 });
    await waitFor('the running status', annotationOf(name), (v) => v !== undefined);
    await cluster.setCondition(namespace, name, 'Failed');
    const final = await waitFor(
      'the final status',
      annotationOf(name),
      (v) => v?.includes('failed at 50%') === true,
    );
    await sidecar.sample({ progressPercentage: 90 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await annotationOf(name)()).to.equal(final);
  });

  it('writes nothing for a suspended job', async function () {
    const name = uniqueName('suspended');
    await cluster.createTrainJob(namespace, name, {}, true);
    const pod = await cluster.createPrimaryPod(namespace, name, 'trainer');
    const token = await cluster.requestToken(namespace, 'trainer', {
      audiences: [SIDECAR_AUDIENCE],
      pod,
    });
    const sidecar = new SidecarClient(aggregator.url, token);
    sidecars.push(sidecar);
    await sidecar.hello(namespace, name, pod);
    await sidecar.sample({ progressPercentage: 5 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await annotationOf(name)()).to.equal(undefined);
  });

  it('drops the state of a deleted job', async function () {
    const { name, sidecar } = await startJob();
    await sidecar.sample({ progressPercentage: 5 });
    await waitFor('the annotation', annotationOf(name), (v) => v !== undefined);
    const jobUrl = `${aggregator.url}/v1/namespaces/${namespace}/trainjobs/${name}`;
    const headers = { Authorization: `Bearer ${viewerToken}` };
    expect((await fetch(jobUrl, { headers })).status).to.equal(200);
    const retriesBefore = aggregator.metrics.writes.get({ target: 'annotation', result: 'retry' });

    await cluster.deleteTrainJob(namespace, name);
    await waitFor(
      'the state to be dropped',
      async () => (await fetch(jobUrl, { headers })).status,
      (s) => s === 404,
    );
    await sidecar.sample({ progressPercentage: 6 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await fetch(jobUrl, { headers })).status).to.equal(404);
    expect(aggregator.metrics.writes.get({ target: 'annotation', result: 'retry' })).to.equal(
      retriesBefore,
    );
  });
});
