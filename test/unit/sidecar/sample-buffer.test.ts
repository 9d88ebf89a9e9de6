import { expect } from 'chai';

import { EMPTY_SAMPLE, type MetricsSample } from '../../../shared/metrics-sample.ts';
import { SampleBuffer } from '../../../sidecar/sample-buffer.ts';

function step(currentStep: number): MetricsSample {
  return { ...EMPTY_SAMPLE, currentStep };
}

function fill(buffer: SampleBuffer, count: number): void {
  for (let i = 1; i <= count; i++) buffer.push(step(i), new Date(1_700_000_000_000 + i));
}

describe('SampleBuffer', () => {
  it('numbers samples from 1 in strictly increasing order', () => {
    const buffer = new SampleBuffer(10);
    fill(buffer, 3);
    expect(buffer.pendingAfter(0).map((message) => message.seq)).to.deep.equal([1, 2, 3]);
    expect(buffer.lastSeq).to.equal(3);
  });

  it('records observedAt as an ISO timestamp with milliseconds', () => {
    const buffer = new SampleBuffer(10);
    const message = buffer.push(step(1), new Date('2026-01-23T10:30:45.123Z'));
    expect(message.observedAt).to.equal('2026-01-23T10:30:45.123Z');
    expect(message.type).to.equal('sample');
  });

  it('drops the oldest and keeps the newest when full', () => {
    const buffer = new SampleBuffer(3);
    fill(buffer, 5);
    expect(buffer.size).to.equal(3);
    expect(buffer.droppedCount).to.equal(2);
    expect(buffer.pendingAfter(0).map((message) => message.seq)).to.deep.equal([3, 4, 5]);
    expect(buffer.newest()?.sample.currentStep).to.equal(5);
  });

  it('removes acknowledged samples cumulatively', () => {
    const buffer = new SampleBuffer(10);
    fill(buffer, 5);
    buffer.acknowledge(3);
    expect(buffer.pendingAfter(0).map((message) => message.seq)).to.deep.equal([4, 5]);
    buffer.acknowledge(5);
    expect(buffer.size).to.equal(0);
  });

  it('ignores an acknowledgement below what is buffered', () => {
    const buffer = new SampleBuffer(2);
    fill(buffer, 4);
    buffer.acknowledge(1);
    expect(buffer.size).to.equal(2);
  });

  it('returns only samples after a given seq', () => {
    const buffer = new SampleBuffer(10);
    fill(buffer, 4);
    expect(buffer.pendingAfter(2).map((message) => message.seq)).to.deep.equal([3, 4]);
  });

  it('drops what a welcome says the aggregator has', () => {
    const buffer = new SampleBuffer(10);
    fill(buffer, 4);
    buffer.applyWelcome(2);
    expect(buffer.pendingAfter(0).map((message) => message.seq)).to.deep.equal([3, 4]);
    expect(buffer.lastSeq).to.equal(4);
  });

  it('keeps everything on a welcome with lastSeq 0', () => {
    const buffer = new SampleBuffer(10);
    fill(buffer, 2);
    buffer.applyWelcome(0);
    expect(buffer.size).to.equal(2);
  });

  it('renumbers after a welcome from an earlier run', () => {
    const buffer = new SampleBuffer(10);
    fill(buffer, 2);
    buffer.applyWelcome(40);
    expect(buffer.pendingAfter(0).map((message) => message.seq)).to.deep.equal([41, 42]);
    expect(buffer.push(step(3), new Date()).seq).to.equal(43);
  });

  it('rejects a capacity below 1', () => {
    expect(() => new SampleBuffer(0)).to.throw(RangeError, /capacity 0/);
  });
});
