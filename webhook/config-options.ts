// The webhook's command-line options: one table, each a flag with an environment variable
// fallback, and the `--help` text built from it.

import { DEFAULT_METRICS_PATH } from '../shared/annotations.ts';
import { DEFAULT_TOKEN_AUDIENCE } from '../shared/stream-protocol.ts';

const ENV_PREFIX = 'TRAINJOB_PROGRESS_';
export const LOG_LEVELS: readonly string[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

export interface OptionSpec {
  flag: string;
  /** Placeholder for the value in the help text. */
  value: string;
  default: string | undefined;
  help: string;
}

/** Every option; the environment variable is TRAINJOB_PROGRESS_ plus the flag in upper snake case. */
export const OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'listen',
    value: 'HOST:PORT',
    default: '0.0.0.0:9443',
    help: 'address of the HTTPS server; port 0 picks a free port',
  },
  {
    flag: 'kubeconfig',
    value: 'PATH',
    default: undefined,
    help: 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account)',
  },
  {
    flag: 'namespace',
    value: 'NAME',
    default: undefined,
    help: "namespace of the webhook, its Service and its Secret (default: the pod's namespace, else default)",
  },
  {
    flag: 'service-name',
    value: 'NAME',
    default: 'trainjob-progress-webhook',
    help: 'Service in front of the webhook, named in the serving certificate',
  },
  {
    flag: 'webhook-config-name',
    value: 'NAME',
    default: 'trainjob-progress',
    help: 'MutatingWebhookConfiguration whose caBundle the webhook keeps current in self-signed mode; empty turns this off',
  },
  {
    flag: 'secret-name',
    value: 'NAME',
    default: 'trainjob-progress-webhook-tls',
    help: 'Secret that stores the self-signed CA and serving certificate for all replicas',
  },
  {
    flag: 'cert-mode',
    value: 'MODE',
    default: 'self-signed',
    help: 'self-signed (create and rotate a CA and certificate) or files (read tls.crt and tls.key from --cert-dir, as cert-manager writes them)',
  },
  {
    flag: 'cert-dir',
    value: 'DIR',
    default: undefined,
    help: 'folder of tls.crt and tls.key in files mode; in self-signed mode the CA is written there as ca.crt',
  },
  {
    flag: 'cert-validity-days',
    value: 'DAYS',
    default: '365',
    help: 'lifetime of a self-signed serving certificate in days; it is renewed when a third is left',
  },
  {
    flag: 'ca-validity-days',
    value: 'DAYS',
    default: '3650',
    help: 'lifetime of the self-signed CA in days; it is renewed when a third is left',
  },
  {
    flag: 'cluster-domain',
    value: 'DOMAIN',
    default: 'cluster.local',
    help: "DNS domain of the cluster, for the certificate's fully qualified Service name",
  },
  {
    flag: 'aggregator-url',
    value: 'URL',
    default: undefined,
    help: "WebSocket URL of the aggregator's ingest endpoint that sidecars stream to (required), e.g. ws://trainjob-progress-aggregator.NS.svc:8080/v1/ingest",
  },
  {
    flag: 'sidecar-image',
    value: 'IMAGE',
    default: undefined,
    help: 'container image of the sidecar (required)',
  },
  {
    flag: 'sidecar-image-pull-policy',
    value: 'POLICY',
    default: 'IfNotPresent',
    help: 'imagePullPolicy of the sidecar: Always, IfNotPresent or Never',
  },
  {
    flag: 'token-audience',
    value: 'AUDIENCE',
    default: DEFAULT_TOKEN_AUDIENCE,
    help: 'audience of the projected service-account token that the sidecar presents to the aggregator',
  },
  {
    flag: 'sidecar-mode',
    value: 'MODE',
    default: 'auto',
    help: 'auto (native when the API server is 1.29 or later), native (init container with restartPolicy Always) or container',
  },
  {
    flag: 'injection-scope',
    value: 'SCOPE',
    default: 'primary',
    help: 'primary (only the rank-0 pod) or all-nodes (every node pod); TrainJobs may override it',
  },
  {
    flag: 'metrics-path',
    value: 'PATH',
    default: DEFAULT_METRICS_PATH,
    help: "HTTP path of the trainer's metrics endpoint; TrainJobs may override it",
  },
  {
    flag: 'sidecar-cpu-request',
    value: 'QUANTITY',
    default: '50m',
    help: 'CPU request of the sidecar, 1m to 2',
  },
  {
    flag: 'sidecar-cpu-limit',
    value: 'QUANTITY',
    default: '100m',
    help: 'CPU limit of the sidecar, 1m to 2',
  },
  {
    flag: 'sidecar-memory-request',
    value: 'QUANTITY',
    default: '128Mi',
    help: 'memory request of the sidecar, a whole number of bytes from 32Mi to 1Gi',
  },
  {
    flag: 'sidecar-memory-limit',
    value: 'QUANTITY',
    // Node 24 itself stays resident at about 42 MiB and the running sidecar at about
    // 72 MiB (measured on x86_64 with `ps -o rss`), so 64Mi would risk the OOM killer.
    default: '128Mi',
    help: 'memory limit of the sidecar, a whole number of bytes from 32Mi to 1Gi; 60 % of it becomes the V8 heap limit',
  },
  {
    flag: 'trainjob-read-timeout-ms',
    value: 'MS',
    default: '1500',
    help: 'time limit in milliseconds of the live read of a TrainJob missing from the cache',
  },
  {
    flag: 'reconcile-interval-seconds',
    value: 'SECONDS',
    default: '30',
    help: 'seconds between checks of the certificate, its Secret or files, and the caBundle',
  },
  {
    flag: 'shutdown-delay-seconds',
    value: 'SECONDS',
    default: '5',
    help: 'seconds to keep serving after SIGTERM while reporting not ready, so endpoints drop the pod first',
  },
  {
    flag: 'log-level',
    value: 'LEVEL',
    default: 'info',
    help: `log level: ${LOG_LEVELS.join(', ')}`,
  },
];

/** Returns the environment variable of a flag, such as TRAINJOB_PROGRESS_SIDECAR_IMAGE. */
export function envName(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replaceAll('-', '_');
}

/** Returns the `--help` text. */
export function helpText(): string {
  const lines = [
    'Usage: trainjob-progress webhook [options]',
    '',
    'Serves the mutating admission webhook that injects the progress sidecar.',
    '',
    'Options (each also read from the environment variable shown):',
  ];
  for (const option of OPTIONS) {
    const defaultText =
      option.default === undefined
        ? ''
        : ` (default: ${option.default === '' ? 'empty' : option.default})`;
    lines.push(
      `  --${option.flag} ${option.value}`,
      `      ${option.help}${defaultText}`,
      `      env: ${envName(option.flag)}`,
    );
  }
  lines.push('  --help', '      print this text and exit');
  return lines.join('\n');
}
