import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';

import { ApiException, KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { expect } from 'chai';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';

import { JobState } from '../../../aggregator/job-state.ts';
import { createAggregatorMetrics } from '../../../aggregator/metrics.ts';
import { crdHasTrainerStatus, toMirroredStatus } from '../../../aggregator/status-mirror.ts';
import {
  classifyWriteError,
  type TrainJobWriter,
  type WriteOutcome,
} from '../../../aggregator/status-writer.ts';
import { WriteScheduler } from '../../../aggregator/write-scheduler.ts';
import { PROGRESSION_TRACKING_ANNOTATION } from '../../../shared/annotations.ts';
import { EMPTY_SAMPLE } from '../../../shared/metrics-sample.ts';

const CRD_FILE = path.resolve(
  import.meta.dirname,
  '../../fixtures/crds/trainer.kubeflow.org_trainjobs.yaml',
);
const CRD_PATH =
  '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/trainjobs.trainer.kubeflow.org';
const silent = pino({ level: 'silent' });

function readTrainJobCrd(): V1CustomResourceDefinition {
  const crds = parseAllDocuments(readFileSync(CRD_FILE, 'utf8'))
    .map((document) => document.toJS() as V1CustomResourceDefinition | null)
    .filter((object) => object?.kind === 'CustomResourceDefinition');
  if (crds.length !== 1) throw new Error(`expected one CRD in ${CRD_FILE}, found ${crds.length}`);
  return crds[0]!;
}

/** Returns a copy of `crd` whose served versions have no status.trainerStatus. */
function withoutTrainerStatus(crd: V1CustomResourceDefinition): V1CustomResourceDefinition {
  const copy = structuredClone(crd);
  for (const version of copy.spec.versions) {
    const status = version.schema?.openAPIV3Schema?.properties?.status;
    if (status?.properties?.trainerStatus === undefined) {
      throw new Error(`version ${version.name} of ${CRD_FILE} has no status.trainerStatus`);
    }
    delete status.properties.trainerStatus;
  }
  return copy;
}

/** Serves `crd` (404 when undefined) at the TrainJob CRD's path, as an API server would. */
async function serveCrd(
  crd: V1CustomResourceDefinition | undefined,
): Promise<{ kubeConfig: KubeConfig; server: Server }> {
  const server = createServer((request, response) => {
    request.resume();
    const found = crd !== undefined && request.url?.split('?')[0] === CRD_PATH;
    response.writeHead(found ? 200 : 404, { 'Content-Type': 'application/json' });
    response.end(
      JSON.stringify(
        found ? crd : { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404 },
      ),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const kubeConfig = new KubeConfig();
  // client-node 2.0 refuses an http:// server unless skipTLSVerify is set.
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'aggregator' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'aggregator' }],
    currentContext: 'fake',
  });
  return { kubeConfig, server };
}

async function detectMirror(crd: V1CustomResourceDefinition | undefined): Promise<boolean> {
  const { kubeConfig, server } = await serveCrd(crd);
  try {
    return await crdHasTrainerStatus(kubeConfig, silent);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Records the writes of a WriteScheduler. */
class RecordingWriter implements TrainJobWriter {
  annotationWrites = 0;
  statusWrites = 0;

  writeAnnotation(): Promise<WriteOutcome> {
    this.annotationWrites++;
    return Promise.resolve({ result: 'written' });
  }

  applyStatus(): Promise<WriteOutcome> {
    this.statusWrites++;
    return Promise.resolve({ result: 'written' });
  }
}

/** Schedules one job with progress and returns the writer once the annotation is written. */
async function writeOnce(mirror: boolean): Promise<RecordingWriter> {
  const writer = new RecordingWriter();
  const scheduler = new WriteScheduler(
    writer,
    { writesPerSecond: 100, writeBurst: 100, refreshIntervals: 5, mirror },
    {
      logger: silent,
      metrics: createAggregatorMetrics({ trainJobs: () => 0, writeQueueLength: () => 0 }),
      onWritten: () => undefined,
      onGone: () => undefined,
    },
  );
  try {
    const state = new JobState('team', 'bert', 10, Date.now());
    state.applyTrainJob(
      {
        metadata: {
          name: 'bert',
          namespace: 'team',
          annotations: { [PROGRESSION_TRACKING_ANNOTATION]: 'enabled' },
        },
        status: { conditions: [] },
      },
      Date.now(),
    );
    state.recordSample({ ...EMPTY_SAMPLE, progressPercentage: 30 }, new Date(), Date.now());
    scheduler.schedule(state);
    const deadline = Date.now() + 2000;
    while (writer.annotationWrites === 0 || (mirror && writer.statusWrites === 0)) {
      if (Date.now() > deadline) throw new Error('the scheduler wrote nothing in 2 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Gives a status write that would follow the annotation time to happen.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return writer;
  } finally {
    scheduler.stop();
  }
}

describe('status mirror', () => {
  it('converts the annotation object', () => {
    const mirrored = toMirroredStatus({
      progressPercentage: 45,
      estimatedRemainingSeconds: 9855,
      trainMetrics: { learning_rate: 0.00005, loss: 0.234 },
      evalMetrics: { eval_accuracy: '0.89' },
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored).to.deep.equal({
      lastUpdatedTime: '2026-01-23T10:30:45Z',
      progressPercentage: 45,
      estimatedRemainingSeconds: 9855,
      metrics: [
        { name: 'learning_rate', value: '0.00005' },
        { name: 'loss', value: '0.234' },
        { name: 'eval_accuracy', value: '0.89' },
      ],
    });
  });

  it('leaves out nulls and values that do not fit', () => {
    const mirrored = toMirroredStatus({
      progressPercentage: null,
      estimatedRemainingSeconds: 2 ** 31,
      trainMetrics: { empty: '', gone: null, long: 'x'.repeat(65), ok: 1 },
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored).to.deep.equal({
      lastUpdatedTime: '2026-01-23T10:30:45Z',
      metrics: [{ name: 'ok', value: '1' }],
    });
  });

  it('keeps a training metric over an evaluation metric of the same name', () => {
    const mirrored = toMirroredStatus({
      progressPercentage: 1,
      trainMetrics: { loss: 1 },
      evalMetrics: { loss: 2 },
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored.metrics).to.deep.equal([{ name: 'loss', value: '1' }]);
  });

  it('keeps at most 256 metrics', () => {
    const trainMetrics = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`m${i}`, i]));
    const evalMetrics = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`e${i}`, i]));
    const mirrored = toMirroredStatus({
      progressPercentage: 1,
      trainMetrics,
      evalMetrics,
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored.metrics).to.have.length(256);
  });
});

describe('write error classification', () => {
  const cases: [number | undefined, string][] = [
    [404, 'gone'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
    [408, 'retry'],
    [401, 'retry'],
    [403, 'retry'],
    [undefined, 'retry'],
    [400, 'rejected'],
    [415, 'rejected'],
    [422, 'rejected'],
  ];
  for (const [code, result] of cases) {
    it(`classifies ${code ?? 'a network failure'} as ${result}`, () => {
      const error =
        code === undefined ? new Error('ECONNREFUSED') : new ApiException(code, 'x', {}, {});
      expect(classifyWriteError(error).result).to.equal(result);
    });
  }

  it('honors Retry-After', () => {
    const outcome = classifyWriteError(new ApiException(429, 'x', {}, { 'retry-after': '3' }));
    expect(outcome).to.include({ result: 'retry', retryAfterMs: 3000 });
  });
});

describe('status mirror detection', () => {
  it('returns true for the Trainer CRD', async () => {
    expect(await detectMirror(readTrainJobCrd())).to.equal(true);
  });

  it('returns false without trainerStatus', async () => {
    expect(await detectMirror(withoutTrainerStatus(readTrainJobCrd()))).to.equal(false);
  });

  it('returns false for an unreadable CRD', async () => {
    expect(await detectMirror(undefined)).to.equal(false);
  });

  it('writes no status without trainerStatus', async () => {
    const mirror = await detectMirror(withoutTrainerStatus(readTrainJobCrd()));
    const writer = await writeOnce(mirror);
    expect(writer.annotationWrites).to.equal(1);
    expect(writer.statusWrites).to.equal(0);
  });

  it('writes the status with trainerStatus', async () => {
    const mirror = await detectMirror(readTrainJobCrd());
    const writer = await writeOnce(mirror);
    expect(writer.annotationWrites).to.equal(1);
    expect(writer.statusWrites).to.equal(1);
  });
});
