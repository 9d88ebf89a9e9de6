// Options of `trainjob-progress demo` and its progress messages.

import { parseArgs } from 'node:util';

export const SYSTEM_NAMESPACE = 'trainjob-progress-system';
export const WEBHOOK_CONFIG_NAME = 'trainjob-progress-demo';

export const HELP = `Usage: trainjob-progress demo [options]

Runs a real PyTorch training job end to end on a local kube-apiserver and etcd (built from
their Go modules on first use), with the webhook, the injected sidecar and the aggregator,
and prints the final trainerStatus annotation.

Options:
  --namespace NS        namespace of the demo TrainJob (default: demo)
  --name NAME           name of the demo TrainJob (default: digits)
  --steps N             stop training after N optimizer steps (default: 6 epochs)
  --step-delay SECONDS  seconds to sleep after each step (default 0.3, about 1.5 minutes)
  --keep-logs           keep the folder with every process's log after the demo
  -h, --help            show this help
`;

export interface DemoOptions {
  namespace: string;
  name: string;
  /** Namespace of the webhook's certificate Secret. */
  systemNamespace: string;
  webhookConfigName: string;
  /** Whether the live progress of `tail` goes to this process's stdout. */
  showProgress: boolean;
  steps: string | undefined;
  stepDelay: string | undefined;
  keepLogs: boolean;
}

export function parseOptions(argv: string[]): DemoOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespace: { type: 'string', default: 'demo' },
      name: { type: 'string', default: 'digits' },
      steps: { type: 'string' },
      'step-delay': { type: 'string' },
      'keep-logs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  return {
    namespace: values.namespace,
    name: values.name,
    systemNamespace: SYSTEM_NAMESPACE,
    webhookConfigName: WEBHOOK_CONFIG_NAME,
    showProgress: true,
    steps: values.steps,
    stepDelay: values['step-delay'],
    keepLogs: values['keep-logs'],
  };
}

export function say(message: string): void {
  console.log(`demo: ${message}`);
}
