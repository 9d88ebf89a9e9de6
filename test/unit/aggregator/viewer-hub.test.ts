import { expect } from 'chai';

import { ViewerHub, type ViewerSocket } from '../../../aggregator/viewer-hub.ts';
import type { JobProgress, ViewerMessage } from '../../../shared/stream-protocol.ts';

class FakeSocket implements ViewerSocket {
  bufferedAmount = 0;
  readonly sent: Buffer[] = [];
  closed: { code: number; reason: string } | undefined;

  send(data: Buffer): void {
    this.sent.push(data);
  }

  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }

  messages(): ViewerMessage[] {
    return this.sent.map((data) => JSON.parse(data.toString('utf8')) as ViewerMessage);
  }
}

function progress(name: string, percent: number, namespace = 'team'): JobProgress {
  return {
    namespace,
    name,
    phase: 'Running',
    final: false,
    status: { progressPercentage: percent, lastUpdatedTime: '2026-01-01T00:00:00Z' },
  };
}

function percents(socket: FakeSocket): (number | null | undefined)[] {
  return socket
    .messages()
    .filter((m) => m.type === 'update')
    .map((m) => (m.type === 'update' ? m.job.status?.progressPercentage : undefined));
}

describe('viewer hub', () => {
  let now = 0;
  let hub: ViewerHub;
  beforeEach(() => {
    now = 0;
    hub = new ViewerHub({ highWaterBytes: 100, congestedCloseMs: 1000, now: () => now });
  });
  afterEach(() => hub.closeAll(1001, 'test over'));

  it('sends a snapshot first', () => {
    const socket = new FakeSocket();
    hub.add(socket, 'team', 'a', [progress('a', 5)]);
    expect(socket.messages()).to.deep.equal([{ type: 'snapshot', jobs: [progress('a', 5)] }]);
  });

  it('sends updates of the watched job only', () => {
    const socket = new FakeSocket();
    hub.add(socket, 'team', 'a', []);
    hub.publish(progress('a', 1));
    hub.publish(progress('b', 2));
    hub.publish(progress('a', 3, 'other-team'));
    expect(percents(socket)).to.deep.equal([1]);
  });

  it('sends every job of a watched namespace', () => {
    const socket = new FakeSocket();
    hub.add(socket, 'team', undefined, []);
    hub.publish(progress('a', 1));
    hub.publish(progress('b', 2));
    hub.publish(progress('c', 3, 'other-team'));
    expect(percents(socket)).to.deep.equal([1, 2]);
  });

  it('serializes an update once for all viewers', () => {
    const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    for (const socket of sockets) hub.add(socket, 'team', 'a', []);
    hub.publish(progress('a', 7));
    expect(sockets[0]!.sent[1]).to.equal(sockets[1]!.sent[1]);
    expect(sockets[1]!.sent[1]).to.equal(sockets[2]!.sent[1]);
  });

  it('keeps only the latest update per job for a slow viewer', () => {
    const slow = new FakeSocket();
    hub.add(slow, 'team', undefined, []);
    slow.bufferedAmount = 1000;
    for (let percent = 1; percent <= 50; percent++) {
      hub.publish(progress('a', percent));
      hub.publish(progress('b', percent + 100));
    }
    expect(slow.sent).to.have.length(1);
    slow.bufferedAmount = 0;
    hub.flush();
    expect(percents(slow)).to.deep.equal([50, 150]);
  });

  it('keeps sending to fast viewers while one is slow', () => {
    const slow = new FakeSocket();
    const fast = new FakeSocket();
    hub.add(slow, 'team', 'a', []);
    hub.add(fast, 'team', 'a', []);
    slow.bufferedAmount = 1000;
    for (let percent = 1; percent <= 3; percent++) hub.publish(progress('a', percent));
    expect(percents(fast)).to.deep.equal([1, 2, 3]);
    expect(percents(slow)).to.deep.equal([]);
  });

  it('closes a viewer that stays congested', () => {
    const slow = new FakeSocket();
    hub.add(slow, 'team', 'a', []);
    slow.bufferedAmount = 1000;
    hub.publish(progress('a', 1));
    now = 999;
    hub.flush();
    expect(slow.closed).to.equal(undefined);
    now = 1000;
    hub.flush();
    expect(slow.closed?.code).to.equal(4429);
    expect(hub.size).to.equal(0);
  });

  it('forgets congestion once the viewer drains', () => {
    const socket = new FakeSocket();
    hub.add(socket, 'team', 'a', []);
    socket.bufferedAmount = 1000;
    hub.publish(progress('a', 1));
    socket.bufferedAmount = 0;
    now = 500;
    hub.flush();
    socket.bufferedAmount = 1000;
    hub.publish(progress('a', 2));
    now = 1400;
    hub.flush();
    expect(socket.closed).to.equal(undefined);
  });

  it('tells viewers about a deleted job', () => {
    const socket = new FakeSocket();
    hub.add(socket, 'team', 'a', []);
    hub.publishRemoved('team', 'a');
    expect(socket.messages()[1]).to.deep.equal({ type: 'removed', namespace: 'team', name: 'a' });
  });

  it('stops sending to a removed viewer', () => {
    const socket = new FakeSocket();
    const viewer = hub.add(socket, 'team', 'a', []);
    hub.remove(viewer);
    hub.publish(progress('a', 1));
    expect(socket.sent).to.have.length(1);
    expect(hub.size).to.equal(0);
  });

  it('counts deliveries and coalesced updates', () => {
    let sent = 0;
    let coalesced = 0;
    const counting = new ViewerHub({
      highWaterBytes: 100,
      onDeliveries: (s, c) => {
        sent += s;
        coalesced += c;
      },
    });
    const fast = new FakeSocket();
    const slow = new FakeSocket();
    counting.add(fast, 'team', 'a', []);
    counting.add(slow, 'team', 'a', []);
    slow.bufferedAmount = 1000;
    for (let percent = 1; percent <= 3; percent++) counting.publish(progress('a', percent));
    counting.closeAll(1001, 'test over');
    expect(sent).to.equal(3);
    expect(coalesced).to.equal(2);
  });
});
