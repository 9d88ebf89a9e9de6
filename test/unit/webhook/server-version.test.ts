import { expect } from 'chai';
import { parseServerVersion, supportsNativeSidecars } from '../../../webhook/server-version.ts';

describe('webhook/server-version', () => {
  it('reads major and minor', () => {
    expect(parseServerVersion({ major: '1', minor: '36', gitVersion: 'v1.36.3' })).to.deep.equal({
      major: 1,
      minor: 36,
      gitVersion: 'v1.36.3',
    });
  });

  it('reads a minor with a plus', () => {
    expect(
      parseServerVersion({ major: '1', minor: '29+', gitVersion: 'v1.29.3-gke.1' }),
    ).to.include({ minor: 29 });
  });

  it('falls back to gitVersion', () => {
    expect(parseServerVersion({ major: '', minor: '', gitVersion: 'v1.28.2-eks-1' })).to.include({
      major: 1,
      minor: 28,
    });
  });

  it('parses an unreleased build as 0.0', () => {
    expect(parseServerVersion({ gitVersion: 'v0.0.0-master+$Format:%H$' })).to.deep.include({
      major: 0,
      minor: 0,
    });
  });

  it('returns undefined without a version', () => {
    expect(parseServerVersion({})).to.equal(undefined);
    expect(parseServerVersion('text')).to.equal(undefined);
  });

  const cases: [number, number, boolean][] = [
    [1, 28, false],
    [1, 29, true],
    [1, 36, true],
    [2, 0, true],
    [0, 0, false],
  ];
  for (const [major, minor, supported] of cases) {
    it(`${supported ? 'supports' : 'lacks'} native sidecars on ${major}.${minor}`, () => {
      expect(supportsNativeSidecars({ major, minor, gitVersion: '' })).to.equal(supported);
    });
  }
});
