import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';

import { EMPTY_SAMPLE } from '../../../shared/metrics-sample.ts';
import { CLOSE_CODES, type HelloMessage } from '../../../shared/stream-protocol.ts';
import { SampleBuffer } from '../../../sidecar/sample-buffer.ts';
import { StreamClient, type StreamClientOptions } from '../../../sidecar/stream-client.ts';
import {
  captureLogger,
  closedPort,
  FakeAggregator,
  sleep,
  waitFor,
  type FakeAggregatorOptions,
} from './helpers.ts';

const HELLO: HelloMessage = {
  type: 'hello',
  namespace: 'team-a',
  trainJob: 'job',
  pod: 'job-node-0-0-abcde',
  podUid: 'uid-1',
  sidecarVersion: '0.1.0',
  pollIntervalSeconds: 30,
  scrapeIntervalSeconds: 5,
};

describe('StreamClient', () => {
  let directory: string;
  let tokenFile: string;
  let aggregator: FakeAggregator | undefined;
  let client: StreamClient | undefined;
  let buffer: SampleBuffer;

  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'sidecar-stream-'));
    tokenFile = join(directory, 'token');
    writeFileSync(tokenFile, 'token-1\n');
    buffer = new SampleBuffer(100);
  });

  afterEach(async () => {
    await client?.stop();
    await aggregator?.close();
    client = undefined;
    aggregator = undefined;
    rmSync(directory, { recursive: true, force: true });
  });

  async function startAggregator(options: FakeAggregatorOptions = {}, port = 0) {
    aggregator = await new FakeAggregator(options).start(port);
    return aggregator;
  }

  function startClient(url: string, overrides: Partial<StreamClientOptions> = {}): StreamClient {
    client = new StreamClient({
      url: new URL(url),
      caFile: null,
      tokenFile,
      hello: HELLO,
      buffer,
      logger: captureLogger().logger,
      backoff: { initialMs: 20, maxMs: 100, authMinMs: 800, authMaxMs: 2000 },
      ...overrides,
    });
    client.start();
    return client;
  }

  function push(currentStep: number): void {
    buffer.push({ ...EMPTY_SAMPLE, currentStep }, new Date());
    client?.sendPending();
  }

  it('sends hello with the bearer token, then samples in seq order', async () => {
    const server = await startAggregator();
    startClient(server.url);
    await waitFor(() => client!.connected, 2000, 'the welcome');
    for (let step = 1; step <= 5; step++) push(step);
    await waitFor(() => server.samples().length === 5, 2000, 'five samples');

    const [connection] = server.connections;
    expect(connection?.authorization).to.equal('Bearer token-1');
    expect(connection?.messages[0]).to.deep.equal(HELLO);
    expect(server.samples().map((message) => message.seq)).to.deep.equal([1, 2, 3, 4, 5]);
    const times = server.samples().map((message) => Date.parse(message.observedAt));
    expect(times.every((time, i) => i === 0 || time >= times[i - 1]!)).to.equal(true);
  });

  it('removes acknowledged samples from the buffer', async () => {
    const server = await startAggregator();
    startClient(server.url);
    await waitFor(() => client!.connected, 2000, 'the welcome');
    push(1);
    push(2);
    await waitFor(() => buffer.size === 0, 2000, 'the acknowledgements');
  });

  it('sends samples buffered before the first connection', async () => {
    const port = await closedPort();
    push(1);
    push(2);
    startClient(`ws://127.0.0.1:${port}/v1/ingest`);
    await sleep(100);
    const server = await startAggregator({}, port);
    await waitFor(() => server.samples().length === 2, 3000, 'the buffered samples');
    expect(server.samples().map((message) => message.seq)).to.deep.equal([1, 2]);
  });

  it('resends after a reconnect, honouring welcome.lastSeq', async () => {
    let lastSeq = 0;
    const server = await startAggregator({ autoAck: false, lastSeq: () => lastSeq });
    // A fixed 300 ms reconnect delay leaves time to buffer samples while disconnected.
    startClient(server.url, { backoff: { initialMs: 300, maxMs: 300 }, random: () => 1 });
    await waitFor(() => client!.connected, 2000, 'the welcome');
    push(1);
    push(2);
    push(3);
    await waitFor(() => server.samples().length === 3, 2000, 'three samples');

    lastSeq = 2;
    server.dropConnections();
    await waitFor(() => !client!.connected, 2000, 'the disconnect');
    push(4);
    push(5);
    await waitFor(() => server.connections.length === 2, 3000, 'the reconnect');
    await waitFor(() => server.connections[1]!.messages.length === 4, 2000, 'the resent samples');

    const resent = server.connections[1]!.messages.slice(1).map((message) => message);
    expect(resent.map((message) => message.type === 'sample' && message.seq)).to.deep.equal([
      3, 4, 5,
    ]);
    expect(buffer.pendingAfter(0).map((message) => message.seq)).to.deep.equal([3, 4, 5]);
  });

  it('keeps the newest samples when the buffer overflows while disconnected', async () => {
    buffer = new SampleBuffer(3);
    const port = await closedPort();
    startClient(`ws://127.0.0.1:${port}/v1/ingest`);
    for (let step = 1; step <= 7; step++) push(step);
    const server = await startAggregator({}, port);
    await waitFor(() => server.samples().length === 3, 3000, 'the buffered samples');
    expect(server.samples().map((message) => message.seq)).to.deep.equal([5, 6, 7]);
    expect(server.samples().map((message) => message.sample.currentStep)).to.deep.equal([5, 6, 7]);
  });

  it('re-reads the token file on every connection', async () => {
    const server = await startAggregator();
    startClient(server.url);
    await waitFor(() => client!.connected, 2000, 'the first welcome');
    writeFileSync(tokenFile, 'token-2');
    server.dropConnections();
    await waitFor(() => server.connections.length === 2, 3000, 'the reconnect');
    expect(server.connections.map((connection) => connection.authorization)).to.deep.equal([
      'Bearer token-1',
      'Bearer token-2',
    ]);
  });

  it('backs off long after close code 4401', async () => {
    const server = await startAggregator({ closeAfterHello: CLOSE_CODES.unauthenticated });
    startClient(server.url);
    await waitFor(() => server.connections.length === 1, 2000, 'the first connection');
    await sleep(600);
    expect(server.connections).to.have.length(1);

    server.options = {};
    writeFileSync(tokenFile, 'token-rotated');
    await waitFor(() => client!.connected, 3000, 'the reconnect with a new token');
    expect(server.connections[1]?.authorization).to.equal('Bearer token-rotated');
  });

  it('backs off long after close code 4403', async () => {
    const server = await startAggregator({ closeAfterHello: CLOSE_CODES.forbidden });
    startClient(server.url);
    await waitFor(() => server.connections.length === 1, 2000, 'the first connection');
    await sleep(600);
    expect(server.connections).to.have.length(1);
  });

  it('backs off long after HTTP 401 on the upgrade', async () => {
    const server = await startAggregator({ rejectStatus: 401 });
    startClient(server.url);
    await waitFor(() => server.rejectedUpgrades === 1, 2000, 'the first attempt');
    await sleep(600);
    expect(server.rejectedUpgrades).to.equal(1);
  });

  it('retries quickly after an ordinary failure', async () => {
    const server = await startAggregator({ rejectStatus: 503 });
    startClient(server.url);
    await waitFor(() => server.rejectedUpgrades >= 4, 2000, 'several attempts');
  });

  it('terminates a connection that stays silent past the watchdog', async () => {
    const server = await startAggregator({ autoPong: false });
    startClient(server.url, { pingIntervalMs: 100, watchdogMarginMs: 100 });
    await waitFor(() => client!.connected, 2000, 'the welcome');
    const connectedAt = Date.now();
    await waitFor(() => server.connections.length >= 2, 3000, 'a reconnect');
    expect(Date.now() - connectedAt).to.be.at.least(180);
  });

  it('keeps a connection whose pings are answered', async () => {
    const server = await startAggregator();
    startClient(server.url, { pingIntervalMs: 100, watchdogMarginMs: 300 });
    await waitFor(() => client!.connected, 2000, 'the welcome');
    await sleep(1000);
    expect(server.connections).to.have.length(1);
  });

  it('reconnects when no welcome arrives', async () => {
    const server = await startAggregator({ welcome: false });
    startClient(server.url, { welcomeTimeoutMs: 150 });
    await waitFor(() => server.connections.length >= 2, 3000, 'a second attempt');
    expect(client!.connected).to.equal(false);
  });

  it('flushes pending samples and a goodbye, then waits for acks', async () => {
    const server = await startAggregator();
    startClient(server.url);
    await waitFor(() => client!.connected, 2000, 'the welcome');
    buffer.push({ ...EMPTY_SAMPLE, currentStep: 9 }, new Date());
    const acknowledged = await client!.flush('terminating', 2000);
    expect(acknowledged).to.equal(true);
    const types = server.messages().map((message) => message.type);
    expect(types).to.deep.equal(['hello', 'sample', 'goodbye']);
    expect(server.messages().at(-1)).to.deep.equal({ type: 'goodbye', reason: 'terminating' });
  });

  it('stops waiting for acks at the flush deadline', async () => {
    const server = await startAggregator({ autoAck: false });
    startClient(server.url);
    await waitFor(() => client!.connected, 2000, 'the welcome');
    push(1);
    const startedAt = Date.now();
    const acknowledged = await client!.flush('trainer-exited', 300);
    expect(acknowledged).to.equal(false);
    expect(Date.now() - startedAt).to.be.within(280, 1500);
    expect(server.messages().at(-1)).to.deep.equal({ type: 'goodbye', reason: 'trainer-exited' });
  });

  it('connects at once to flush when disconnected', async () => {
    const port = await closedPort();
    startClient(`ws://127.0.0.1:${port}/v1/ingest`, {
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      random: () => 1,
    });
    await sleep(100);
    const server = await startAggregator({}, port);
    push(1);
    const acknowledged = await client!.flush('terminating', 2000);
    expect(acknowledged).to.equal(true);
    expect(server.messages().map((message) => message.type)).to.deep.equal([
      'hello',
      'sample',
      'goodbye',
    ]);
  });

  it('gives up a flush at once when the aggregator is unreachable', async () => {
    const port = await closedPort();
    startClient(`ws://127.0.0.1:${port}/v1/ingest`);
    push(1);
    const startedAt = Date.now();
    expect(await client!.flush('terminating', 3000)).to.equal(false);
    expect(Date.now() - startedAt).to.be.below(1000);
  });
});
