// Configuration of the aggregator: command-line flags, each with an environment variable
// fallback, validated once and frozen. A flag wins over its environment variable, which
// wins over the default.

import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULT_TOKEN_AUDIENCE } from '../shared/stream-protocol.ts';
import { DEFAULT_HISTORY_BYTES } from './history.ts';
import { AGGREGATOR_OPTIONS as OPTIONS, type OptionSpec } from './config-options.ts';

export type AuthMode = 'kubernetes' | 'none';

export interface AggregatorConfig {
  readonly listenHost: string;
  readonly listenPort: number;
  readonly kubeconfigPath: string | undefined;
  readonly auth: AuthMode;
  readonly tokenAudience: string;
  /** Namespace whose TrainJobs are watched; undefined for all namespaces. */
  readonly watchNamespace: string | undefined;
  readonly writesPerSecond: number;
  readonly writeBurst: number;
  /** lastUpdatedTime is refreshed every this many poll intervals while samples arrive. */
  readonly refreshIntervals: number;
  readonly mirrorStatus: boolean;
  readonly fieldManager: string;
  readonly historyLimit: number;
  /** Bytes of history entries, serialized as JSON, kept per TrainJob. */
  readonly historyBytes: number;
  readonly ingestMessagesPerSecond: number;
  readonly ingestMessageBurst: number;
  readonly maxConnectionsPerPod: number;
  readonly maxViewersPerClient: number;
  readonly pingIntervalSeconds: number;
  readonly authCacheSeconds: number;
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly shutdownTimeoutSeconds: number;
  readonly logLevel: string;
}

export const ENV_PREFIX = 'TRAINJOB_PROGRESS_';

export const DEFAULT_CONFIG: AggregatorConfig = Object.freeze({
  listenHost: '0.0.0.0',
  listenPort: 8080,
  kubeconfigPath: undefined,
  auth: 'kubernetes',
  tokenAudience: DEFAULT_TOKEN_AUDIENCE,
  watchNamespace: undefined,
  writesPerSecond: 5,
  writeBurst: 10,
  refreshIntervals: 5,
  mirrorStatus: false,
  fieldManager: 'trainjob-progress-aggregator',
  historyLimit: 1000,
  historyBytes: DEFAULT_HISTORY_BYTES,
  ingestMessagesPerSecond: 20,
  ingestMessageBurst: 500,
  maxConnectionsPerPod: 2,
  maxViewersPerClient: 20,
  pingIntervalSeconds: 15,
  authCacheSeconds: 60,
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  shutdownTimeoutSeconds: 10,
  logLevel: 'info',
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** An invalid flag, environment variable or option; `code` is stable for callers. */
export class ConfigError extends Error {
  readonly code = 'ERR_INVALID_CONFIG';
}

/** Returns the environment variable that backs a flag, e.g. `TRAINJOB_PROGRESS_WRITE_QPS`. */
export function envName(spec: OptionSpec): string {
  return ENV_PREFIX + (spec.env ?? spec.flag.toUpperCase().replaceAll('-', '_'));
}

function defaultText(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  return String(DEFAULT_CONFIG[spec.key as keyof AggregatorConfig]);
}

/** Returns the --help text of `trainjob-progress aggregator`. */
export function aggregatorUsage(): string {
  const lines = OPTIONS.map((spec) => {
    const value = spec.kind === 'boolean' ? '' : ` ${spec.kind === 'string' ? 'TEXT' : 'N'}`;
    return [
      `  --${spec.flag}${value}`,
      ...wrap(`${spec.help} (default: ${defaultText(spec)})`, HELP_WIDTH, '      '),
      `      env: ${envName(spec)}`,
    ].join('\n');
  });
  return [
    'Usage: trainjob-progress aggregator [options]',
    '',
    'Receives sidecar streams, writes the trainer.opendatahub.io/trainerStatus annotation on',
    'TrainJobs and serves live progress. Runs until SIGTERM or SIGINT.',
    'A flag wins over its environment variable.',
    '',
    'Options:',
    ...lines,
    '  --help',
    '      print this text and exit',
  ].join('\n');
}

const HELP_WIDTH = 90;

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = indent;
  for (const word of text.split(' ')) {
    if (line.length + word.length + 1 > width && line.trim() !== '') {
      lines.push(line);
      line = indent;
    }
    line += line.trim() === '' ? word : ` ${word}`;
  }
  lines.push(line);
  return lines;
}

/**
 * Reads the configuration from flags and environment variables. Returns undefined when
 * --help was given. Throws ConfigError on an unknown flag or an invalid value.
 */
export function parseAggregatorConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): AggregatorConfig | undefined {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const spec of OPTIONS)
    options[spec.flag] = { type: spec.kind === 'boolean' ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; run with --help for the options`, {
      cause: error,
    });
  }
  if (values.help === true) return undefined;

  const overrides: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const spec of OPTIONS) {
    const fromFlag = values[spec.flag];
    const raw = fromFlag ?? env[envName(spec)];
    if (raw === undefined || raw === '') continue;
    const source = fromFlag === undefined ? envName(spec) : `--${spec.flag}`;
    readOption(spec, raw, source, overrides);
    sources[spec.key] = source;
  }
  return resolveConfig(overrides, sources);
}

function readOption(
  spec: OptionSpec,
  raw: string | boolean,
  source: string,
  into: Record<string, unknown>,
): void {
  if (spec.key === 'listen') {
    Object.assign(into, parseListenAddress(String(raw), source));
    return;
  }
  into[spec.key] = convertValue(spec, raw, source);
}

function convertValue(spec: OptionSpec, raw: string | boolean, source: string): unknown {
  if (typeof raw === 'boolean') return raw;
  const text = raw.trim();
  if (spec.kind === 'string') return text;
  if (spec.kind === 'boolean') {
    if (/^(true|1|yes)$/i.test(text)) return true;
    if (/^(false|0|no)$/i.test(text)) return false;
    throw new ConfigError(`invalid ${source} ${JSON.stringify(raw)}: expected true or false`);
  }
  const number = /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(number) || (spec.kind === 'integer' && !Number.isInteger(number))) {
    throw new ConfigError(
      `invalid ${source} ${JSON.stringify(raw)}: expected ${spec.kind === 'integer' ? 'an integer' : 'a number'}`,
    );
  }
  return number;
}

/** Parses `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all interfaces). */
export function parseListenAddress(
  text: string,
  source = '--listen',
): { listenHost: string; listenPort: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65535) {
    throw new ConfigError(
      `invalid ${source} ${JSON.stringify(text)}: expected HOST:PORT, [IPv6]:PORT or :PORT with a port from 0 to 65535`,
    );
  }
  const host = match[1] ?? match[2] ?? '';
  return { listenHost: host === '' ? '0.0.0.0' : host, listenPort: port };
}

/** Returns whether an address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * Applies defaults to a partial configuration, validates it and returns it frozen.
 * `sources` names where each config field came from, such as `--write-qps` or
 * `TRAINJOB_PROGRESS_WRITE_QPS`, for error messages; a field without one is named by its flag.
 */
export function resolveConfig(
  overrides: Partial<AggregatorConfig>,
  sources: Readonly<Record<string, string>> = {},
): AggregatorConfig {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const config: AggregatorConfig = { ...DEFAULT_CONFIG, ...defined };
  validateConfig(config, (key, flag) => sources[key] ?? `--${flag}`);
  return Object.freeze(config);
}

function validateConfig(
  config: AggregatorConfig,
  sourceOf: (key: string, flag: string) => string,
): void {
  for (const spec of OPTIONS) {
    if (spec.key === 'listen' || (spec.kind !== 'number' && spec.kind !== 'integer')) continue;
    const value = config[spec.key] as number;
    const integerOk = spec.kind !== 'integer' || Number.isInteger(value);
    if (!Number.isFinite(value) || !integerOk || value < spec.min! || value > spec.max!) {
      throw new ConfigError(
        `invalid ${sourceOf(spec.key, spec.flag)} ${value}: expected ${spec.kind === 'integer' ? 'an integer' : 'a number'} from ${spec.min} to ${spec.max}`,
      );
    }
  }
  if (!Number.isInteger(config.listenPort) || config.listenPort < 0 || config.listenPort > 65535) {
    throw new ConfigError(
      `invalid ${sourceOf('listen', 'listen')} port ${config.listenPort}: expected 0 to 65535`,
    );
  }
  const auth = sourceOf('auth', 'auth');
  if (config.auth !== 'kubernetes' && config.auth !== 'none') {
    throw new ConfigError(
      `invalid ${auth} ${JSON.stringify(config.auth)}: expected kubernetes or none`,
    );
  }
  if (config.auth === 'none' && !isLoopbackHost(config.listenHost)) {
    throw new ConfigError(
      `invalid ${auth} none: it trusts every client, so it needs a loopback --listen address such as 127.0.0.1, not ${JSON.stringify(config.listenHost)}`,
    );
  }
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    throw new ConfigError('missing TLS file: give --tls-cert-file and --tls-key-file together');
  }
  if (!LOG_LEVELS.includes(config.logLevel)) {
    throw new ConfigError(
      `invalid ${sourceOf('logLevel', 'log-level')} ${JSON.stringify(config.logLevel)}: expected one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  for (const [key, flag, value] of [
    ['tokenAudience', 'token-audience', config.tokenAudience],
    ['fieldManager', 'field-manager', config.fieldManager],
  ] as const) {
    if (value.trim() === '') {
      throw new ConfigError(`invalid ${sourceOf(key, flag)}: must not be empty`);
    }
  }
}
