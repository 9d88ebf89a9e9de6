// `trainjob-progress tail NAME -n NS`: shows a TrainJob's live progress until it ends.
// With only a kubeconfig it watches the TrainJob through the API server, so it reads the
// annotation as the aggregator writes it, at most once per poll interval. With
// --aggregator-url it follows the aggregator's viewer stream, which carries every sample.

import { parseArgs } from 'node:util';
import type { JobProgress } from '../shared/stream-protocol.ts';
import {
  bearerTokenOf,
  CLI_ENV,
  contextNamespace,
  loadKubeConfig,
  trainJobName,
} from './cli-options.ts';
import { followAggregator } from './follow-aggregator.ts';
import { followApiServer, type FollowEnd } from './follow-api-server.ts';
import { TailRenderer, type TailMode } from './tail-renderer.ts';

/** How long tail waits for the final status once the job has ended, by default. */
export const DEFAULT_FINAL_WAIT_SECONDS = 15;

const USAGE = `Usage: trainjob-progress tail NAME [-n NAMESPACE] [--kubeconfig PATH]
                                [--aggregator-url URL] [--json]

Shows the live progress of the TrainJob NAME: a progress bar with percent, step, epoch,
remaining time and the latest loss and evaluation metrics on a terminal, one line per
update otherwise. Ends when the job is Complete (exit 0) or Failed (exit 1), after
printing the final status.

Options:
  -n, --namespace NAMESPACE
      namespace of the TrainJob (default: the kubeconfig context's namespace, else default)
      environment: ${CLI_ENV.namespace}
  --kubeconfig PATH
      kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
      environment: ${CLI_ENV.kubeconfig}
  --aggregator-url URL
      follow the aggregator's live stream at this base URL, e.g. http://localhost:8080,
      sending the kubeconfig user's bearer token if it has one (default: watch the
      TrainJob through the API server)
      environment: ${CLI_ENV.aggregatorUrl}
  --aggregator-ca-file PATH
      PEM file of the CA that signs the aggregator's certificate, for https:// URLs
      environment: ${CLI_ENV.aggregatorCaFile}
  --final-wait-seconds N
      seconds to wait for the final status after the job ended (default: ${DEFAULT_FINAL_WAIT_SECONDS})
  --json
      print one JSON object {namespace, name, phase, final, status} per update
  -h, --help
      print this text and exit

Exit status: 0 Complete, 1 Failed, deleted or not found, 2 usage error, 130 interrupted.`;

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  kubeconfig: { type: 'string' },
  'aggregator-url': { type: 'string' },
  'aggregator-ca-file': { type: 'string' },
  'final-wait-seconds': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface TailOptions {
  name: string;
  namespace: string | undefined;
  kubeconfig: string | undefined;
  aggregatorUrl: string | undefined;
  aggregatorCaFile: string | undefined;
  finalWaitMs: number;
  json: boolean;
}

/** Parses the arguments; returns undefined for --help. Throws on a usage error. */
export function parseTailOptions(argv: string[], env: NodeJS.ProcessEnv): TailOptions | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help === true) return undefined;
  const waitText = values['final-wait-seconds'] ?? String(DEFAULT_FINAL_WAIT_SECONDS);
  const waitSeconds = /^\d+(\.\d+)?$/.test(waitText) ? Number(waitText) : NaN;
  if (Number.isNaN(waitSeconds)) {
    throw new Error(
      `invalid --final-wait-seconds ${JSON.stringify(waitText)}: expected a number of seconds ≥ 0`,
    );
  }
  return Object.freeze({
    name: trainJobName(positionals),
    namespace: values.namespace ?? env[CLI_ENV.namespace],
    kubeconfig: values.kubeconfig ?? env[CLI_ENV.kubeconfig],
    aggregatorUrl: values['aggregator-url'] ?? env[CLI_ENV.aggregatorUrl],
    aggregatorCaFile: values['aggregator-ca-file'] ?? env[CLI_ENV.aggregatorCaFile],
    finalWaitMs: waitSeconds * 1000,
    json: values.json === true,
  });
}

export async function run(argv: string[]): Promise<number> {
  let options: TailOptions | undefined;
  try {
    options = parseTailOptions(argv, process.env);
  } catch (error) {
    console.error(`trainjob-progress tail: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === undefined) {
    console.log(USAGE);
    return 0;
  }
  let mode: TailMode = 'plain';
  if (options.json) mode = 'json';
  else if (process.stdout.isTTY) mode = 'tty';
  const renderer = new TailRenderer(mode, {
    write: (text) => process.stdout.write(text),
    columns: process.stdout.columns,
  });
  const interrupted = new Promise<number>((resolve) => process.once('SIGINT', () => resolve(130)));
  const code = await Promise.race([follow(options, renderer), interrupted]);
  renderer.closeLine();
  return code;
}

async function follow(options: TailOptions, renderer: TailRenderer): Promise<number> {
  const kubeConfig = loadKubeConfig(options.kubeconfig);
  const namespace = options.namespace ?? contextNamespace(kubeConfig);
  const callbacks = { onProgress: (progress: JobProgress) => renderer.update(progress) };
  const end =
    options.aggregatorUrl === undefined
      ? await followApiServer(kubeConfig, namespace, options.name, options.finalWaitMs, callbacks)
      : await followAggregator(
          {
            aggregatorUrl: options.aggregatorUrl,
            token: await bearerTokenOf(kubeConfig),
            caFile: options.aggregatorCaFile,
            namespace,
            name: options.name,
            finalWaitMs: options.finalWaitMs,
          },
          callbacks,
        );
  return report(end, `${namespace}/${options.name}`, renderer);
}

function report(end: FollowEnd, target: string, renderer: TailRenderer): number {
  if (end.kind === 'ended') {
    renderer.finish(end.progress);
    return end.progress.phase === 'Complete' ? 0 : 1;
  }
  renderer.closeLine();
  const messages = {
    deleted: `TrainJob ${target} was deleted`,
    'not-found': `TrainJob ${target} not found`,
    error: end.kind === 'error' ? end.message : '',
  };
  console.error(`trainjob-progress tail: ${messages[end.kind]}`);
  return 1;
}
