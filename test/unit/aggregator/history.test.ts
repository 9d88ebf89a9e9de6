import { expect } from 'chai';

import {
  History,
  MAX_ENTRY_BYTES,
  MIN_HISTORY_BYTES,
  type HistoryEntry,
} from '../../../aggregator/history.ts';
import type { MetricMap } from '../../../shared/metrics-sample.ts';

function entry(index: number): HistoryEntry {
  const time = new Date(Date.UTC(2026, 0, 1, 0, 0, index)).toISOString();
  return { time, status: { progressPercentage: index % 101, lastUpdatedTime: time } };
}

describe('history', () => {
  it('keeps entries in time order', () => {
    const history = new History(10);
    for (let i = 0; i < 5; i++) history.add(entry(i), String(i));
    expect(history.entries().map((e) => e.status.progressPercentage)).to.deep.equal([
      0, 1, 2, 3, 4,
    ]);
  });

  it('never exceeds its limit', () => {
    const history = new History(100);
    for (let i = 0; i < 10_000; i++) {
      history.add(entry(i), String(i));
      expect(history.size).to.be.at.most(100);
    }
  });

  it('keeps the first and the newest entries when thinning', () => {
    const history = new History(8);
    for (let i = 0; i < 50; i++) history.add(entry(i), String(i));
    const times = history.entries().map((e) => e.time);
    expect(times[0]).to.equal(entry(0).time);
    expect(times.at(-1)).to.equal(entry(49).time);
    expect(times.at(-2)).to.equal(entry(48).time);
    expect([...times].sort()).to.deep.equal(times);
  });

  it('skips an entry equal to the previous one', () => {
    const history = new History(10);
    history.add(entry(1), 'same');
    history.add(entry(2), 'same');
    history.add(entry(3), 'other');
    expect(history.size).to.equal(2);
  });

  it('rejects a limit below the minimum', () => {
    expect(() => new History(1)).to.throw(RangeError, /invalid history limit 1/);
  });

  function wideEntry(index: number, metrics: number, valueLength: number): HistoryEntry {
    const trainMetrics: MetricMap = { loss: 1 / (index + 1) };
    for (let i = 0; i < metrics; i++) trainMetrics[`note_${i}`] = 'x'.repeat(valueLength);
    const base = entry(index);
    return { ...base, status: { ...base.status, trainMetrics } };
  }

  it('stays within its byte budget', () => {
    const budget = 256 * 1024;
    const history = new History(1000, budget);
    for (let i = 0; i < 1100; i++) {
      history.add(wideEntry(i, 40, 300), String(i));
      expect(history.bytes).to.be.at.most(budget);
    }
    const serialized = Buffer.byteLength(JSON.stringify(history.entries()));
    expect(serialized).to.be.at.most(budget + history.size);
    expect(history.entries()[0]!.time).to.equal(entry(0).time);
    expect(history.entries().at(-1)!.time).to.equal(entry(1099).time);
  });

  it('keeps only numeric metrics of a large entry', () => {
    const history = new History(10);
    history.add(wideEntry(0, 250, 300), '0');
    const stored = history.entries()[0]!;
    expect(stored.trimmed).to.equal(true);
    expect(stored.status.trainMetrics).to.deep.equal({ loss: 1 });
    expect(history.bytes).to.be.at.most(MAX_ENTRY_BYTES);
  });

  it('drops the metrics of a large numeric entry', () => {
    const history = new History(10);
    const big = entry(0);
    const trainMetrics: MetricMap = {};
    for (let i = 0; i < 256; i++) trainMetrics[`${'m'.repeat(60)}${i}`] = i + 0.123456789;
    history.add(
      { ...big, status: { ...big.status, trainMetrics, evalMetrics: trainMetrics } },
      '0',
    );
    const stored = history.entries()[0]!;
    expect(stored.trimmed).to.equal(true);
    expect(stored.status.trainMetrics).to.equal(undefined);
    expect(stored.status.progressPercentage).to.equal(0);
  });

  it('stores a small entry unchanged', () => {
    const history = new History(10);
    history.add(entry(3), '3');
    expect(history.entries()[0]).to.deep.equal(entry(3));
  });

  it('rejects a byte budget below the minimum', () => {
    expect(() => new History(10, MIN_HISTORY_BYTES - 1)).to.throw(
      RangeError,
      /invalid history byte budget/,
    );
  });
});
