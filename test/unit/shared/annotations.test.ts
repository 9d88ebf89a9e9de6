import { expect } from 'chai';

import {
  DEFAULT_METRICS_PORT,
  isProgressionTrackingEnabled,
  parseGoDurationMilliseconds,
  parseMetricsPort,
  parsePollIntervalSeconds,
} from '../../../shared/annotations.ts';

describe('progression-tracking annotation', () => {
  const cases: [string | undefined, boolean][] = [
    ['true', true],
    ['enabled', true],
    [' TRUE ', true],
    ['Enabled', true],
    ['\ttrue\n', true],
    ['false', false],
    ['yes', false],
    ['1', false],
    ['', false],
    [undefined, false],
  ];
  for (const [value, expected] of cases) {
    it(`reads ${JSON.stringify(value)} as ${expected ? 'on' : 'off'}`, () => {
      expect(isProgressionTrackingEnabled(value)).to.equal(expected);
    });
  }
});

describe('metrics-port annotation', () => {
  it('defaults to 28080 when missing', () => {
    expect(parseMetricsPort(undefined)).to.deep.equal({ value: 28080 });
  });

  for (const valid of ['1', '8080', ' 9090 ', '65535']) {
    it(`accepts ${JSON.stringify(valid)}`, () => {
      const parsed = parseMetricsPort(valid);
      expect(parsed.value).to.equal(Number(valid.trim()));
      expect(parsed.warning).to.equal(undefined);
    });
  }

  for (const invalid of ['0', '65536', '-1', '80.5', 'http', '', '1e3', '123456']) {
    it(`falls back with a warning for ${JSON.stringify(invalid)}`, () => {
      const parsed = parseMetricsPort(invalid);
      expect(parsed.value).to.equal(DEFAULT_METRICS_PORT);
      expect(parsed.warning).to.be.a('string').and.include('metrics-port');
    });
  }
});

describe('metrics-poll-interval annotation', () => {
  const vectors: [string | undefined, number][] = [
    ['1m', 60],
    ['45', 45],
    ['3s', 5],
    ['600s', 300],
    ['invalid', 30],
    ['15s', 15],
    ['0', 5],
    ['-10s', 5],
    [undefined, 30],
    ['1m30s', 90],
    ['500ms', 5],
    [' 20s ', 20],
    ['1h', 300],
    ['7.5s', 7.5],
    ['', 30],
  ];
  for (const [value, seconds] of vectors) {
    it(`reads ${JSON.stringify(value)} as ${seconds} s`, () => {
      expect(parsePollIntervalSeconds(value).value).to.equal(seconds);
    });
  }

  it('warns only for unparsable values', () => {
    expect(parsePollIntervalSeconds('invalid').warning).to.include('metrics-poll-interval');
    expect(parsePollIntervalSeconds('3s').warning).to.equal(undefined);
    expect(parsePollIntervalSeconds(undefined).warning).to.equal(undefined);
  });
});

describe('Go duration parser', () => {
  const vectors: [string, number | undefined][] = [
    ['1h2m3s', 3_723_000],
    ['1.5s', 1500],
    ['.5m', 30_000],
    ['250us', 0.25],
    ['-2m', -120_000],
    ['+3s', 3000],
    ['0', 0],
    ['5', undefined],
    ['1d', undefined],
    ['s', undefined],
    ['1s2', undefined],
  ];
  for (const [text, milliseconds] of vectors) {
    it(`parses ${JSON.stringify(text)}`, () => {
      expect(parseGoDurationMilliseconds(text)).to.equal(milliseconds);
    });
  }
});
