import { expect } from 'chai';

import { History, type HistoryEntry } from '../../../aggregator/history.ts';

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
});
