import { expect } from 'chai';

import { TokenBucket } from '../../../aggregator/token-bucket.ts';
import { WriteBudget } from '../../../aggregator/write-budget.ts';

function drain(budget: WriteBudget, now: number): string[] {
  const keys: string[] = [];
  for (let grant = budget.take(now); grant !== undefined; grant = budget.take(now)) {
    keys.push(grant.key);
  }
  return keys;
}

describe('token bucket', () => {
  it('allows a burst, then the configured rate', () => {
    const bucket = new TokenBucket(2, 3, 0);
    expect([1, 2, 3, 4].map(() => bucket.tryTake(0))).to.deep.equal([true, true, true, false]);
    expect(bucket.tryTake(499)).to.equal(false);
    expect(bucket.tryTake(500)).to.equal(true);
  });

  it('reports the wait for the next token', () => {
    const bucket = new TokenBucket(4, 1, 0);
    bucket.tryTake(0);
    expect(bucket.waitMs(0)).to.equal(250);
    expect(bucket.waitMs(100)).to.equal(150);
    expect(bucket.waitMs(250)).to.equal(0);
  });

  it('never holds more than the burst', () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect([1, 2, 3].map(() => bucket.tryTake(60_000))).to.deep.equal([true, true, false]);
  });

  it('delays later takes after a charge into debt', () => {
    const bucket = new TokenBucket(1, 1, 0);
    bucket.tryTake(0);
    bucket.charge(0, 1);
    expect(bucket.waitMs(0)).to.equal(2000);
  });

  it('rejects a zero rate', () => {
    expect(() => new TokenBucket(0, 1, 0)).to.throw(RangeError);
  });
});

describe('write budget', () => {
  it('grants no more than the burst at once', () => {
    const budget = new WriteBudget({ writesPerSecond: 1, burst: 2 }, 0);
    for (const key of ['a', 'b', 'c', 'd']) budget.request(key, 'normal', 0);
    expect(drain(budget, 0)).to.deep.equal(['a', 'b']);
    expect(budget.size).to.equal(2);
  });

  it('grants terminal requests before normal ones', () => {
    const budget = new WriteBudget({ writesPerSecond: 1, burst: 1 }, 0);
    budget.request('running-1', 'normal', 0);
    budget.request('running-2', 'normal', 0);
    budget.request('finished', 'terminal', 0);
    expect(budget.take(0)?.key).to.equal('finished');
    expect(budget.take(1000)?.key).to.equal('running-1');
  });

  it('moves a queued normal request to the terminal queue', () => {
    const budget = new WriteBudget({ writesPerSecond: 1, burst: 1 }, 0);
    budget.request('other', 'normal', 0);
    budget.request('job', 'normal', 0);
    budget.request('job', 'terminal', 0);
    expect(budget.take(0)).to.include({ key: 'job', priority: 'terminal' });
    expect(budget.size).to.equal(1);
  });

  it('keeps one request per job', () => {
    const budget = new WriteBudget({ writesPerSecond: 100, burst: 100 }, 0);
    budget.request('a', 'normal', 0);
    budget.request('a', 'normal', 0);
    budget.request('a', 'normal', 0);
    expect(drain(budget, 0)).to.deep.equal(['a']);
  });

  it('takes jobs in turns so a busy job cannot starve others', () => {
    const budget = new WriteBudget({ writesPerSecond: 1, burst: 1 }, 0);
    const granted: string[] = [];
    budget.request('busy', 'normal', 0);
    budget.request('quiet-1', 'normal', 0);
    budget.request('quiet-2', 'normal', 0);
    for (let second = 0; second < 6; second++) {
      const grant = budget.take(second * 1000);
      granted.push(grant!.key);
      // The busy job requests again at once after every write of its own.
      budget.request('busy', 'normal', second * 1000);
      if (grant!.key !== 'busy') budget.request(grant!.key, 'normal', second * 1000);
    }
    expect(granted).to.deep.equal(['busy', 'quiet-1', 'quiet-2', 'busy', 'quiet-1', 'quiet-2']);
  });

  it('reports how long a request waited', () => {
    const budget = new WriteBudget({ writesPerSecond: 1, burst: 1 }, 0);
    budget.request('a', 'normal', 0);
    budget.request('b', 'normal', 0);
    expect(budget.take(0)?.waitedMs).to.equal(0);
    expect(budget.take(1000)?.waitedMs).to.equal(1000);
  });

  it('forgets cancelled requests', () => {
    const budget = new WriteBudget({ writesPerSecond: 1, burst: 5 }, 0);
    budget.request('a', 'terminal', 0);
    budget.request('b', 'normal', 0);
    budget.cancel('a');
    expect(budget.has('a')).to.equal(false);
    expect(drain(budget, 0)).to.deep.equal(['b']);
  });

  it('bounds grants over time by the rate whatever the number of jobs', () => {
    const budget = new WriteBudget({ writesPerSecond: 5, burst: 10 }, 0);
    let granted = 0;
    for (let ms = 0; ms <= 10_000; ms += 100) {
      for (let job = 0; job < 1000; job++) budget.request(`job-${job}`, 'normal', ms);
      granted += drain(budget, ms).length;
    }
    expect(granted).to.be.at.most(10 + 5 * 10);
    expect(granted).to.be.at.least(5 * 10);
  });

  it('reports the wait only while requests are queued', () => {
    const budget = new WriteBudget({ writesPerSecond: 2, burst: 1 }, 0);
    expect(budget.waitMs(0)).to.equal(undefined);
    budget.request('a', 'normal', 0);
    budget.request('b', 'normal', 0);
    budget.take(0);
    expect(budget.waitMs(0)).to.equal(500);
  });
});
