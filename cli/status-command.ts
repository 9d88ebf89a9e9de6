// `trainjob-progress status NAME -n NS`: prints a TrainJob's trainerStatus annotation in
// readable form, or as JSON with --json.

import { CustomObjectsApi } from '@kubernetes/client-node';
import { parseArgs } from 'node:util';
import { describeApiError, statusCodeOf } from '../shared/kube-errors.ts';
import { TRAINJOB_GROUP, TRAINJOB_PLURAL, TRAINJOB_VERSION } from '../shared/annotations.ts';
import type { TrainJobObject } from '../shared/trainjob.ts';
import { CLI_ENV, contextNamespace, loadKubeConfig, trainJobName } from './cli-options.ts';
import { formatReport, progressFromTrainJob, toJsonRecord } from './progress-view.ts';

const USAGE = `Usage: trainjob-progress status NAME [-n NAMESPACE] [--kubeconfig PATH] [--json]

Prints the trainer.opendatahub.io/trainerStatus annotation of the TrainJob NAME in
readable form: phase, progress, step, epoch, remaining time and metrics.

Options:
  -n, --namespace NAMESPACE
      namespace of the TrainJob (default: the kubeconfig context's namespace, else default)
      environment: ${CLI_ENV.namespace}
  --kubeconfig PATH
      kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
      environment: ${CLI_ENV.kubeconfig}
  --json
      print one JSON object {namespace, name, phase, final, status} instead
  -h, --help
      print this text and exit

Exit status: 0 when the TrainJob was read, 1 when it cannot be read, 2 on a usage error.`;

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  kubeconfig: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[]): Promise<number> {
  let parsed;
  let name: string;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    if (parsed.values.help === true) {
      console.log(USAGE);
      return 0;
    }
    name = trainJobName(parsed.positionals);
  } catch (error) {
    console.error(`trainjob-progress status: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values } = parsed;
  const kubeConfig = loadKubeConfig(values.kubeconfig ?? process.env[CLI_ENV.kubeconfig]);
  const namespace =
    values.namespace ?? process.env[CLI_ENV.namespace] ?? contextNamespace(kubeConfig);
  let trainJob: TrainJobObject;
  try {
    trainJob = (await kubeConfig.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: TRAINJOB_GROUP,
      version: TRAINJOB_VERSION,
      plural: TRAINJOB_PLURAL,
      namespace,
      name,
    })) as TrainJobObject;
  } catch (error) {
    const reason =
      statusCodeOf(error) === 404 ? 'not found' : `cannot be read: ${describeApiError(error)}`;
    console.error(`trainjob-progress status: TrainJob ${namespace}/${name} ${reason}`);
    return 1;
  }
  const progress = progressFromTrainJob(trainJob);
  console.log(values.json === true ? toJsonRecord(progress) : formatReport(progress));
  return 0;
}
