// Runs the real training example for a few steps, scrapes its endpoint while it trains, and
// checks the termination message it leaves behind.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';

import { parseMetricsBody, type MetricsSample } from '../../../shared/metrics-sample.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, '../../../examples/train_digits.py');
const TOTAL_STEPS = 30;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function scrape(port: number): Promise<string | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/any/path`, {
      signal: AbortSignal.timeout(1000),
    });
    return await response.text();
  } catch {
    return undefined; // not listening yet, or already gone
  }
}

function torchMissingReason(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import torch, sklearn'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `${PYTHON} cannot run: ${probe.error.message}`;
  if (probe.status !== 0)
    return `${PYTHON} cannot import torch and sklearn: ${probe.stderr.trim()}`;
  return undefined;
}

describe('train_digits.py example', function () {
  this.timeout(120_000);

  let directory: string;

  before(function () {
    const reason = torchMissingReason();
    if (reason !== undefined) {
      console.log(`    skipping the training example: ${reason}`);
      this.skip();
    }
  });

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'train-digits-'));
  });

  afterEach(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  it('serves live progress and writes the final termination message', async () => {
    const port = await freePort();
    const terminationLog = join(directory, 'termination-log');
    const child = spawn(
      PYTHON,
      [SCRIPT, '--max-steps', String(TOTAL_STEPS), '--step-sleep', '0.05', '--linger', '1.5'],
      {
        env: {
          PATH: process.env.PATH ?? '',
          TRAIN_DIGITS_METRICS_PORT: String(port),
          TRAIN_DIGITS_TERMINATION_LOG: terminationLog,
          TRAIN_DIGITS_LOAD_DELAY: '0.5',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let exitCode: number | null | undefined;
    void exited.then((code) => (exitCode = code));

    const bodies: string[] = [];
    while (exitCode === undefined) {
      const body = await scrape(port);
      if (body !== undefined) bodies.push(body);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(exitCode, output).to.equal(0);

    const samples = bodies.map((body) => {
      const parsed = parseMetricsBody(body);
      expect(parsed.ok, body).to.equal(true);
      return (parsed as { ok: true; sample: MetricsSample }).sample;
    });
    expect(samples.length).to.be.at.least(3);
    const running = samples.filter((sample) => (sample.progressPercentage ?? 100) < 100);
    expect(running.length, 'samples scraped while training ran').to.be.at.least(1);
    expect(samples.at(-1)?.progressPercentage, 'a scrape during the linger').to.equal(100);
    const steps = samples.map((sample) => sample.currentStep ?? 0);
    expect(steps.every((step, i) => i === 0 || step >= steps[i - 1]!)).to.equal(true);
    expect(JSON.parse(bodies.at(-1)!))
      .to.have.property('lastUpdatedTime')
      .that.match(/Z$/);

    const text = readFileSync(terminationLog, 'utf8');
    expect(Buffer.byteLength(text)).to.be.at.most(4096);
    const final = JSON.parse(text) as Record<string, unknown>;
    expect(final).not.to.have.property('lastUpdatedTime');
    expect(final.progressPercentage).to.equal(100);
    expect(final.currentStep).to.equal(TOTAL_STEPS);
    expect(final.totalSteps).to.equal(TOTAL_STEPS);
    expect(final.estimatedRemainingSeconds).to.equal(0);
    expect(final.totalEpochs).to.equal(1);

    const train = final.trainMetrics as Record<string, unknown>;
    expect(train.loss).to.be.a('number').and.satisfy(Number.isFinite);
    expect(train.learning_rate).to.be.a('number');
    expect(train.grad_norm).to.be.a('number');
    expect(train.throughput_samples_sec).to.be.a('number').above(0);
    const evaluation = final.evalMetrics as Record<string, unknown>;
    expect(evaluation.eval_loss).to.be.a('number').and.satisfy(Number.isFinite);
    expect(evaluation.eval_accuracy).to.be.a('number').within(0, 1);
  });

  it('reproduces the same final loss with the same seed', function () {
    const run = (name: string): Record<string, unknown> => {
      const terminationLog = join(directory, name);
      const result = spawnSync(
        PYTHON,
        [SCRIPT, '--max-steps', '20', '--step-sleep', '0', '--linger', '0'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            TRAIN_DIGITS_METRICS_PORT: '0',
            TRAIN_DIGITS_TERMINATION_LOG: terminationLog,
          },
          encoding: 'utf8',
        },
      );
      expect(result.status, result.stderr).to.equal(0);
      return JSON.parse(readFileSync(terminationLog, 'utf8')) as Record<string, unknown>;
    };
    const first = run('first');
    const second = run('second');
    const firstTrain = first.trainMetrics as Record<string, unknown>;
    const secondTrain = second.trainMetrics as Record<string, unknown>;
    for (const name of ['loss', 'learning_rate', 'grad_norm']) {
      expect(secondTrain[name], name).to.equal(firstTrain[name]);
    }
    expect(second.evalMetrics).to.deep.equal(first.evalMetrics);
  });
});
