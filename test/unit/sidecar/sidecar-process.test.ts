// Runs the real `trainjob-progress sidecar` process against a real trainer endpoint and a
// fake aggregator, and stops it the way the kubelet does.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';

import { SIDECAR_ENV } from '../../../shared/sidecar-env.ts';
import { SIDECAR_TUNING_ENV } from '../../../sidecar/options.ts';
import {
  closedPort,
  FakeAggregator,
  jsonHandler,
  sleep,
  startTrainerEndpoint,
  waitFor,
  type TrainerEndpoint,
} from './helpers.ts';

const CLI = join(import.meta.dirname, '../../../cli/main.ts');

interface SidecarProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function spawnSidecar(env: Record<string, string>, argv: string[] = []): SidecarProcess {
  const child = spawn(process.execPath, [CLI, 'sidecar', ...argv], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function exitCodeWithin(sidecar: SidecarProcess, timeoutMs: number): Promise<number | null> {
  const timeout = sleep(timeoutMs).then(() => 'timeout' as const);
  const result = await Promise.race([sidecar.exited, timeout]);
  if (result === 'timeout') throw new Error(`sidecar still running after ${timeoutMs} ms`);
  return result;
}

describe('sidecar process', function () {
  this.timeout(20_000);

  let directory: string;
  let aggregator: FakeAggregator;
  let endpoint: TrainerEndpoint | undefined;
  let sidecar: SidecarProcess | undefined;
  let step: number;

  beforeEach(async () => {
    directory = mkdtempSync(join(tmpdir(), 'sidecar-process-'));
    writeFileSync(join(directory, 'token'), 'process-token');
    aggregator = await new FakeAggregator().start();
    step = 0;
  });

  afterEach(async () => {
    if (sidecar?.child.exitCode === null) {
      sidecar.child.kill('SIGKILL');
      await sidecar.exited;
    }
    await endpoint?.close();
    await aggregator.close();
    endpoint = undefined;
    sidecar = undefined;
    rmSync(directory, { recursive: true, force: true });
  });

  function baseEnv(
    metricsPort: number,
    extra: Record<string, string> = {},
  ): Record<string, string> {
    return {
      [SIDECAR_ENV.aggregatorUrl]: aggregator.url,
      [SIDECAR_ENV.metricsPort]: String(metricsPort),
      [SIDECAR_ENV.scrapeIntervalSeconds]: '0.2',
      [SIDECAR_ENV.pollIntervalSeconds]: '30',
      [SIDECAR_ENV.tokenFile]: join(directory, 'token'),
      [SIDECAR_ENV.podName]: 'job-node-0-0-abcde',
      [SIDECAR_ENV.podNamespace]: 'team-a',
      [SIDECAR_ENV.podUid]: 'uid-1',
      [SIDECAR_ENV.trainJobName]: 'job',
      [SIDECAR_TUNING_ENV.logLevel]: 'debug',
      ...extra,
    };
  }

  async function startCountingTrainer(): Promise<TrainerEndpoint> {
    endpoint = await startTrainerEndpoint(
      jsonHandler(() => ({ currentStep: ++step, totalSteps: 1000, progressPercentage: 1 })),
    );
    return endpoint;
  }

  it('flushes a last scrape and a goodbye on SIGTERM, then exits 0', async () => {
    const trainer = await startCountingTrainer();
    sidecar = spawnSidecar(baseEnv(trainer.port));
    await waitFor(() => aggregator.samples().length >= 3, 10_000, 'three samples');

    const hello = aggregator.messages()[0];
    expect(hello).to.include({ type: 'hello', trainJob: 'job', pod: 'job-node-0-0-abcde' });
    expect(hello).to.include({ namespace: 'team-a', podUid: 'uid-1', sidecarVersion: '0.1.0' });
    expect(hello).to.include({ scrapeIntervalSeconds: 0.2, pollIntervalSeconds: 30 });
    expect(aggregator.connections[0]?.authorization).to.equal('Bearer process-token');

    const scrapesBefore = trainer.requestTimes.length;
    const stepBefore = step;
    sidecar.child.kill('SIGTERM');
    expect(await exitCodeWithin(sidecar, 6000)).to.equal(0);

    expect(trainer.requestTimes.length).to.be.above(scrapesBefore);
    const messages = aggregator.messages();
    expect(messages.at(-1)).to.deep.equal({ type: 'goodbye', reason: 'terminating' });
    const lastSample = aggregator.samples().at(-1);
    expect(lastSample?.sample.currentStep).to.be.above(stepBefore);
    const seqs = aggregator.samples().map((message) => message.seq);
    expect(seqs).to.deep.equal(seqs.map((_seq, i) => i + 1));
    expect(sidecar.output()).to.include('sidecar stopped');
  });

  it('survives a second SIGTERM during the flush', async () => {
    aggregator.options = { autoAck: false };
    const trainer = await startCountingTrainer();
    const env = baseEnv(trainer.port, { [SIDECAR_TUNING_ENV.flushTimeoutSeconds]: '1' });
    sidecar = spawnSidecar(env);
    await waitFor(() => aggregator.samples().length >= 2, 10_000, 'two samples');
    sidecar.child.kill('SIGTERM');
    await sleep(300);
    sidecar.child.kill('SIGTERM');
    expect(await exitCodeWithin(sidecar, 6000)).to.equal(0);
    expect(aggregator.messages().at(-1)).to.deep.equal({ type: 'goodbye', reason: 'terminating' });
    expect(sidecar.output()).to.include('"acknowledged":false');
  });

  it('exits 0 on SIGTERM when the aggregator is unreachable', async () => {
    const trainer = await startCountingTrainer();
    const port = await closedPort();
    const env = baseEnv(trainer.port, {
      [SIDECAR_ENV.aggregatorUrl]: `ws://127.0.0.1:${port}/v1/ingest`,
    });
    sidecar = spawnSidecar(env);
    await waitFor(() => trainer.requestTimes.length >= 2, 10_000, 'two scrapes');
    sidecar.child.kill('SIGTERM');
    expect(await exitCodeWithin(sidecar, 6000)).to.equal(0);
  });

  it('exits 0 by itself in container mode once the trainer is gone', async () => {
    const trainer = await startCountingTrainer();
    const env = baseEnv(trainer.port, {
      [SIDECAR_ENV.mode]: 'container',
      [SIDECAR_TUNING_ENV.trainerExitSeconds]: '1',
    });
    sidecar = spawnSidecar(env);
    await waitFor(() => aggregator.samples().length >= 2, 10_000, 'two samples');
    await trainer.close();
    endpoint = undefined;
    const closedAt = Date.now();

    expect(await exitCodeWithin(sidecar, 8000)).to.equal(0);
    expect(Date.now() - closedAt).to.be.at.least(1000);
    expect(aggregator.messages().at(-1)).to.deep.equal({
      type: 'goodbye',
      reason: 'trainer-exited',
    });
  });

  it('keeps running in container mode before the trainer ever responded', async () => {
    const port = await closedPort();
    const env = baseEnv(port, {
      [SIDECAR_ENV.mode]: 'container',
      [SIDECAR_TUNING_ENV.trainerExitSeconds]: '0.3',
    });
    sidecar = spawnSidecar(env);
    await sleep(2500);
    expect(sidecar.child.exitCode).to.equal(null);
    expect(sidecar.output()).not.to.match(/"level":(40|50)/);

    sidecar.child.kill('SIGTERM');
    expect(await exitCodeWithin(sidecar, 6000)).to.equal(0);
    expect(aggregator.messages().at(-1)).to.deep.equal({ type: 'goodbye', reason: 'terminating' });
  });

  it('exits 2 naming the variable of an invalid value', async () => {
    sidecar = spawnSidecar(baseEnv(0));
    expect(await exitCodeWithin(sidecar, 6000)).to.equal(2);
    expect(sidecar.output()).to.include('invalid TRAINJOB_PROGRESS_METRICS_PORT "0"');
  });

  it('exits 0 on an invalid value in container mode', async () => {
    sidecar = spawnSidecar(baseEnv(0, { [SIDECAR_ENV.mode]: 'container' }));
    expect(await exitCodeWithin(sidecar, 6000)).to.equal(0);
    expect(sidecar.output()).to.include('invalid TRAINJOB_PROGRESS_METRICS_PORT "0"');
  });

  it('prints the help and exits 0', async () => {
    sidecar = spawnSidecar({}, ['--help']);
    expect(await exitCodeWithin(sidecar, 6000)).to.equal(0);
    expect(sidecar.output()).to.include('--trainer-exit-after');
  });
});
