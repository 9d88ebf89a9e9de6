// Sidecar footprint benchmark: resident memory and CPU of the real sidecar process
// (`node cli/main.ts sidecar`) scraping a trainer endpoint every 5 s and streaming to an ingest
// endpoint, against an idle Node process (`setInterval`) measured the same way at the same
// time. Both servers run in this process on 127.0.0.1: the trainer endpoint returns a fixed
// JSON status, and the ingest endpoint replies to `hello` with `welcome` and acks each sample.
//
// RSS is VmRSS from /proc/PID/status, sampled every second, reported as the maximum after
// the warm-up. CPU is utime + stime from /proc/PID/stat over the window after the warm-up,
// in millicores. NOTE: the sidecar runs from TypeScript sources with Node's type stripping,
// while the container image runs compiled JavaScript, so its RSS here may differ slightly.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { SIDECAR_ENV } from '../shared/sidecar-env.ts';
import { formatTable, type BenchRow } from './report.ts';

const RUN_MS = 45_000;
const WARM_UP_MS = 5_000;
const SAMPLE_INTERVAL_MS = 1_000;
const SCRAPE_INTERVAL_SECONDS = 5;
const TARGET_RSS_MIB = 48;
const TARGET_MILLICORES = 5;
const CLI = new URL('../cli/main.ts', import.meta.url).pathname;

const TRAINER_STATUS = JSON.stringify({
  progressPercentage: 42.5,
  estimatedRemainingSeconds: 3600,
  currentStep: 4250,
  totalSteps: 10000,
  currentEpoch: 2,
  totalEpochs: 5,
  trainMetrics: { loss: 0.4231, learning_rate: 0.0003, throughput_samples_per_sec: 812.4 },
  evalMetrics: { eval_loss: 0.4512, eval_accuracy: 0.873 },
});

interface Footprint {
  maxRssMiB: number;
  millicores: number;
}

/** Returns VmRSS in MiB and utime + stime in clock ticks of a running process. */
function readUsage(pid: number): { rssMiB: number; ticks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMiB: rssKiB / 1024, ticks };
}

/** Samples a process from WARM_UP_MS until RUN_MS after `startedAt`. */
async function measure(child: ChildProcess, startedAt: number, ticksPerSecond: number) {
  const pid = child.pid;
  if (pid === undefined) throw new Error('the measured process did not start');
  await sleep(Math.max(0, startedAt + WARM_UP_MS - performance.now()));
  const first = readUsage(pid);
  const windowStartedAt = performance.now();
  let maxRssMiB = first.rssMiB;
  let last = first;
  while (performance.now() - startedAt < RUN_MS) {
    await sleep(SAMPLE_INTERVAL_MS);
    if (child.exitCode !== null) throw new Error(`process ${pid} exited with ${child.exitCode}`);
    last = readUsage(pid);
    maxRssMiB = Math.max(maxRssMiB, last.rssMiB);
  }
  const seconds = (performance.now() - windowStartedAt) / 1000;
  const cpuSeconds = (last.ticks - first.ticks) / ticksPerSecond;
  return { maxRssMiB, millicores: (cpuSeconds / seconds) * 1000 } satisfies Footprint;
}

async function startTrainerEndpoint() {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end(TRAINER_STATUS);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function startIngestEndpoint(): Promise<{ server: WebSocketServer; samples: () => number }> {
  let samples = 0;
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket) => {
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as { type: string; seq?: number };
      if (message.type === 'hello') socket.send(JSON.stringify({ type: 'welcome', lastSeq: 0 }));
      if (message.type === 'sample') {
        samples++;
        socket.send(JSON.stringify({ type: 'ack', seq: message.seq }));
      }
    });
  });
  await new Promise((resolve) => server.once('listening', resolve));
  return { server, samples: () => samples };
}

/** Runs the sidecar and the idle process side by side, which takes about 46 s. */
export async function benchSidecarFootprint(): Promise<BenchRow[]> {
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  const directory = mkdtempSync(join(tmpdir(), 'sidecar-footprint-'));
  const tokenFile = join(directory, 'token');
  writeFileSync(tokenFile, 'bench-token');
  const trainer = await startTrainerEndpoint();
  const ingest = await startIngestEndpoint();

  const env = {
    PATH: process.env.PATH ?? '',
    [SIDECAR_ENV.aggregatorUrl]: `ws://127.0.0.1:${(ingest.server.address() as AddressInfo).port}/v1/ingest`,
    [SIDECAR_ENV.metricsPort]: String((trainer.address() as AddressInfo).port),
    [SIDECAR_ENV.scrapeIntervalSeconds]: String(SCRAPE_INTERVAL_SECONDS),
    [SIDECAR_ENV.pollIntervalSeconds]: String(SCRAPE_INTERVAL_SECONDS),
    [SIDECAR_ENV.tokenFile]: tokenFile,
    [SIDECAR_ENV.podName]: 'llama-node-0-0-abcde',
    [SIDECAR_ENV.podNamespace]: 'team-a',
    [SIDECAR_ENV.podUid]: 'bench-pod-uid',
    [SIDECAR_ENV.trainJobName]: 'llama',
  };
  const startedAt = performance.now();
  const sidecar = spawn(process.execPath, [CLI, 'sidecar'], { env, stdio: 'ignore' });
  const idle = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  try {
    const [measured, baseline] = await Promise.all([
      measure(sidecar, startedAt, ticksPerSecond),
      measure(idle, startedAt, ticksPerSecond),
    ]);
    if (ingest.samples() === 0) throw new Error('the sidecar sent no samples during the run');
    const benchmark = `sidecar, ${SCRAPE_INTERVAL_SECONDS} s scrape`;
    return [
      {
        benchmark,
        metric: 'max RSS',
        unit: 'MiB',
        measured: measured.maxRssMiB,
        baseline: baseline.maxRssMiB,
        target: `≤ ${TARGET_RSS_MIB} MiB`,
        met: measured.maxRssMiB <= TARGET_RSS_MIB,
      },
      {
        benchmark,
        metric: 'CPU',
        unit: 'mCPU',
        measured: measured.millicores,
        baseline: baseline.millicores,
        target: `≤ ${TARGET_MILLICORES} mCPU`,
        met: measured.millicores <= TARGET_MILLICORES,
      },
    ];
  } finally {
    sidecar.kill('SIGKILL');
    idle.kill('SIGKILL');
    trainer.close();
    ingest.server.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(formatTable(await benchSidecarFootprint()));
