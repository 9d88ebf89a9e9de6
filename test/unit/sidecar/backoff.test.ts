import { expect } from 'chai';

import { ReconnectBackoff } from '../../../sidecar/backoff.ts';

describe('ReconnectBackoff', () => {
  const options = { initialMs: 100, maxMs: 1000, authMinMs: 5000, authMaxMs: 20_000 };

  it('doubles the ceiling per attempt up to the maximum', () => {
    const backoff = new ReconnectBackoff(options, () => 1);
    const delays = Array.from({ length: 6 }, () => backoff.nextDelayMs());
    expect(delays).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
  });

  it('draws a full-jitter delay between 0 and the ceiling', () => {
    const backoff = new ReconnectBackoff(options, () => 0);
    expect(backoff.nextDelayMs()).to.equal(0);
    const halfway = new ReconnectBackoff(options, () => 0.5);
    halfway.nextDelayMs();
    expect(halfway.nextDelayMs()).to.equal(100);
  });

  it('waits long after a token rejection', () => {
    const backoff = new ReconnectBackoff(options, () => 0);
    expect(backoff.nextAuthDelayMs()).to.equal(5000);
    expect(backoff.nextAuthDelayMs()).to.equal(10_000);
    expect(backoff.nextAuthDelayMs()).to.equal(20_000);
    expect(backoff.nextAuthDelayMs()).to.equal(20_000);
  });

  it('caps the jittered token-rejection delay at its maximum', () => {
    const backoff = new ReconnectBackoff(options, () => 1);
    expect(backoff.nextAuthDelayMs()).to.equal(10_000);
    expect(backoff.nextAuthDelayMs()).to.equal(20_000);
  });

  it('starts over after reset', () => {
    const backoff = new ReconnectBackoff(options, () => 1);
    backoff.nextDelayMs();
    backoff.nextDelayMs();
    backoff.nextAuthDelayMs();
    backoff.reset();
    expect(backoff.nextDelayMs()).to.equal(100);
    expect(backoff.nextAuthDelayMs()).to.equal(10_000);
  });

  it('uses 1 s to 30 s by default', () => {
    const backoff = new ReconnectBackoff({}, () => 1);
    expect(backoff.nextDelayMs()).to.equal(1000);
    for (let i = 0; i < 10; i++) backoff.nextDelayMs();
    expect(backoff.nextDelayMs()).to.equal(30_000);
  });
});
