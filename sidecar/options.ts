// The sidecar's command-line options, each paired with the environment variable that sets
// it in a pod, and the `--help` text built from them.

import { join } from 'node:path';

import { DEFAULT_METRICS_PATH, DEFAULT_METRICS_PORT } from '../shared/annotations.ts';
import {
  DEFAULT_SCRAPE_INTERVAL_SECONDS,
  SIDECAR_ENV,
  TOKEN_FILE_NAME,
  TOKEN_MOUNT_PATH,
} from '../shared/sidecar-env.ts';

/** Variables for sidecar tunables that the webhook does not set. */
export const SIDECAR_TUNING_ENV = Object.freeze({
  trainerExitSeconds: 'TRAINJOB_PROGRESS_TRAINER_EXIT_SECONDS',
  flushTimeoutSeconds: 'TRAINJOB_PROGRESS_FLUSH_TIMEOUT_SECONDS',
  bufferSize: 'TRAINJOB_PROGRESS_BUFFER_SIZE',
  logLevel: 'TRAINJOB_PROGRESS_LOG_LEVEL',
});

export const DEFAULT_POLL_INTERVAL_SECONDS = 30;
export const DEFAULT_TRAINER_EXIT_SECONDS = 30;
export const DEFAULT_FLUSH_TIMEOUT_SECONDS = 3;
export const DEFAULT_BUFFER_SIZE = 100;
export const DEFAULT_TOKEN_FILE = join(TOKEN_MOUNT_PATH, TOKEN_FILE_NAME);

export interface OptionSpec {
  flag: string;
  env: string;
  help: string;
}

export const SIDECAR_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'aggregator-url',
    env: SIDECAR_ENV.aggregatorUrl,
    help: 'ws:// or wss:// URL of the aggregator ingest endpoint (required)',
  },
  {
    flag: 'aggregator-ca-file',
    env: SIDECAR_ENV.aggregatorCaFile,
    help: 'PEM file of the CA that signs the aggregator certificate (default: system CAs)',
  },
  {
    flag: 'metrics-port',
    env: SIDECAR_ENV.metricsPort,
    help: `port of the trainer metrics endpoint on 127.0.0.1 (default ${DEFAULT_METRICS_PORT})`,
  },
  {
    flag: 'metrics-path',
    env: SIDECAR_ENV.metricsPath,
    help: `HTTP path of the trainer metrics endpoint (default ${DEFAULT_METRICS_PATH})`,
  },
  {
    flag: 'scrape-interval',
    env: SIDECAR_ENV.scrapeIntervalSeconds,
    help:
      'seconds between scrapes while training runs, capped by the poll interval ' +
      `(default ${DEFAULT_SCRAPE_INTERVAL_SECONDS}, minimum 0.1)`,
  },
  {
    flag: 'poll-interval',
    env: SIDECAR_ENV.pollIntervalSeconds,
    help: `the TrainJob poll interval in seconds (default ${DEFAULT_POLL_INTERVAL_SECONDS})`,
  },
  {
    flag: 'token-file',
    env: SIDECAR_ENV.tokenFile,
    help: `service-account token file, re-read on every connection (default ${DEFAULT_TOKEN_FILE})`,
  },
  {
    flag: 'mode',
    env: SIDECAR_ENV.mode,
    help:
      'native (the kubelet stops the sidecar) or container (the sidecar exits by itself ' +
      'once the trainer is gone); default native',
  },
  { flag: 'pod-name', env: SIDECAR_ENV.podName, help: 'name of this pod (required)' },
  {
    flag: 'pod-namespace',
    env: SIDECAR_ENV.podNamespace,
    help: 'namespace of this pod and its TrainJob (required)',
  },
  { flag: 'pod-uid', env: SIDECAR_ENV.podUid, help: 'UID of this pod (required)' },
  { flag: 'trainjob', env: SIDECAR_ENV.trainJobName, help: 'name of the TrainJob (required)' },
  {
    flag: 'trainer-exit-after',
    env: SIDECAR_TUNING_ENV.trainerExitSeconds,
    help:
      'container mode: seconds of refused connections, after the endpoint has responded once, ' +
      `that mean the trainer exited (default ${DEFAULT_TRAINER_EXIT_SECONDS})`,
  },
  {
    flag: 'flush-timeout',
    env: SIDECAR_TUNING_ENV.flushTimeoutSeconds,
    help:
      'seconds to wait for acknowledgements when stopping ' +
      `(default ${DEFAULT_FLUSH_TIMEOUT_SECONDS}, maximum 25)`,
  },
  {
    flag: 'buffer-size',
    env: SIDECAR_TUNING_ENV.bufferSize,
    help:
      'samples kept while the aggregator is unreachable; the oldest are dropped first ' +
      `(default ${DEFAULT_BUFFER_SIZE})`,
  },
  {
    flag: 'log-level',
    env: SIDECAR_TUNING_ENV.logLevel,
    help: 'fatal, error, warn, info, debug, trace or silent (default info)',
  },
];

const BEHAVIOUR = `
Scraping: every scrape has a 2 s timeout. While the endpoint refuses connections (the model
is loading), the sidecar retries quietly after 1 s, doubling up to the scrape interval. When
the trainer reports progress below 100 % and less than two scrape intervals remaining, the
sidecar scrapes every second. It keeps scraping after progress reaches 100 %.

Stopping: on SIGTERM or SIGINT the sidecar makes one last scrape, sends what is buffered and
a goodbye, waits up to the flush timeout for acknowledgements, and exits 0.

Container mode: once the endpoint has responded at least once, the trainer counts as exited
when at least 3 consecutive scrapes are refused over at least --trainer-exit-after seconds.
The sidecar then sends a goodbye and exits 0 so that the Job can complete. Before the
endpoint has ever responded, it never exits because of refused connections.`;

/** Builds the `--help` text: every option with its variable, unit and default. */
export function sidecarUsage(): string {
  const options = SIDECAR_OPTIONS.map(
    ({ flag, env, help }) => `  --${flag} VALUE   (env ${env})\n${wrap(help, 6, 92)}`,
  );
  return [
    'Usage: trainjob-progress sidecar [options]',
    '',
    'Scrapes the trainer metrics endpoint inside the pod and streams each sample to the',
    'aggregator. Each option can also be set through its environment variable; a flag wins.',
    '',
    'Options:',
    ...options,
    '  --help\n      print this text',
    BEHAVIOUR,
  ].join('\n');
}

function wrap(text: string, indent: number, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.map((each) => ' '.repeat(indent) + each).join('\n');
}
