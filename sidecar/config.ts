// Sidecar configuration: read once at start-up from flags and environment variables (a flag
// wins over its variable), validated, then frozen. The webhook sets the variables; the flags
// exist for local runs. Every invalid or missing value is reported, not only the first.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { DEFAULT_METRICS_PATH, DEFAULT_METRICS_PORT } from '../shared/annotations.ts';
import { DEFAULT_SCRAPE_INTERVAL_SECONDS } from '../shared/sidecar-env.ts';
import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_FLUSH_TIMEOUT_SECONDS,
  DEFAULT_POLL_INTERVAL_SECONDS,
  DEFAULT_TOKEN_FILE,
  DEFAULT_TRAINER_EXIT_SECONDS,
  SIDECAR_OPTIONS,
} from './options.ts';

export { sidecarUsage } from './options.ts';

export type SidecarMode = 'native' | 'container';

export interface SidecarConfig {
  aggregatorUrl: URL;
  aggregatorCaFile: string | null;
  metricsUrl: URL;
  scrapeIntervalSeconds: number;
  pollIntervalSeconds: number;
  /** Seconds between scrapes while training runs: the scrape interval, capped by the poll interval. */
  liveIntervalSeconds: number;
  tokenFile: string;
  mode: SidecarMode;
  podName: string;
  podNamespace: string;
  podUid: string;
  trainJobName: string;
  /** Container mode: how long the endpoint must refuse connections before the sidecar exits. */
  trainerExitSeconds: number;
  flushTimeoutSeconds: number;
  bufferSize: number;
  logLevel: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const MIN_INTERVAL_SECONDS = 0.1;
const MAX_INTERVAL_SECONDS = 3600;
/** Stays well inside the 30 s default termination grace period, with the last scrape's 2 s. */
const MAX_FLUSH_TIMEOUT_SECONDS = 25;

/** An invalid or missing flag or variable; the message names each one and its value. */
export class SidecarConfigError extends Error {
  readonly code = 'ERR_SIDECAR_CONFIG';
}

/** Returns whether the arguments request the help text. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/**
 * Reads the configuration from flags and environment variables. Throws SidecarConfigError
 * naming every missing or invalid flag or variable with its value.
 */
export function loadSidecarConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Readonly<SidecarConfig> {
  const read = new ConfigReader(parseFlags(argv), env);
  const scrapeIntervalSeconds = read.seconds(
    'scrape-interval',
    DEFAULT_SCRAPE_INTERVAL_SECONDS,
    MIN_INTERVAL_SECONDS,
    MAX_INTERVAL_SECONDS,
  );
  const pollIntervalSeconds = read.seconds(
    'poll-interval',
    DEFAULT_POLL_INTERVAL_SECONDS,
    MIN_INTERVAL_SECONDS,
    MAX_INTERVAL_SECONDS,
  );
  const port = read.integer('metrics-port', DEFAULT_METRICS_PORT, 1, 65535);
  const path = read.httpPath('metrics-path') ?? DEFAULT_METRICS_PATH;

  const config: SidecarConfig = {
    aggregatorUrl: read.url('aggregator-url', ['ws:', 'wss:']),
    aggregatorCaFile: read.readableFile('aggregator-ca-file'),
    metricsUrl: new URL(`http://127.0.0.1:${port}${path}`),
    scrapeIntervalSeconds,
    pollIntervalSeconds,
    liveIntervalSeconds: Math.min(scrapeIntervalSeconds, pollIntervalSeconds),
    tokenFile: read.text('token-file') ?? DEFAULT_TOKEN_FILE,
    mode: read.choice('mode', ['native', 'container'] as const, 'native'),
    podName: read.required('pod-name'),
    podNamespace: read.required('pod-namespace'),
    podUid: read.required('pod-uid'),
    trainJobName: read.required('trainjob'),
    trainerExitSeconds: read.seconds('trainer-exit-after', DEFAULT_TRAINER_EXIT_SECONDS, 0, 86400),
    flushTimeoutSeconds: read.seconds(
      'flush-timeout',
      DEFAULT_FLUSH_TIMEOUT_SECONDS,
      0,
      MAX_FLUSH_TIMEOUT_SECONDS,
    ),
    bufferSize: read.integer('buffer-size', DEFAULT_BUFFER_SIZE, 1, 100_000),
    logLevel: read.choice('log-level', LOG_LEVELS, 'info'),
  };
  if (read.errors.length > 0) {
    throw new SidecarConfigError(`invalid configuration:\n  ${read.errors.join('\n  ')}`);
  }
  return Object.freeze(config);
}

function parseFlags(argv: readonly string[]): Record<string, string | undefined> {
  const options = Object.fromEntries(
    SIDECAR_OPTIONS.map(({ flag }) => [flag, { type: 'string' as const }]),
  );
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const message = `${(error as Error).message}; run with --help for the options`;
    throw new SidecarConfigError(message, { cause: error });
  }
}

/**
 * Typed accessors that look up a flag, then its variable, and validate the value. An invalid
 * or missing value is recorded in `errors` and replaced by the default, so that one pass
 * finds every problem.
 */
class ConfigReader {
  readonly errors: string[] = [];
  readonly #flags: Record<string, string | undefined>;
  readonly #env: NodeJS.ProcessEnv;

  constructor(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv) {
    this.#flags = flags;
    this.#env = env;
  }

  text(flag: string): string | undefined {
    return this.#lookup(flag)?.value;
  }

  required(flag: string): string {
    const found = this.#lookup(flag);
    if (found !== undefined) return found.value;
    this.errors.push(`missing ${envOf(flag)} (or --${flag}): it must be set`);
    return '';
  }

  seconds(flag: string, fallback: number, min: number, max: number): number {
    const found = this.#lookup(flag);
    if (found === undefined) return fallback;
    const value = Number(found.value);
    if (Number.isFinite(value) && value >= min && value <= max) return value;
    return this.#invalid(found, `a number of seconds from ${min} to ${max}`, fallback);
  }

  integer(flag: string, fallback: number, min: number, max: number): number {
    const found = this.#lookup(flag);
    if (found === undefined) return fallback;
    const value = Number(found.value);
    if (/^\d+$/.test(found.value) && value >= min && value <= max) return value;
    return this.#invalid(found, `an integer from ${min} to ${max}`, fallback);
  }

  choice<T extends string>(flag: string, choices: readonly T[], fallback: T): T {
    const found = this.#lookup(flag);
    if (found === undefined) return fallback;
    if ((choices as readonly string[]).includes(found.value)) return found.value as T;
    return this.#invalid(found, `one of ${choices.join(', ')}`, fallback);
  }

  httpPath(flag: string): string | undefined {
    const found = this.#lookup(flag);
    if (found === undefined || /^\/\S*$/.test(found.value)) return found?.value;
    return this.#invalid(found, 'an absolute HTTP path such as /metrics', undefined);
  }

  url(flag: string, protocols: readonly string[]): URL {
    const placeholder = new URL('ws://invalid');
    const found = this.#lookup(flag);
    if (found === undefined) {
      this.required(flag);
      return placeholder;
    }
    const url = URL.canParse(found.value) ? new URL(found.value) : undefined;
    if (url !== undefined && protocols.includes(url.protocol)) return url;
    return this.#invalid(found, `a ${protocols.join(' or ')} URL`, placeholder);
  }

  readableFile(flag: string): string | null {
    const found = this.#lookup(flag);
    if (found === undefined) return null;
    try {
      readFileSync(found.value);
      return found.value;
    } catch (error) {
      return this.#invalid(found, `a readable file (${(error as Error).message})`, null);
    }
  }

  #lookup(flag: string): { value: string; source: string } | undefined {
    const fromFlag = this.#flags[flag];
    if (fromFlag !== undefined) return { value: fromFlag, source: `--${flag}` };
    const env = envOf(flag);
    const fromEnv = this.#env[env]?.trim();
    return fromEnv === undefined || fromEnv === '' ? undefined : { value: fromEnv, source: env };
  }

  #invalid<T>(found: { value: string; source: string }, expected: string, fallback: T): T {
    this.errors.push(
      `invalid ${found.source} ${JSON.stringify(found.value)}: expected ${expected}`,
    );
    return fallback;
  }
}

function envOf(flag: string): string {
  const spec = SIDECAR_OPTIONS.find((option) => option.flag === flag);
  if (spec === undefined) throw new Error(`no sidecar option named --${flag}`);
  return spec.env;
}
