import { expect } from 'chai';
import {
  ConfigError,
  envName,
  helpText,
  OPTIONS,
  parseWebhookConfig,
} from '../../../webhook/config.ts';

const REQUIRED = [
  '--aggregator-url=ws://aggregator.ns.svc:8080/v1/ingest',
  '--sidecar-image=registry.example/tp:1',
];

function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return parseWebhookConfig([...REQUIRED, ...argv], env)!;
}

function parseError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseWebhookConfig(argv, env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    expect(error).to.have.property('code', 'ERR_INVALID_CONFIG');
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('webhook/config', () => {
  it('applies the defaults', () => {
    const config = parse([]);
    expect(config.listen).to.deep.equal({ host: '0.0.0.0', port: 9443 });
    expect(config.certMode).to.equal('self-signed');
    expect(config.sidecarMode).to.equal('auto');
    expect(config.injectionScope).to.equal('primary');
    expect(config.tokenAudience).to.equal('trainjob-progress');
    expect(config.sidecarResources).to.deep.equal({
      cpuRequest: '50m',
      cpuLimit: '100m',
      memoryRequest: '128Mi',
      memoryLimit: '128Mi',
    });
    expect(config.trainJobReadTimeoutMs).to.equal(1500);
    expect(config.reconcileIntervalMs).to.equal(30_000);
    expect(config.certValidityMs).to.equal(365 * 24 * 3600 * 1000);
  });

  it('freezes the result', () => {
    const config = parse([]);
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.sidecarResources)).to.equal(true);
  });

  it('reads environment variables', () => {
    const config = parseWebhookConfig([], {
      TRAINJOB_PROGRESS_AGGREGATOR_URL: 'wss://agg.example/v1/ingest',
      TRAINJOB_PROGRESS_SIDECAR_IMAGE: 'img:2',
      TRAINJOB_PROGRESS_INJECTION_SCOPE: 'all-nodes',
      TRAINJOB_PROGRESS_LISTEN: '[::]:8443',
    })!;
    expect(config.aggregatorUrl).to.equal('wss://agg.example/v1/ingest');
    expect(config.injectionScope).to.equal('all-nodes');
    expect(config.listen).to.deep.equal({ host: '::', port: 8443 });
  });

  it('prefers flags over environment variables', () => {
    const config = parse(['--sidecar-mode', 'container'], {
      TRAINJOB_PROGRESS_SIDECAR_MODE: 'native',
    });
    expect(config.sidecarMode).to.equal('container');
  });

  it('accepts an empty webhook config name', () => {
    expect(parse(['--webhook-config-name=']).webhookConfigName).to.equal('');
  });

  it('returns undefined for --help', () => {
    expect(parseWebhookConfig(['--help'], {})).to.equal(undefined);
  });

  it('requires the aggregator URL and image', () => {
    const message = parseError([]);
    expect(message).to.contain('--aggregator-url is required');
    expect(message).to.contain('--sidecar-image: missing or invalid image');
  });

  it('rejects a non-WebSocket aggregator URL', () => {
    expect(parseError(['--aggregator-url=http://x/v1/ingest', '--sidecar-image=i'])).to.contain(
      '--aggregator-url: invalid URL "http://x/v1/ingest"',
    );
  });

  it('rejects unknown flags', () => {
    expect(parseError([...REQUIRED, '--colour=red'])).to.contain('--help');
  });

  it('lists every invalid value at once', () => {
    const message = parseError([
      ...REQUIRED,
      '--sidecar-mode=sometimes',
      '--sidecar-cpu-limit=lots',
      '--listen=nowhere',
      '--log-level=loud',
    ]);
    expect(message).to.contain('--sidecar-mode: invalid value "sometimes"');
    expect(message).to.contain('--sidecar-cpu-limit: invalid quantity "lots"');
    expect(message).to.contain('--listen: invalid address "nowhere"');
    expect(message).to.contain('--log-level: invalid value "loud"');
  });

  it('rejects fractional bytes of memory', () => {
    const message = parseError([
      ...REQUIRED,
      '--sidecar-memory-request=100663296.5',
      '--sidecar-memory-limit=134217728000m',
    ]);
    expect(message).to.contain('--sidecar-memory-request: invalid quantity "100663296.5"');
    expect(message).to.contain('--sidecar-memory-limit: invalid quantity "134217728000m"');
  });

  it('rejects a request above its limit', () => {
    expect(parseError([...REQUIRED, '--sidecar-memory-request=256Mi'])).to.contain(
      '--sidecar-memory-request must not exceed --sidecar-memory-limit',
    );
  });

  it('requires --cert-dir in files mode', () => {
    expect(parseError([...REQUIRED, '--cert-mode=files'])).to.contain('--cert-dir is required');
  });

  it('rejects a non-numeric duration', () => {
    expect(parseError([...REQUIRED, '--reconcile-interval-seconds=often'])).to.contain(
      '--reconcile-interval-seconds: invalid number "often"',
    );
  });

  it('documents every option with its env var', () => {
    const help = helpText();
    for (const option of OPTIONS) {
      expect(help).to.contain(`--${option.flag} ${option.value}`);
      expect(help).to.contain(`env: ${envName(option.flag)}`);
    }
  });

  it('derives env names from flags', () => {
    expect(envName('sidecar-cpu-limit')).to.equal('TRAINJOB_PROGRESS_SIDECAR_CPU_LIMIT');
  });
});
