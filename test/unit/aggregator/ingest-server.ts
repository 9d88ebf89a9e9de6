// An aggregator HTTP server on 127.0.0.1 with a real registry and viewer hub but no
// Kubernetes API: writes are recorded, and sidecar identities come from a fake.

import { pino } from 'pino';
import WebSocket from 'ws';

import { resolveConfig, type AggregatorConfig } from '../../../aggregator/config.ts';
import { chooseFinalSample } from '../../../aggregator/final-capture.ts';
import { JobRegistry } from '../../../aggregator/job-registry.ts';
import type { JobState } from '../../../aggregator/job-state.ts';
import { createAggregatorMetrics, type AggregatorMetrics } from '../../../aggregator/metrics.ts';
import { AggregatorServer } from '../../../aggregator/server.ts';
import type { SidecarAuthenticator } from '../../../aggregator/sidecar-auth.ts';
import { OpenViewerAuthorizer } from '../../../aggregator/viewer-auth.ts';
import { ViewerHub } from '../../../aggregator/viewer-hub.ts';

export interface TestServer {
  url: string;
  registry: JobRegistry;
  metrics: AggregatorMetrics;
  scheduled: JobState[];
  close(): Promise<void>;
}

export async function startTestServer(
  overrides: Partial<AggregatorConfig> = {},
  sidecarAuth?: SidecarAuthenticator,
): Promise<TestServer> {
  const config = resolveConfig({
    listenHost: '127.0.0.1',
    listenPort: 0,
    auth: sidecarAuth === undefined ? 'none' : 'kubernetes',
    ...overrides,
  });
  const logger = pino({ level: 'silent' });
  const metrics = createAggregatorMetrics({ trainJobs: () => 0, writeQueueLength: () => 0 });
  const hub = new ViewerHub();
  const scheduled: JobState[] = [];
  const registry = new JobRegistry({
    historyLimit: 100,
    logger,
    scheduler: { schedule: (state) => scheduled.push(state), forget: () => undefined },
    viewers: hub,
    captureFinal: (_state, inputs) =>
      Promise.resolve(chooseFinalSample({ terminationMessage: undefined, ...inputs })),
  });
  const server = new AggregatorServer({
    config,
    registry,
    hub,
    sidecarAuth,
    viewerAuth: new OpenViewerAuthorizer(),
    metrics,
    logger,
    isReady: () => registry.synced,
  });
  const port = await server.listen();
  return {
    url: `http://127.0.0.1:${port}`,
    registry,
    metrics,
    scheduled,
    close: async () => {
      await server.close();
      hub.closeAll(1001, 'test over');
    },
  };
}

/** A WebSocket client that queues the JSON messages it receives. */
export class TestClient {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #messages: unknown[] = [];
  readonly #waiters: ((message: unknown) => void)[] = [];

  constructor(url: string, options: WebSocket.ClientOptions = {}, protocols?: string[]) {
    this.socket = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('unexpected-response', (_request, response) =>
        reject(new Error(`HTTP ${response.statusCode}`)),
      );
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.socket.on('message', (data) => {
      const message: unknown = JSON.parse((data as Buffer).toString());
      const waiter = this.#waiters.shift();
      if (waiter === undefined) this.#messages.push(message);
      else waiter(message);
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  next<T = Record<string, unknown>>(timeoutMs = 2000): Promise<T> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message in time')), timeoutMs);
      this.#waiters.push((message) => {
        clearTimeout(timer);
        resolve(message as T);
      });
    });
  }

  close(): void {
    this.socket.close();
  }
}
