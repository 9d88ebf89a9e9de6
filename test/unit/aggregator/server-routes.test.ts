import { connect } from 'node:net';
import { Script } from 'node:vm';

import { expect } from 'chai';

import { PROGRESSION_TRACKING_ANNOTATION } from '../../../shared/annotations.ts';
import { EMPTY_SAMPLE } from '../../../shared/metrics-sample.ts';
import type { TrainJobObject } from '../../../shared/trainjob.ts';
import { startTestServer, TestClient, type TestServer } from './ingest-server.ts';

function trainJob(name: string, namespace = 'team'): TrainJobObject {
  return {
    metadata: { name, namespace, annotations: { [PROGRESSION_TRACKING_ANNOTATION]: 'true' } },
  };
}

describe('aggregator routes', () => {
  let server: TestServer;
  const clients: TestClient[] = [];

  beforeEach(async () => {
    server = await startTestServer();
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await server.close();
  });

  function record(name: string, percent: number): void {
    const state = server.registry.stateForSamples('team', name)!;
    server.registry.recordSample(
      state,
      { ...EMPTY_SAMPLE, progressPercentage: percent },
      new Date(),
    );
  }

  async function viewer(query: string): Promise<TestClient> {
    const client = new TestClient(`${server.url.replace('http', 'ws')}/v1/watch?${query}`);
    clients.push(client);
    await client.opened;
    return client;
  }

  it('is not ready before the first list', async () => {
    expect((await fetch(`${server.url}/readyz`)).status).to.equal(503);
    server.registry.applyList([]);
    expect((await fetch(`${server.url}/readyz`)).status).to.equal(200);
  });

  it('is healthy', async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).to.equal(200);
  });

  it('serves Prometheus metrics', async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get('content-type')).to.match(/^text\/plain; version=0.0.4/);
    const text = await response.text();
    expect(text).to.include('# TYPE trainjob_progress_aggregator_samples_received_total counter');
    expect(text).to.include('trainjob_progress_aggregator_viewers 0');
  });

  it('serves the web page with a strict policy', async () => {
    const response = await fetch(`${server.url}/`);
    const html = await response.text();
    const policy = response.headers.get('content-security-policy') ?? '';
    const nonce = /script-src 'nonce-([^']+)'/.exec(policy)?.[1];
    expect(response.headers.get('content-type')).to.match(/^text\/html/);
    expect(nonce).to.be.a('string');
    expect(html).to.include(`<script nonce="${nonce}">`);
    expect(html).to.include('/v1/watch');
    expect(html).to.not.match(/<script[^>]+src=/);
  });

  it('serves a page script that compiles', async () => {
    const html = await (await fetch(`${server.url}/`)).text();
    const script = /<script nonce="[^"]+">([\s\S]*)<\/script>/.exec(html)?.[1];
    expect(script).to.be.a('string');
    expect(() => new Script(script!)).to.not.throw();
  });

  it('returns a job with its history', async () => {
    server.registry.applyList([trainJob('llm')]);
    record('llm', 10);
    record('llm', 20);
    const response = await fetch(`${server.url}/v1/namespaces/team/trainjobs/llm`);
    const body = (await response.json()) as {
      job: { name: string; status: { progressPercentage: number } };
      history: { status: { progressPercentage: number } }[];
    };
    expect(response.status).to.equal(200);
    expect(body.job.status.progressPercentage).to.equal(20);
    expect(body.history.map((entry) => entry.status.progressPercentage)).to.deep.equal([10, 20]);
  });

  it('returns 404 for an unknown job', async () => {
    const response = await fetch(`${server.url}/v1/namespaces/team/trainjobs/missing`);
    expect(response.status).to.equal(404);
  });

  it('returns 400 for an invalid namespace', async () => {
    const response = await fetch(`${server.url}/v1/namespaces/Team_A/trainjobs/llm`);
    expect(response.status).to.equal(400);
  });

  it('streams a snapshot and updates of one job', async () => {
    server.registry.applyList([trainJob('llm'), trainJob('other')]);
    record('llm', 5);
    const client = await viewer('namespace=team&name=llm');
    const snapshot = await client.next<{ type: string; jobs: { name: string }[] }>();
    expect(snapshot.type).to.equal('snapshot');
    expect(snapshot.jobs.map((job) => job.name)).to.deep.equal(['llm']);
    record('other', 1);
    record('llm', 6);
    const update = await client.next<{
      job: { name: string; status: { progressPercentage: number } };
    }>();
    expect(update.job.name).to.equal('llm');
    expect(update.job.status.progressPercentage).to.equal(6);
  });

  it('streams every job of a namespace', async () => {
    server.registry.applyList([trainJob('a'), trainJob('b'), trainJob('c', 'elsewhere')]);
    const client = await viewer('namespace=team');
    const snapshot = await client.next<{ jobs: { name: string }[] }>();
    expect(snapshot.jobs.map((job) => job.name).sort()).to.deep.equal(['a', 'b']);
  });

  it('rejects a watch without a namespace', async () => {
    const client = new TestClient(`${server.url.replace('http', 'ws')}/v1/watch`);
    clients.push(client);
    await client.opened.then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('HTTP 400'),
    );
  });

  it('limits viewers per client', async () => {
    await server.close();
    server = await startTestServer({ maxViewersPerClient: 2 });
    await viewer('namespace=team');
    await viewer('namespace=team');
    await viewer('namespace=team').then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('HTTP 429'),
    );
  });

  it('tells viewers that a job was deleted', async () => {
    server.registry.applyList([trainJob('llm')]);
    const client = await viewer('namespace=team&name=llm');
    await client.next();
    server.registry.remove('team', 'llm');
    expect(await client.next()).to.deep.equal({ type: 'removed', namespace: 'team', name: 'llm' });
  });

  it('answers 404 for an unknown WebSocket path', async () => {
    const client = new TestClient(`${server.url.replace('http', 'ws')}/v1/other`);
    clients.push(client);
    await client.opened.then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('HTTP 404'),
    );
  });

  /** Sends raw bytes to the server and returns its first response line. */
  function rawStatusLine(request: string): Promise<string> {
    const { port } = new URL(server.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve(received.split('\r\n')[0] ?? ''));
    });
  }

  it('answers 400 for invalid percent-encoding', async () => {
    const response = await fetch(`${server.url}/v1/namespaces/%zz/trainjobs/a1`);
    const body = (await response.json()) as { error: string };
    expect(response.status).to.equal(400);
    expect(body.error).to.include('invalid percent-encoding');
    expect((await fetch(`${server.url}/healthz`)).status).to.equal(200);
  });

  it('answers 400 for an unparsable request target', async () => {
    const status = await rawStatusLine('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(status).to.equal('HTTP/1.1 400 Bad Request');
    expect((await fetch(`${server.url}/healthz`)).status).to.equal(200);
  });

  it('answers 400 for an unparsable upgrade target', async () => {
    const status = await rawStatusLine(
      'GET //[ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(status).to.equal('HTTP/1.1 400 Bad Request');
    expect((await fetch(`${server.url}/healthz`)).status).to.equal(200);
  });

  it('answers 431 for oversized headers', async () => {
    const status = await rawStatusLine(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'t'.repeat(60_000)}\r\n\r\n`,
    );
    expect(status).to.equal('HTTP/1.1 431 Request Header Fields Too Large');
  });

  it('answers 400 for a malformed request', async () => {
    const status = await rawStatusLine('NOT HTTP\r\n\r\n');
    expect(status).to.equal('HTTP/1.1 400 Bad Request');
  });
});
