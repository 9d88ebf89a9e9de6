import { expect } from 'chai';

import { LogThrottle } from '../../../sidecar/log-throttle.ts';

describe('LogThrottle', () => {
  it('admits the first line of a key', () => {
    expect(new LogThrottle(1000).admit('a', 0)).to.equal(0);
  });

  it('suppresses repeats within the interval and counts them', () => {
    const throttle = new LogThrottle(1000);
    throttle.admit('a', 0);
    expect(throttle.admit('a', 100)).to.equal(undefined);
    expect(throttle.admit('a', 900)).to.equal(undefined);
    expect(throttle.admit('a', 1000)).to.equal(2);
    expect(throttle.admit('a', 1001)).to.equal(undefined);
  });

  it('keeps keys apart', () => {
    const throttle = new LogThrottle(1000);
    throttle.admit('a', 0);
    expect(throttle.admit('b', 1)).to.equal(0);
  });
});
