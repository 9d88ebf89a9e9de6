import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { expect } from 'chai';
import { pino } from 'pino';
import { stringify } from 'yaml';

import type { RunningAggregator } from '../../../aggregator/aggregator.ts';
import { TRAINER_STATUS_ANNOTATION } from '../../../shared/annotations.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import {
  Cluster,
  SIDECAR_AUDIENCE,
  SidecarClient,
  startReadyAggregator,
  uniqueName,
} from './kube-fixtures.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const CLI = path.resolve(import.meta.dirname, '..', '..', '..', 'cli', 'main.ts');

interface CliRun {
  lines: string[];
  /** Resolves when a line matching `pattern` has been printed. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exit: Promise<{ code: number | null; stderr: string }>;
  kill(): void;
}

function runCli(args: string[]): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const watchers: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface(child.stdout).on('line', (line) => {
    lines.push(line);
    for (const watcher of watchers.filter((w) => w.pattern.test(line))) watcher.resolve(line);
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  return {
    lines,
    exit,
    kill: () => child.kill('SIGKILL'),
    line: (pattern, timeoutMs = 10_000) => {
      const found = lines.find((line) => pattern.test(line));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no line matching ${pattern} in time; got ${JSON.stringify(lines)} ${stderr}`,
              ),
            ),
          timeoutMs,
        );
        watchers.push({
          pattern,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
      });
    },
  };
}

describe('tail and status commands on a real API server', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let aggregator: RunningAggregator;
  let namespace: string;
  let kubeconfigPath: string;
  let readerKubeconfig: string;
  let workDir: string;
  const runs: CliRun[] = [];
  const sidecars: SidecarClient[] = [];

  before(async function () {
    const controlPlane = getControlPlane();
    const kubeConfig = kubeConfigFor(controlPlane);
    kubeconfigPath = controlPlane.kubeconfigPath;
    cluster = new Cluster(kubeConfig);
    namespace = await cluster.createNamespace('aggregator-cli');
    await cluster.createServiceAccount(namespace, 'trainer');
    await cluster.createServiceAccount(namespace, 'reader');
    await cluster.grantTrainJobRead(namespace, 'reader');
    workDir = mkdtempSync(path.join(tmpdir(), 'aggregator-cli-'));
    readerKubeconfig = path.join(workDir, 'reader.kubeconfig');
    writeFileSync(
      readerKubeconfig,
      stringify(
        tokenKubeconfig(
          controlPlane.serverUrl,
          controlPlane.caCertPem,
          await cluster.requestToken(namespace, 'reader'),
          namespace,
        ),
      ),
    );
    aggregator = await startReadyAggregator({ kubeConfig, logger });
  });

  after(async function () {
    for (const run of runs) run.kill();
    for (const sidecar of sidecars) sidecar.close();
    await aggregator?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  function cli(args: string[]): CliRun {
    const run = runCli(args);
    runs.push(run);
    return run;
  }

  async function runningJob(): Promise<{ name: string; sidecar: SidecarClient }> {
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name);
    const pod = await cluster.createPrimaryPod(namespace, name, 'trainer');
    const token = await cluster.requestToken(namespace, 'trainer', {
      audiences: [SIDECAR_AUDIENCE],
      pod,
    });
    const sidecar = new SidecarClient(aggregator.url, token);
    sidecars.push(sidecar);
    await sidecar.hello(namespace, name, pod);
    return { name, sidecar };
  }

  it('status prints the annotation in readable form', async function () {
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name, {
      [TRAINER_STATUS_ANNOTATION]:
        '{"progressPercentage":45,"estimatedRemainingSeconds":9855,"estimatedRemainingTimeSummary":"2 hours 44 minutes",' +
        '"currentStep":4530,"totalSteps":10000,"trainMetrics":{"loss":0.234},"lastUpdatedTime":"2026-01-23T10:30:45Z"}',
    });
    const run = cli(['status', name, '-n', namespace, '--kubeconfig', kubeconfigPath]);
    const { code } = await run.exit;
    expect(code).to.equal(0);
    expect(run.lines).to.include('Progress   45% [###########-------------]');
    expect(run.lines).to.include('Remaining  2 hours 44 minutes (9855 s)');
    expect(run.lines).to.include('  loss  0.234');
  });

  it('status prints JSON', async function () {
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name);
    const run = cli(['status', name, '-n', namespace, '--kubeconfig', kubeconfigPath, '--json']);
    expect((await run.exit).code).to.equal(0);
    expect(JSON.parse(run.lines[0]!)).to.deep.equal({
      namespace,
      name,
      phase: 'Running',
      final: false,
      status: null,
    });
  });

  it('status fails for a missing TrainJob', async function () {
    const run = cli(['status', 'missing', '-n', namespace, '--kubeconfig', kubeconfigPath]);
    const { code, stderr } = await run.exit;
    expect(code).to.equal(1);
    expect(stderr).to.include(`TrainJob ${namespace}/missing not found`);
  });

  it('tail follows the API server until Complete', async function () {
    const { name, sidecar } = await runningJob();
    await sidecar.sample({ progressPercentage: 40, currentStep: 400, totalSteps: 1000 });
    const run = cli(['tail', name, '-n', namespace, '--kubeconfig', kubeconfigPath, '--json']);
    await run.line(/"progressPercentage":40/);
    await sidecar.sample({ progressPercentage: 100, currentStep: 1000, totalSteps: 1000 });
    await cluster.setCondition(namespace, name, 'Complete');
    const { code } = await run.exit;
    const last = JSON.parse(run.lines.at(-1)!) as {
      phase: string;
      final: boolean;
      status: { estimatedRemainingTimeSummary: string };
    };
    expect(code).to.equal(0);
    expect(last.phase).to.equal('Complete');
    expect(last.final).to.equal(true);
    expect(last.status.estimatedRemainingTimeSummary).to.equal('complete');
  });

  it('tail exits 1 when the job fails', async function () {
    const { name, sidecar } = await runningJob();
    await sidecar.sample({ progressPercentage: 12 });
    const run = cli(['tail', name, '-n', namespace, '--kubeconfig', kubeconfigPath]);
    await run.line(/progress=12%/);
    await cluster.setCondition(namespace, name, 'Failed');
    expect((await run.exit).code).to.equal(1);
    expect(run.lines).to.include('Result    failed at 12%');
  });

  it('tail follows the aggregator with the kubeconfig token', async function () {
    const { name, sidecar } = await runningJob();
    const run = cli([
      'tail',
      name,
      '-n',
      namespace,
      '--kubeconfig',
      readerKubeconfig,
      '--aggregator-url',
      aggregator.url,
    ]);
    await sidecar.sample({ progressPercentage: 21 });
    await run.line(/progress=21%/);
    // The viewer stream carries samples that the annotation waits a poll interval for.
    await sidecar.sample({ progressPercentage: 22 });
    await run.line(/progress=22%/, 2000);
    await cluster.setCondition(namespace, name, 'Complete');
    expect((await run.exit).code).to.equal(0);
    expect(run.lines).to.include('Result    complete');
  });

  it('tail reports a rejected aggregator request', async function () {
    const { name } = await runningJob();
    const run = cli([
      'tail',
      name,
      '-n',
      namespace,
      '--kubeconfig',
      kubeconfigPath,
      '--aggregator-url',
      aggregator.url,
    ]);
    const { code, stderr } = await run.exit;
    expect(code).to.equal(1);
    expect(stderr).to.include('HTTP 401');
    expect(stderr).to.include('the kubeconfig user has no bearer token');
  });

  it('tail exits at once for a missing TrainJob', async function () {
    const startedAt = Date.now();
    const run = cli(['tail', 'missing', '-n', namespace, '--kubeconfig', kubeconfigPath]);
    const { code, stderr } = await run.exit;
    expect(code).to.equal(1);
    expect(stderr).to.include(`TrainJob ${namespace}/missing not found`);
    // Waiting for the API server's watch timeout would take over 25 s.
    expect(Date.now() - startedAt).to.be.below(10_000);
  });

  it('tail exits at once for a finished TrainJob', async function () {
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name, {
      [TRAINER_STATUS_ANNOTATION]:
        '{"progressPercentage":100,"estimatedRemainingSeconds":0,"estimatedRemainingTimeSummary":"complete",' +
        '"lastUpdatedTime":"2026-01-23T10:30:45Z"}',
    });
    await cluster.setCondition(namespace, name, 'Complete');
    const startedAt = Date.now();
    const run = cli(['tail', name, '-n', namespace, '--kubeconfig', kubeconfigPath]);
    const { code } = await run.exit;
    expect(code).to.equal(0);
    expect(run.lines).to.include('Result    complete');
    expect(Date.now() - startedAt).to.be.below(10_000);
  });
});

function tokenKubeconfig(
  server: string,
  caCertPem: string,
  token: string,
  namespace: string,
): object {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'local',
        cluster: {
          server,
          'certificate-authority-data': Buffer.from(caCertPem).toString('base64'),
        },
      },
    ],
    users: [{ name: 'reader', user: { token } }],
    contexts: [{ name: 'reader', context: { cluster: 'local', user: 'reader', namespace } }],
    'current-context': 'reader',
  };
}
