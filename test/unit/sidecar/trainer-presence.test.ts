import { expect } from 'chai';

import { TrainerPresence } from '../../../sidecar/trainer-presence.ts';

describe('TrainerPresence', () => {
  it('never reports an exit before the endpoint answered', () => {
    const presence = new TrainerPresence({ minAbsenceMs: 1000 });
    for (let t = 0; t <= 100_000; t += 1000) presence.recordRefused(t);
    expect(presence.seen).to.equal(false);
    expect(presence.hasExited(100_000)).to.equal(false);
  });

  it('reports an exit after enough refusals over the absence window', () => {
    const presence = new TrainerPresence({ minAbsenceMs: 30_000 });
    presence.recordPresent();
    presence.recordRefused(0);
    presence.recordRefused(10_000);
    expect(presence.hasExited(10_000)).to.equal(false);
    presence.recordRefused(30_000);
    expect(presence.hasExited(30_000)).to.equal(true);
  });

  it('needs the minimum number of refusals, not only the time', () => {
    const presence = new TrainerPresence({ minAbsenceMs: 1000, minRefusals: 3 });
    presence.recordPresent();
    presence.recordRefused(0);
    presence.recordRefused(50_000);
    expect(presence.hasExited(60_000)).to.equal(false);
  });

  it('needs the absence window, not only the count', () => {
    const presence = new TrainerPresence({ minAbsenceMs: 30_000 });
    presence.recordPresent();
    for (let t = 0; t < 10; t++) presence.recordRefused(t * 1000);
    expect(presence.hasExited(29_999)).to.equal(false);
    expect(presence.hasExited(30_000)).to.equal(true);
  });

  it('starts the streak over when the endpoint answers again', () => {
    const presence = new TrainerPresence({ minAbsenceMs: 1000 });
    presence.recordPresent();
    presence.recordRefused(0);
    presence.recordRefused(500);
    presence.recordPresent();
    presence.recordRefused(5000);
    expect(presence.hasExited(5000)).to.equal(false);
  });
});
