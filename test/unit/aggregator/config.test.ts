import { expect } from 'chai';

import {
  aggregatorUsage,
  ConfigError,
  DEFAULT_CONFIG,
  isLoopbackHost,
  parseAggregatorConfig,
  parseListenAddress,
  resolveConfig,
} from '../../../aggregator/config.ts';

describe('aggregator config', () => {
  it('uses the defaults without flags', () => {
    expect(parseAggregatorConfig([], {})).to.deep.equal(DEFAULT_CONFIG);
  });

  it('returns undefined for --help', () => {
    expect(parseAggregatorConfig(['--help'], {})).to.equal(undefined);
  });

  it('reads flags', () => {
    const config = parseAggregatorConfig(
      ['--listen', '127.0.0.1:9000', '--write-qps', '2.5', '--mirror-status', '--auth', 'none'],
      {},
    )!;
    expect(config).to.include({
      listenHost: '127.0.0.1',
      listenPort: 9000,
      writesPerSecond: 2.5,
      mirrorStatus: true,
      auth: 'none',
    });
  });

  it('reads environment variables', () => {
    const config = parseAggregatorConfig([], {
      TRAINJOB_PROGRESS_WRITE_BURST: '20',
      TRAINJOB_PROGRESS_WATCH_NAMESPACE: 'team-a',
      TRAINJOB_PROGRESS_MIRROR_STATUS: 'true',
      TRAINJOB_PROGRESS_KUBECONFIG: '/etc/kube/config',
    })!;
    expect(config).to.include({
      writeBurst: 20,
      watchNamespace: 'team-a',
      mirrorStatus: true,
      kubeconfigPath: '/etc/kube/config',
    });
  });

  it('prefers a flag over its environment variable', () => {
    const config = parseAggregatorConfig(['--write-burst', '3'], {
      TRAINJOB_PROGRESS_WRITE_BURST: '20',
    })!;
    expect(config.writeBurst).to.equal(3);
  });

  it('returns a frozen config', () => {
    expect(Object.isFrozen(parseAggregatorConfig([], {}))).to.equal(true);
  });

  const invalid: [string[], Record<string, string>, RegExp][] = [
    [['--write-qps', 'fast'], {}, /invalid --write-qps "fast": expected a number/],
    [['--write-burst', '1.5'], {}, /invalid --write-burst "1.5": expected an integer/],
    [['--write-burst', '0'], {}, /invalid --write-burst 0: expected an integer from 1 to 10000/],
    [[], { TRAINJOB_PROGRESS_HISTORY_LIMIT: '2' }, /invalid TRAINJOB_PROGRESS_HISTORY_LIMIT 2/],
    [[], { TRAINJOB_PROGRESS_MIRROR_STATUS: 'maybe' }, /TRAINJOB_PROGRESS_MIRROR_STATUS "maybe"/],
    [['--auth', 'token'], {}, /invalid --auth "token": expected kubernetes or none/],
    [['--auth', 'none'], {}, /invalid --auth none: .* needs a loopback --listen address/],
    [['--auth', 'none', '--listen', '10.1.2.3:80'], {}, /not "10.1.2.3"/],
    [['--listen', 'localhost'], {}, /invalid --listen "localhost"/],
    [['--listen', ':70000'], {}, /invalid --listen ":70000"/],
    [['--tls-cert-file', '/tls.crt'], {}, /give --tls-cert-file and --tls-key-file together/],
    [['--log-level', 'loud'], {}, /invalid --log-level "loud"/],
    [['--unknown'], {}, /--unknown.*run with --help/],
    [['--history-bytes', '1024'], {}, /invalid --history-bytes 1024: expected an integer from/],
    [['--token-audience', ' '], {}, /invalid --token-audience: must not be empty/],
  ];
  for (const [argv, env, message] of invalid) {
    it(`rejects ${[...argv, ...Object.entries(env).map((e) => e.join('='))].join(' ')}`, () => {
      expect(() => parseAggregatorConfig(argv, env))
        .to.throw(ConfigError, message)
        .with.property('code', 'ERR_INVALID_CONFIG');
    });
  }

  it('accepts auth none on loopback addresses', () => {
    for (const listen of ['127.0.0.1:0', '[::1]:8080', 'localhost:1']) {
      expect(parseAggregatorConfig(['--auth', 'none', '--listen', listen], {})?.auth).to.equal(
        'none',
      );
    }
  });

  it('validates programmatic options', () => {
    expect(() => resolveConfig({ writesPerSecond: -1 })).to.throw(
      ConfigError,
      /invalid --write-qps -1/,
    );
  });

  it('parses listen addresses', () => {
    expect(parseListenAddress(':8080')).to.deep.equal({ listenHost: '0.0.0.0', listenPort: 8080 });
    expect(parseListenAddress('[::1]:0')).to.deep.equal({ listenHost: '::1', listenPort: 0 });
  });

  it('recognizes loopback hosts', () => {
    expect(['127.0.0.1', '127.8.9.10', '::1', 'localhost'].map(isLoopbackHost)).to.deep.equal([
      true,
      true,
      true,
      true,
    ]);
    expect(['0.0.0.0', '10.0.0.1', '::', '127.example.com'].map(isLoopbackHost)).to.deep.equal([
      false,
      false,
      false,
      false,
    ]);
  });

  it('documents every flag with its environment variable and default', () => {
    const usage = aggregatorUsage();
    expect(usage).to.include('--write-qps N');
    expect(usage).to.include('env: TRAINJOB_PROGRESS_WRITE_QPS');
    expect(usage).to.include('(default: 5)');
    expect(usage).to.include('env: TRAINJOB_PROGRESS_WATCH_NAMESPACE');
    expect(usage).to.include('--history-bytes N');
    expect(usage.replace(/\s+/g, ' ')).to.include('(default: 4194304, 4 MiB)');
  });
});
