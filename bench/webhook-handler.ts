// Webhook benchmark: a warm-cache burst of pod admissions.
//
// In process, it times parse, review and serialize of each AdmissionReview with the real
// AdmissionHandler and a TrainJobCache synced from an in-memory list, against a baseline that
// parses the same review and allows it without a patch. Over HTTPS on 127.0.0.1, it sends the
// same reviews to the real webhook server (createWebhookServer) and to a no-op Node HTTPS
// server with the same certificate that returns a body of the same size. The webhook's own
// startWebhook is not used because it needs an API server.

import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../shared/logger.ts';
import { AdmissionHandler } from '../webhook/admission-handler.ts';
import {
  allowedResponse,
  parseAdmissionReview,
  serializeReview,
} from '../webhook/admission-review.ts';
import { WebhookMetrics } from '../webhook/metrics.ts';
import { createWebhookServer } from '../webhook/server.ts';
import { TrainJobCache } from '../webhook/trainjob-cache.ts';
import {
  admissionRequest,
  DEFAULTS,
  jobSetPod,
  optedIn,
  reviewBody,
  SIDECAR_OPTIONS,
} from '../test/unit/webhook/fixtures.ts';
import { createTestTls } from '../test/unit/webhook/tls-fixture.ts';
import { formatTable, percentile, type BenchRow } from './report.ts';

const ADMISSIONS = 1_000;
const WARM_UP_ADMISSIONS = 200;
const CONCURRENCY = 10;
const REVIEW_BUDGET_MS = 9_000;

/** Returns the AdmissionReview bodies of a burst: pods of 16 nodes of an opted-in TrainJob. */
function burstBodies(count: number): string[] {
  return Array.from({ length: count }, (_, index) => {
    const pod = jobSetPod({ job: 'llama', jobIndex: String(index % 16), completionIndex: '0' });
    const uid = `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`;
    return JSON.stringify(reviewBody(admissionRequest(pod, { uid })));
  });
}

function createMetrics(): WebhookMetrics {
  return new WebhookMetrics({
    ready: () => true,
    cacheSynced: () => true,
    cachedTrainJobs: () => 1,
    certificateNotAfterSeconds: () => NaN,
  });
}

/** Returns a TrainJobCache synced from a list that contains one opted-in TrainJob. */
async function warmCache(): Promise<TrainJobCache> {
  const cache = new TrainJobCache({
    api: {
      list: () => Promise.resolve({ items: [optedIn('llama')], resourceVersion: '1' }),
      watch: (_version, _onEvent, signal) =>
        new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
      get: () => Promise.resolve(undefined),
    },
    logger: createLogger('bench', 'silent'),
    liveReadTimeoutMs: 1_000,
  });
  cache.start();
  await cache.whenSynced();
  return cache;
}

async function timeInProcess(
  bodies: readonly string[],
  answer: (body: string) => Promise<string>,
): Promise<number[]> {
  for (const body of bodies.slice(0, WARM_UP_ADMISSIONS)) await answer(body);
  const latencies: number[] = [];
  for (const body of bodies) {
    const startedAt = performance.now();
    await answer(body);
    latencies.push(performance.now() - startedAt);
  }
  return latencies;
}

function listen(server: https.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

function post(agent: https.Agent, port: number, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate?timeout=10s',
        method: 'POST',
        agent,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          if (response.statusCode === 200) resolve(Buffer.concat(chunks).toString('utf8'));
          else reject(new Error(`POST /mutate returned HTTP ${response.statusCode}`));
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Sends every body with CONCURRENCY keep-alive connections and returns each request's latency. */
async function timeOverHttps(
  port: number,
  ca: string,
  bodies: readonly string[],
): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca });
  const run = async (list: readonly string[], latencies: number[]): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < list.length) {
        const body = list[next++]!;
        const startedAt = performance.now();
        await post(agent, port, body);
        latencies.push(performance.now() - startedAt);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  await run(bodies.slice(0, WARM_UP_ADMISSIONS), []);
  const latencies: number[] = [];
  await run(bodies, latencies);
  agent.destroy();
  return latencies;
}

function closeServer(server: https.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function latencyRows(
  benchmark: string,
  measured: readonly number[],
  baseline: readonly number[],
  p99Target: (p99: number, baselineP99: number) => { text: string; met: boolean },
): BenchRow[] {
  const p99 = percentile(measured, 99);
  const baselineP99 = percentile(baseline, 99);
  const target = p99Target(p99, baselineP99);
  return [
    {
      benchmark,
      metric: 'p50 latency',
      unit: 'ms',
      measured: percentile(measured, 50),
      baseline: percentile(baseline, 50),
      target: '',
      met: undefined,
    },
    {
      benchmark,
      metric: 'p99 latency',
      unit: 'ms',
      measured: p99,
      baseline: baselineP99,
      target: target.text,
      met: target.met,
    },
  ];
}

/** Runs both measurements, which take about 3 s on a 2-core AMD EPYC machine. */
export async function benchWebhookHandler(): Promise<BenchRow[]> {
  const bodies = burstBodies(ADMISSIONS);
  const cache = await warmCache();
  const metrics = createMetrics();
  const logger = createLogger('bench', 'silent');
  // With scope `all-nodes` every pod of the burst gets the sidecar, the most expensive path.
  const handler = new AdmissionHandler({
    defaults: { ...DEFAULTS, scope: 'all-nodes' },
    sidecar: SIDECAR_OPTIONS,
    trainJobs: cache,
    metrics,
    logger,
  });

  const review = async (body: string): Promise<string> => {
    const parsed = parseAdmissionReview(body);
    if (!parsed.ok) throw new Error(`invalid benchmark review: ${parsed.message}`);
    const response = await handler.review(parsed.request, REVIEW_BUDGET_MS);
    if (response.patch === undefined) throw new Error('the handler did not inject the sidecar');
    return serializeReview(response);
  };
  const allow = (body: string): Promise<string> => {
    const parsed = parseAdmissionReview(body);
    if (!parsed.ok) throw new Error(`invalid benchmark review: ${parsed.message}`);
    return Promise.resolve(serializeReview(allowedResponse(parsed.request.uid)));
  };
  const handlerLatencies = await timeInProcess(bodies, review);
  const allowLatencies = await timeInProcess(bodies, allow);

  const tls = await createTestTls();
  const webhook = createWebhookServer({
    handler,
    metrics,
    logger,
    readiness: { pending: () => [] },
    tls: tls.serving,
  });
  const responseSize = Buffer.byteLength(await review(bodies[0]!));
  const fixedResponse = 'x'.repeat(responseSize);
  const noop = https.createServer(
    { cert: tls.serving.certificatePem, key: tls.serving.privateKeyPem, minVersion: 'TLSv1.2' },
    (request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, {
          'Content-Type': 'application/json',
          'Content-Length': responseSize,
        });
        response.end(fixedResponse);
      });
    },
  );
  const webhookPort = await listen(webhook);
  const noopPort = await listen(noop);
  const noopLatencies = await timeOverHttps(noopPort, tls.ca.certificatePem, bodies);
  const webhookLatencies = await timeOverHttps(webhookPort, tls.ca.certificatePem, bodies);
  await closeServer(webhook);
  await closeServer(noop);
  await cache.stop();

  return [
    ...latencyRows('webhook in-process', handlerLatencies, allowLatencies, (p99) => ({
      text: '≤ 5 ms',
      met: p99 <= 5,
    })),
    ...latencyRows('webhook HTTPS', webhookLatencies, noopLatencies, (p99, baselineP99) => ({
      text: '≤ 1.5× no-op',
      met: p99 <= 1.5 * baselineP99,
    })),
  ];
}

if (import.meta.main) console.log(formatTable(await benchWebhookHandler()));
