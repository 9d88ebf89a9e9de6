import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';

import { SIDECAR_ENV } from '../../../shared/sidecar-env.ts';
import {
  loadSidecarConfig,
  SidecarConfigError,
  sidecarUsage,
  wantsHelp,
} from '../../../sidecar/config.ts';
import { SIDECAR_OPTIONS } from '../../../sidecar/options.ts';

const REQUIRED_ENV = {
  [SIDECAR_ENV.aggregatorUrl]: 'ws://127.0.0.1:9000/v1/ingest',
  [SIDECAR_ENV.podName]: 'job-node-0-0-abcde',
  [SIDECAR_ENV.podNamespace]: 'team-a',
  [SIDECAR_ENV.podUid]: '0b6f2a1e-1111-2222-3333-444455556666',
  [SIDECAR_ENV.trainJobName]: 'job',
};

function configError(argv: string[], env: NodeJS.ProcessEnv): SidecarConfigError {
  try {
    loadSidecarConfig(argv, env);
  } catch (error) {
    expect(error).to.be.instanceOf(SidecarConfigError);
    return error as SidecarConfigError;
  }
  throw new Error('expected a SidecarConfigError');
}

describe('sidecar configuration', () => {
  it('reads the webhook variables and applies defaults', () => {
    const config = loadSidecarConfig([], REQUIRED_ENV);
    expect(config.aggregatorUrl.href).to.equal('ws://127.0.0.1:9000/v1/ingest');
    expect(config.metricsUrl.href).to.equal('http://127.0.0.1:28080/metrics');
    expect(config.scrapeIntervalSeconds).to.equal(5);
    expect(config.liveIntervalSeconds).to.equal(5);
    expect(config.mode).to.equal('native');
    expect(config.tokenFile).to.equal('/var/run/secrets/trainjob-progress/token');
    expect(config.podNamespace).to.equal('team-a');
    expect(config.trainJobName).to.equal('job');
    expect(config.aggregatorCaFile).to.equal(null);
    expect(config.bufferSize).to.equal(100);
    expect(config.flushTimeoutSeconds).to.equal(3);
    expect(config.trainerExitSeconds).to.equal(30);
    expect(Object.isFrozen(config)).to.equal(true);
  });

  it('builds the metrics URL from port and path', () => {
    const env = {
      ...REQUIRED_ENV,
      [SIDECAR_ENV.metricsPort]: '9090',
      [SIDECAR_ENV.metricsPath]: '/progress',
    };
    expect(loadSidecarConfig([], env).metricsUrl.href).to.equal('http://127.0.0.1:9090/progress');
  });

  it('caps the live interval at the poll interval', () => {
    const env = {
      ...REQUIRED_ENV,
      [SIDECAR_ENV.scrapeIntervalSeconds]: '20',
      [SIDECAR_ENV.pollIntervalSeconds]: '10',
    };
    const config = loadSidecarConfig([], env);
    expect(config.liveIntervalSeconds).to.equal(10);
    expect(config.scrapeIntervalSeconds).to.equal(20);
  });

  it('lets a flag win over its variable', () => {
    const env = { ...REQUIRED_ENV, [SIDECAR_ENV.mode]: 'native' };
    expect(loadSidecarConfig(['--mode', 'container'], env).mode).to.equal('container');
  });

  it('runs from flags alone', () => {
    const argv = [
      '--aggregator-url=wss://aggregator.example/v1/ingest',
      '--pod-name=p',
      '--pod-namespace=n',
      '--pod-uid=u',
      '--trainjob=t',
      '--scrape-interval=0.5',
    ];
    const config = loadSidecarConfig(argv, {});
    expect(config.aggregatorUrl.protocol).to.equal('wss:');
    expect(config.liveIntervalSeconds).to.equal(0.5);
  });

  it('names the variable and value of an invalid port', () => {
    const error = configError([], { ...REQUIRED_ENV, [SIDECAR_ENV.metricsPort]: '70000' });
    expect(error.message).to.include('TRAINJOB_PROGRESS_METRICS_PORT "70000"');
    expect(error.message).to.include('an integer from 1 to 65535');
    expect(error.code).to.equal('ERR_SIDECAR_CONFIG');
  });

  it('names the flag of an invalid value given as a flag', () => {
    const error = configError(['--scrape-interval', 'fast'], REQUIRED_ENV);
    expect(error.message).to.include('--scrape-interval "fast"');
  });

  it('lists every missing variable at once', () => {
    const error = configError([], {});
    for (const name of Object.keys(REQUIRED_ENV)) expect(error.message).to.include(name);
  });

  it('rejects an http aggregator URL', () => {
    const error = configError([], { ...REQUIRED_ENV, [SIDECAR_ENV.aggregatorUrl]: 'http://a/b' });
    expect(error.message).to.include('expected a ws: or wss: URL');
  });

  it('rejects an unknown mode', () => {
    const error = configError([], { ...REQUIRED_ENV, [SIDECAR_ENV.mode]: 'sidecar' });
    expect(error.message).to.include('TRAINJOB_PROGRESS_SIDECAR_MODE "sidecar"');
  });

  it('rejects a relative metrics path', () => {
    const error = configError([], { ...REQUIRED_ENV, [SIDECAR_ENV.metricsPath]: 'metrics' });
    expect(error.message).to.include('TRAINJOB_PROGRESS_METRICS_PATH "metrics"');
  });

  it('rejects a CA file that cannot be read', () => {
    const env = { ...REQUIRED_ENV, [SIDECAR_ENV.aggregatorCaFile]: '/nonexistent/ca.pem' };
    expect(configError([], env).message).to.include('"/nonexistent/ca.pem"');
  });

  it('accepts a readable CA file', () => {
    const path = join(tmpdir(), `sidecar-ca-${process.pid}.pem`);
    writeFileSync(path, 'not checked here');
    const env = { ...REQUIRED_ENV, [SIDECAR_ENV.aggregatorCaFile]: path };
    expect(loadSidecarConfig([], env).aggregatorCaFile).to.equal(path);
  });

  it('rejects an unknown flag', () => {
    expect(configError(['--bogus'], REQUIRED_ENV).message).to.include('--bogus');
  });

  it('treats an empty variable as unset', () => {
    const env = { ...REQUIRED_ENV, [SIDECAR_ENV.metricsPort]: ' ' };
    expect(loadSidecarConfig([], env).metricsUrl.port).to.equal('28080');
  });

  it('documents every option with its variable in the help', () => {
    const usage = sidecarUsage();
    for (const option of SIDECAR_OPTIONS) {
      expect(usage).to.include(`--${option.flag}`);
      expect(usage).to.include(option.env);
    }
    expect(usage).to.match(/Container mode: .*responded at least once/s);
    expect(wantsHelp(['--help'])).to.equal(true);
  });
});
