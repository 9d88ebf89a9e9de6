import { expect } from 'chai';

import { readHello, readObservedAt } from '../../../aggregator/ingest-messages.ts';
import type { SidecarAuthenticator, SidecarAuthResult } from '../../../aggregator/sidecar-auth.ts';
import { BEARER_PROTOCOL_PREFIX } from '../../../shared/bearer-token.ts';
import { PROGRESSION_TRACKING_ANNOTATION } from '../../../shared/annotations.ts';
import { startTestServer, TestClient, type TestServer } from './ingest-server.ts';

const HELLO = {
  type: 'hello',
  namespace: 'team',
  trainJob: 'llm',
  pod: 'llm-node-0-0-abcde',
  podUid: 'uid-1',
  sidecarVersion: '0.1.0',
  pollIntervalSeconds: 5,
  scrapeIntervalSeconds: 5,
};

function sampleMessage(seq: number, sample: unknown = { progressPercentage: seq }): object {
  return { type: 'sample', seq, observedAt: new Date().toISOString(), sample };
}

describe('ingest stream', () => {
  let server: TestServer;
  const clients: TestClient[] = [];

  async function connect(options = {}): Promise<TestClient> {
    const client = new TestClient(`${server.url.replace('http', 'ws')}/v1/ingest`, options);
    clients.push(client);
    await client.opened;
    return client;
  }

  async function hello(client: TestClient, fields = {}): Promise<Record<string, unknown>> {
    client.send({ ...HELLO, ...fields });
    return client.next();
  }

  beforeEach(async () => {
    server = await startTestServer();
    server.registry.applyList([
      {
        metadata: {
          name: 'llm',
          namespace: 'team',
          annotations: { [PROGRESSION_TRACKING_ANNOTATION]: 'true' },
        },
      },
    ]);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await server.close();
  });

  it('welcomes a sidecar with lastSeq 0', async () => {
    expect(await hello(await connect())).to.deep.equal({ type: 'welcome', lastSeq: 0 });
  });

  it('acknowledges and records samples', async () => {
    const client = await connect();
    await hello(client);
    client.send(sampleMessage(1, { progressPercentage: '45.0', currentStep: 4530 }));
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 1 });
    const status = server.registry.get('team', 'llm')?.progress().status;
    expect(status).to.include({ progressPercentage: 45, currentStep: 4530 });
  });

  it('returns the last seq to a reconnecting sidecar', async () => {
    const first = await connect();
    await hello(first);
    first.send(sampleMessage(7));
    await first.next();
    first.close();
    await first.closed;
    expect(await hello(await connect())).to.deep.equal({ type: 'welcome', lastSeq: 7 });
  });

  it('ignores duplicates after a reconnect', async () => {
    const client = await connect();
    await hello(client);
    client.send(sampleMessage(2, { progressPercentage: 20 }));
    await client.next();
    client.send(sampleMessage(1, { progressPercentage: 10 }));
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 1 });
    expect(server.registry.get('team', 'llm')?.progress().status?.progressPercentage).to.equal(20);
    expect(server.metrics.samplesRejected.get({ reason: 'duplicate' })).to.equal(1);
  });

  it('skips a non-JSON message and goes on', async () => {
    const client = await connect();
    await hello(client);
    client.send('{not json');
    client.send(sampleMessage(1));
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 1 });
    expect(server.metrics.samplesRejected.get({ reason: 'invalid-json' })).to.equal(1);
  });

  it('skips an invalid sample and goes on', async () => {
    const client = await connect();
    await hello(client);
    client.send(sampleMessage(1, ['not', 'an', 'object']));
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 1 });
    client.send(sampleMessage(2, { progressPercentage: 150, currentEpoch: -1, loss: true }));
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 2 });
    const status = server.registry.get('team', 'llm')?.progress().status;
    expect(status).to.deep.include({ progressPercentage: null, currentEpoch: 0 });
    expect(server.metrics.samplesRejected.get({ reason: 'invalid-sample' })).to.equal(1);
  });

  it('skips a sample without a valid seq', async () => {
    const client = await connect();
    await hello(client);
    client.send({ ...sampleMessage(1), seq: -3 });
    client.send(sampleMessage(1));
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 1 });
    expect(server.metrics.samplesRejected.get({ reason: 'invalid-seq' })).to.equal(1);
  });

  it('closes a stream that does not start with hello', async () => {
    const client = await connect();
    client.send(sampleMessage(1));
    expect((await client.closed).code).to.equal(4400);
  });

  it('closes a stream over the message rate', async () => {
    await server.close();
    server = await startTestServer({ ingestMessagesPerSecond: 1, ingestMessageBurst: 3 });
    const client = await connect();
    await hello(client);
    for (let seq = 1; seq <= 5; seq++) client.send(sampleMessage(seq));
    expect((await client.closed).code).to.equal(4429);
  });

  it('closes a stream with an oversized message', async () => {
    const client = await connect();
    await hello(client);
    client.send(JSON.stringify({ type: 'sample', seq: 1, padding: 'x'.repeat(90 * 1024) }));
    const closed = await client.closed;
    expect(closed.code).to.equal(1009);
    expect(closed.reason).to.match(/exceeds the maximum of 81920 bytes/);
  });

  it('closes a hello with an object as interval', async () => {
    const client = await connect();
    client.send({ ...HELLO, pollIntervalSeconds: { toString: 1 } });
    const closed = await client.closed;
    expect(closed.code).to.equal(4400);
    expect(closed.reason).to.include('pollIntervalSeconds must be a number');
  });

  it('keeps serving after an invalid hello', async () => {
    const bad = await connect();
    bad.send({ ...HELLO, scrapeIntervalSeconds: { valueOf: 1 } });
    expect((await bad.closed).code).to.equal(4400);
    expect(await hello(await connect())).to.deep.equal({ type: 'welcome', lastSeq: 0 });
  });

  it('uses the receive time for a year-0 observedAt', async () => {
    const client = await connect();
    await hello(client);
    client.send({ ...sampleMessage(1), observedAt: '-000001-01-01T00:00:00Z' });
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 1 });
    const state = server.registry.get('team', 'llm')!;
    const time = Date.parse(state.history.entries()[0]!.time);
    expect(time).to.be.closeTo(Date.now(), 10_000);
    expect(Date.parse(state.progress().status!.lastUpdatedTime)).to.be.closeTo(time, 1000);
  });

  it('limits connections per pod without authentication', async () => {
    const first = await connect();
    const second = await connect();
    await hello(first);
    await hello(second);
    const third = await connect();
    third.send(HELLO);
    expect((await third.closed).code).to.equal(4429);
  });

  it('keeps samples for a job the watch has not reported yet', async () => {
    const client = await connect();
    await hello(client, { trainJob: 'new-job' });
    client.send(sampleMessage(1));
    await client.next();
    const state = server.registry.get('team', 'new-job');
    expect(state?.known).to.equal(false);
    expect(state?.progress().status?.progressPercentage).to.equal(1);
  });

  it('drops samples of a deleted job', async () => {
    server.registry.remove('team', 'llm');
    const client = await connect();
    await hello(client);
    client.send(sampleMessage(1));
    expect(await client.next()).to.deep.equal({ type: 'ack', seq: 1 });
    expect(server.registry.get('team', 'llm')).to.equal(undefined);
  });
});

class FakeAuthenticator implements SidecarAuthenticator {
  authenticate(token: string): Promise<SidecarAuthResult> {
    if (token === 'good') {
      return Promise.resolve({
        ok: true,
        identity: {
          namespace: 'team',
          serviceAccount: 'trainer',
          podName: HELLO.pod,
          podUid: HELLO.podUid,
          trainJob: 'llm',
        },
      });
    }
    return Promise.resolve({ ok: false, status: 401, reason: 'token rejected: invalid' });
  }
}

describe('ingest authentication', () => {
  let server: TestServer;
  const clients: TestClient[] = [];

  beforeEach(async () => {
    server = await startTestServer({}, new FakeAuthenticator());
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await server.close();
  });

  function client(token?: string): TestClient {
    const headers: Record<string, string> =
      token === undefined ? {} : { Authorization: `Bearer ${token}` };
    const created = new TestClient(`${server.url.replace('http', 'ws')}/v1/ingest`, { headers });
    clients.push(created);
    return created;
  }

  it('answers 401 without a token', async () => {
    await client().opened.then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('HTTP 401'),
    );
  });

  it('answers 401 for a rejected token', async () => {
    await client('bad').opened.then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('HTTP 401'),
    );
  });

  it('accepts the hello of the token pod', async () => {
    const sidecar = client('good');
    await sidecar.opened;
    sidecar.send(HELLO);
    expect(await sidecar.next()).to.deep.equal({ type: 'welcome', lastSeq: 0 });
  });

  it('closes a hello for another TrainJob', async () => {
    const sidecar = client('good');
    await sidecar.opened;
    sidecar.send({ ...HELLO, trainJob: 'other' });
    const closed = await sidecar.closed;
    expect(closed.code).to.equal(4403);
    expect(closed.reason).to.include('belongs to team/llm');
  });

  it('closes a hello for another pod', async () => {
    const sidecar = client('good');
    await sidecar.opened;
    sidecar.send({ ...HELLO, podUid: 'uid-2' });
    const closed = await sidecar.closed;
    expect(closed.code).to.equal(4403);
    expect(closed.reason).to.include('with UID uid-2');
    expect(closed.reason).to.include('pod with UID uid-1');
  });

  it('ignores a token in a subprotocol', async () => {
    const protocol = BEARER_PROTOCOL_PREFIX + Buffer.from('good').toString('base64url');
    const created = new TestClient(`${server.url.replace('http', 'ws')}/v1/ingest`, {}, [protocol]);
    clients.push(created);
    await created.opened.then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('HTTP 401'),
    );
  });

  it('selects no subprotocol', async () => {
    const created = new TestClient(
      `${server.url.replace('http', 'ws')}/v1/ingest`,
      { headers: { Authorization: 'Bearer good' } },
      [BEARER_PROTOCOL_PREFIX + Buffer.from('good').toString('base64url')],
    );
    clients.push(created);
    await created.opened.then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('Server sent no subprotocol'),
    );
  });

  it('answers 429 above the connections per pod', async () => {
    await server.close();
    server = await startTestServer({ maxConnectionsPerPod: 1 }, new FakeAuthenticator());
    await client('good').opened;
    await client('good').opened.then(
      () => expect.fail('connected'),
      (error: Error) => expect(error.message).to.equal('HTTP 429'),
    );
  });
});

describe('ingest message fields', () => {
  const NOW = Date.parse('2026-01-23T10:00:00Z');

  it('reads observedAt in RFC 3339 form', () => {
    expect(readObservedAt('2026-01-23T09:59:00.123Z', NOW).toISOString()).to.equal(
      '2026-01-23T09:59:00.123Z',
    );
    expect(readObservedAt('2026-01-23T11:59:00+02:00', NOW).toISOString()).to.equal(
      '2026-01-23T09:59:00.000Z',
    );
  });

  const invalidTimes: unknown[] = [
    '-000001-01-01T00:00:00Z',
    '0001-01-01T00:00:00Z',
    '1999-12-31T23:59:59Z',
    '2026-01-23T10:05:00Z',
    'Fri, 23 Jan 2026 09:59:00 GMT',
    '2026-01-23',
    1769162340000,
    { toString: 1 },
  ];
  for (const value of invalidTimes) {
    it(`uses the receive time for observedAt ${JSON.stringify(value)}`, () => {
      expect(readObservedAt(value, NOW).getTime()).to.equal(NOW);
    });
  }

  it('reads a hello without intervals', () => {
    const hello = readHello({ ...HELLO, pollIntervalSeconds: undefined });
    expect(hello).to.include({ pollIntervalSeconds: 0, scrapeIntervalSeconds: 5 });
  });

  const invalidHellos: [Record<string, unknown>, string][] = [
    [{ pollIntervalSeconds: '5' }, 'pollIntervalSeconds must be a number'],
    [{ pollIntervalSeconds: -1 }, 'pollIntervalSeconds must be a number'],
    [{ scrapeIntervalSeconds: { toString: 1 } }, 'scrapeIntervalSeconds must be a number'],
    [{ sidecarVersion: 7 }, 'sidecarVersion must be a string'],
    [{ podUid: ['uid-1'] }, 'podUid must be a string'],
    [{ namespace: '' }, 'namespace must be a string'],
  ];
  for (const [fields, reason] of invalidHellos) {
    it(`rejects a hello with ${JSON.stringify(fields)}`, () => {
      expect(readHello({ ...HELLO, ...fields })).to.include(reason);
    });
  }
});
