// Fan-out benchmark: deliveries per second from one server process to VIEWERS WebSocket
// clients that run in a child process on 127.0.0.1.
//
// The measured phase publishes job updates through the real ViewerHub, which serializes each
// update and corks the sockets. The baseline phase sends one pre-serialized string per
// update with a bare `ws` send to the same sockets. Both phases publish in batches and only
// while every socket has less than HIGH_WATER_BYTES unsent, so neither builds an unbounded
// queue. A delivery is a message that a client received. The server's CPU time is
// process.cpuUsage() over the phase; the client process runs on the other cores if any.

import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import type { JobProgress } from '../shared/stream-protocol.ts';
import { HIGH_WATER_BYTES, ViewerHub, viewerSocketOf } from '../aggregator/viewer-hub.ts';
import { formatTable, type BenchRow } from './report.ts';

const VIEWERS = 200;
const PHASE_MS = 8_000;
const BATCH_UPDATES = 10;
const JOBS = 10;
const NAMESPACE = 'team-a';
const TARGET_DELIVERIES_PER_SECOND = 100_000;

interface PhaseResult {
  deliveriesPerSecond: number;
  cpuMsPerSecond: number;
}

function progressOf(index: number): JobProgress {
  return {
    namespace: NAMESPACE,
    name: `job-${index % JOBS}`,
    phase: 'Running',
    status: {
      progressPercentage: (index % 100) + 0.5,
      estimatedRemainingSeconds: 3600 - (index % 3600),
      estimatedRemainingTimeSummary: '59 minutes',
      currentStep: index,
      totalSteps: 1_000_000,
      currentEpoch: 1,
      totalEpochs: 3,
      trainMetrics: { loss: 1.234, learning_rate: 0.0003 },
      lastUpdatedTime: '2026-01-01T00:00:00Z',
    },
    final: false,
  };
}

function receivedCount(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (message: { type: string; received?: number }): void => {
      if (message.type !== 'count') return;
      child.off('message', onMessage);
      resolve(message.received ?? 0);
    };
    child.on('message', onMessage);
    child.send({ type: 'count' });
  });
}

/**
 * Calls `publish` with a growing index in batches for PHASE_MS, then waits until the clients
 * stop receiving. The rate counts from the start to the last poll that saw new messages.
 */
async function runPhase(
  child: ChildProcess,
  sockets: readonly WebSocket[],
  publish: (index: number) => void,
): Promise<PhaseResult> {
  const receivedBefore = await receivedCount(child);
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  let index = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      if (performance.now() - startedAt >= PHASE_MS) return resolve();
      const congested = sockets.some((socket) => socket.bufferedAmount >= HIGH_WATER_BYTES);
      if (!congested) for (let i = 0; i < BATCH_UPDATES; i++) publish(index++);
      setImmediate(tick);
    };
    tick();
  });
  let received = await receivedCount(child);
  let lastChangeAt = performance.now();
  for (;;) {
    await sleep(100);
    const now = await receivedCount(child);
    if (now === received) break;
    received = now;
    lastChangeAt = performance.now();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (lastChangeAt - startedAt) / 1000;
  return {
    deliveriesPerSecond: (received - receivedBefore) / seconds,
    cpuMsPerSecond: (cpu.user + cpu.system) / 1000 / seconds,
  };
}

/** Runs the baseline phase, then the hub phase, which takes about 20 s in all. */
export async function benchFanOut(): Promise<BenchRow[]> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  const sockets: WebSocket[] = [];
  server.on('connection', (socket) => sockets.push(socket));
  const port = (server.address() as AddressInfo).port;

  const child = fork(
    new URL('./fan-out-viewers.ts', import.meta.url).pathname,
    [`ws://127.0.0.1:${port}/`, String(VIEWERS)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  await new Promise<void>((resolve) =>
    child.on('message', (message: { type: string }) => {
      if (message.type === 'open') resolve();
    }),
  );
  while (sockets.length < VIEWERS) await sleep(10);

  const serialized = JSON.stringify({ type: 'update', job: progressOf(0) });
  const baseline = await runPhase(child, sockets, () => {
    for (const socket of sockets) socket.send(serialized);
  });

  const hub = new ViewerHub();
  for (const socket of sockets) hub.add(viewerSocketOf(socket), NAMESPACE, undefined, []);
  const measured = await runPhase(child, sockets, (index) => hub.publish(progressOf(index)));

  child.send({ type: 'stop' });
  await new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve) => server.close(resolve));

  const benchmark = `fan-out, ${VIEWERS} viewers`;
  return [
    {
      benchmark,
      metric: 'deliveries/s',
      unit: '/s',
      measured: measured.deliveriesPerSecond,
      baseline: baseline.deliveriesPerSecond,
      target: `≥ ${TARGET_DELIVERIES_PER_SECOND.toLocaleString('en-US')}/s`,
      met: measured.deliveriesPerSecond >= TARGET_DELIVERIES_PER_SECOND,
    },
    {
      benchmark,
      metric: 'server CPU',
      unit: 'ms/s',
      measured: measured.cpuMsPerSecond,
      baseline: baseline.cpuMsPerSecond,
      target: '',
      met: undefined,
    },
  ];
}

if (import.meta.main) console.log(formatTable(await benchFanOut()));
