import { expect } from 'chai';
import {
  INJECTION_SCOPE_ANNOTATION,
  METRICS_PATH_ANNOTATION,
  METRICS_POLL_INTERVAL_ANNOTATION,
  METRICS_PORT_ANNOTATION,
  SIDECAR_CPU_ANNOTATION,
  SIDECAR_MEMORY_ANNOTATION,
  SIDECAR_MODE_ANNOTATION,
} from '../../../shared/annotations.ts';
import { resolvePodSettings } from '../../../webhook/pod-settings.ts';
import { isWholeByteQuantity, parseQuantity } from '../../../webhook/quantity.ts';
import { DEFAULTS } from './fixtures.ts';

describe('webhook/pod-settings', () => {
  it('uses the defaults without annotations', () => {
    const { settings, warnings } = resolvePodSettings({}, DEFAULTS);
    expect(settings).to.deep.equal({
      scope: 'primary',
      sidecarMode: 'native',
      metricsPort: 28080,
      metricsPath: '/metrics',
      pollIntervalSeconds: 30,
      scrapeIntervalSeconds: 5,
      resources: DEFAULTS.resources,
    });
    expect(warnings).to.deep.equal([]);
  });

  it('applies valid overrides', () => {
    const { settings, warnings } = resolvePodSettings(
      {
        [METRICS_PORT_ANNOTATION]: ' 9000 ',
        [METRICS_POLL_INTERVAL_ANNOTATION]: '1m30s',
        [METRICS_PATH_ANNOTATION]: '/v1/progress',
        [INJECTION_SCOPE_ANNOTATION]: 'ALL-NODES',
        [SIDECAR_MODE_ANNOTATION]: 'container',
        [SIDECAR_CPU_ANNOTATION]: '0.25',
        [SIDECAR_MEMORY_ANNOTATION]: '96Mi',
      },
      DEFAULTS,
    );
    expect(warnings).to.deep.equal([]);
    expect(settings).to.deep.include({
      metricsPort: 9000,
      pollIntervalSeconds: 90,
      metricsPath: '/v1/progress',
      scope: 'all-nodes',
      sidecarMode: 'container',
    });
    expect(settings.resources).to.deep.equal({
      cpuRequest: '0.25',
      cpuLimit: '0.25',
      memoryRequest: '96Mi',
      memoryLimit: '96Mi',
    });
  });

  it('keeps the scrape interval at 5 s for a 5 s poll interval', () => {
    expect(
      resolvePodSettings({ [METRICS_POLL_INTERVAL_ANNOTATION]: '3s' }, DEFAULTS).settings
        .scrapeIntervalSeconds,
    ).to.equal(5);
  });

  const invalid: [string, string, string][] = [
    [METRICS_PORT_ANNOTATION, '70000', 'metrics-port'],
    [METRICS_POLL_INTERVAL_ANNOTATION, 'often', 'metrics-poll-interval'],
    [METRICS_PATH_ANNOTATION, 'metrics', 'metrics-path'],
    [METRICS_PATH_ANNOTATION, '/a b', 'metrics-path'],
    [INJECTION_SCOPE_ANNOTATION, 'some', 'injection-scope'],
    [SIDECAR_MODE_ANNOTATION, 'daemon', 'sidecar-mode'],
    [SIDECAR_CPU_ANNOTATION, '3', 'sidecar-cpu'],
    [SIDECAR_CPU_ANNOTATION, '100x', 'sidecar-cpu'],
    [SIDECAR_MEMORY_ANNOTATION, '16Mi', 'sidecar-memory'],
    [SIDECAR_MEMORY_ANNOTATION, '-64Mi', 'sidecar-memory'],
    [SIDECAR_MEMORY_ANNOTATION, '33554432.5', 'sidecar-memory'],
    [SIDECAR_MEMORY_ANNOTATION, '0.1Gi', 'sidecar-memory'],
    [SIDECAR_MEMORY_ANNOTATION, '67108864000m', 'sidecar-memory'],
    [SIDECAR_MEMORY_ANNOTATION, '67108864000000u', 'sidecar-memory'],
  ];
  for (const [annotation, value, setting] of invalid) {
    it(`falls back on ${setting} ${JSON.stringify(value)}`, () => {
      const { settings, warnings } = resolvePodSettings({ [annotation]: value }, DEFAULTS);
      expect(warnings.map((w) => w.setting)).to.deep.equal([setting]);
      expect(warnings[0]!.message).to.contain(annotation);
      expect(settings).to.deep.equal(resolvePodSettings({}, DEFAULTS).settings);
    });
  }

  for (const memory of ['33554432', '0.5Gi', '32.5Mi', '65536Ki', '3.3554432e7', '128M']) {
    it(`accepts whole-byte memory ${JSON.stringify(memory)}`, () => {
      const { settings, warnings } = resolvePodSettings(
        { [SIDECAR_MEMORY_ANNOTATION]: memory },
        DEFAULTS,
      );
      expect(warnings).to.deep.equal([]);
      expect(settings.resources.memoryLimit).to.equal(memory);
    });
  }

  it('falls back to container where native sidecars are unsupported', () => {
    const { settings, warnings } = resolvePodSettings(
      { [SIDECAR_MODE_ANNOTATION]: 'native' },
      { ...DEFAULTS, sidecarMode: 'container', nativeSidecarsSupported: false },
    );
    expect(settings.sidecarMode).to.equal('container');
    expect(warnings[0]!.message).to.contain('1.29');
  });

  it('shortens a long invalid value in the warning', () => {
    const { warnings } = resolvePodSettings(
      { [METRICS_PATH_ANNOTATION]: 'x'.repeat(500) },
      DEFAULTS,
    );
    expect(warnings[0]!.message.length).to.be.below(200);
    expect(warnings[0]!.message).to.contain('x...",');
  });

  describe('parseQuantity', () => {
    const cases: [string, number | undefined][] = [
      ['100m', 0.1],
      ['2', 2],
      ['0.5', 0.5],
      ['64Mi', 64 * 2 ** 20],
      ['1Gi', 2 ** 30],
      ['1k', 1000],
      ['1e3', 1000],
      ['1.5E-1', 0.15],
      ['+1', 1],
      ['1MiB', undefined],
      ['m', undefined],
      ['1 Mi', undefined],
      ['', undefined],
      ['0x10', undefined],
    ];
    for (const [text, value] of cases) {
      it(`parses ${JSON.stringify(text)}`, () => {
        const parsed = parseQuantity(text);
        if (value === undefined) expect(parsed).to.equal(undefined);
        else expect(parsed).to.be.closeTo(value, value * 1e-9);
      });
    }
  });

  describe('isWholeByteQuantity', () => {
    const cases: [string, boolean][] = [
      ['33554432', true],
      ['0.5Ki', true],
      ['1.5', false],
      ['33554432.5', false],
      ['33554432.000001', false],
      ['0.1Gi', false],
      ['1000m', false],
      ['5n', false],
      ['5u', false],
      ['1.5e1', true],
      ['1.55e1', false],
      ['15e-1', false],
      ['150e-1', true],
      ['0.5k', true],
      ['0.0005k', false],
      ['0', true],
      ['.5Mi', true],
      ['1Ei', true],
      [`1${'0'.repeat(40)}e-60`, false],
      ['64MiB', false],
    ];
    for (const [text, whole] of cases) {
      it(`${whole ? 'accepts' : 'rejects'} ${JSON.stringify(text)}`, () => {
        expect(isWholeByteQuantity(text)).to.equal(whole);
      });
    }
  });
});
