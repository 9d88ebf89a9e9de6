// Configuration of the webhook: the options of config-options.ts, parsed and validated once
// at start-up into a frozen object.

import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { envName, LOG_LEVELS, OPTIONS } from './config-options.ts';
import {
  CPU_CORES_RANGE,
  INJECTION_SCOPES,
  validMemoryQuantity,
  validQuantity,
  type InjectionScope,
  type SidecarMode,
  type SidecarResources,
} from './pod-settings.ts';
import { parseQuantity } from './quantity.ts';
import type { SidecarImageOptions } from './sidecar-container.ts';

export { envName, helpText, OPTIONS } from './config-options.ts';

export type SidecarModeSetting = SidecarMode | 'auto';
export type CertMode = 'self-signed' | 'files';

export interface WebhookConfig {
  listen: { host: string; port: number };
  /** Kubeconfig file; undefined means $KUBECONFIG, ~/.kube/config or the in-cluster account. */
  kubeconfigPath: string | undefined;
  namespace: string;
  serviceName: string;
  /** MutatingWebhookConfiguration whose caBundle is kept current; empty turns that off. */
  webhookConfigName: string;
  secretName: string;
  certMode: CertMode;
  certDir: string | undefined;
  certValidityMs: number;
  caValidityMs: number;
  clusterDomain: string;
  aggregatorUrl: string;
  sidecarImage: string;
  sidecarImagePullPolicy: SidecarImageOptions['imagePullPolicy'];
  tokenAudience: string;
  sidecarMode: SidecarModeSetting;
  injectionScope: InjectionScope;
  metricsPath: string;
  sidecarResources: SidecarResources;
  trainJobReadTimeoutMs: number;
  reconcileIntervalMs: number;
  shutdownDelayMs: number;
  logLevel: string;
}

/** Error of an invalid configuration; the message lists every problem. */
export class ConfigError extends Error {
  readonly code = 'ERR_INVALID_CONFIG';
}

const DAY_MS = 24 * 60 * 60 * 1000;
const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

/** Parses argv and the environment. Returns undefined when --help was given. Throws ConfigError. */
export function parseWebhookConfig(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): WebhookConfig | undefined {
  const options = Object.fromEntries(
    OPTIONS.map((option) => [option.flag, { type: 'string' as const }]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; run with --help for the options`);
  }
  if (values.help === true) return undefined;
  const read = (flag: string): string | undefined => {
    const value = values[flag];
    if (typeof value === 'string') return value;
    return env[envName(flag)] ?? OPTIONS.find((option) => option.flag === flag)?.default;
  };
  const problems: string[] = [];
  const config = configFromStrings(read, problems);
  return validateWebhookConfig(config, problems);
}

// Converts the option strings to typed fields; validateWebhookConfig checks their values.
function configFromStrings(
  read: (flag: string) => string | undefined,
  problems: string[] = [],
): WebhookConfig {
  const number = (flag: string): number => {
    const text = read(flag) ?? '';
    const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
    if (Number.isNaN(value)) problems.push(`--${flag}: invalid number ${JSON.stringify(text)}`);
    return value;
  };
  const config = {
    listen: parseListen(read('listen') ?? '', problems),
    kubeconfigPath: emptyToUndefined(read('kubeconfig')),
    namespace: emptyToUndefined(read('namespace')) ?? defaultNamespace(),
    serviceName: read('service-name') ?? '',
    webhookConfigName: read('webhook-config-name') ?? '',
    secretName: read('secret-name') ?? '',
    certMode: read('cert-mode') as CertMode,
    certDir: emptyToUndefined(read('cert-dir')),
    certValidityMs: number('cert-validity-days') * DAY_MS,
    caValidityMs: number('ca-validity-days') * DAY_MS,
    clusterDomain: read('cluster-domain') ?? '',
    aggregatorUrl: read('aggregator-url') ?? '',
    sidecarImage: read('sidecar-image') ?? '',
    sidecarImagePullPolicy: read(
      'sidecar-image-pull-policy',
    ) as WebhookConfig['sidecarImagePullPolicy'],
    tokenAudience: read('token-audience') ?? '',
    sidecarMode: read('sidecar-mode') as SidecarModeSetting,
    injectionScope: read('injection-scope') as InjectionScope,
    metricsPath: read('metrics-path') ?? '',
    sidecarResources: {
      cpuRequest: read('sidecar-cpu-request') ?? '',
      cpuLimit: read('sidecar-cpu-limit') ?? '',
      memoryRequest: read('sidecar-memory-request') ?? '',
      memoryLimit: read('sidecar-memory-limit') ?? '',
    },
    trainJobReadTimeoutMs: number('trainjob-read-timeout-ms'),
    reconcileIntervalMs: number('reconcile-interval-seconds') * 1000,
    shutdownDelayMs: number('shutdown-delay-seconds') * 1000,
    logLevel: read('log-level') ?? '',
  };
  return config;
}

/**
 * Returns the default of every setting, unvalidated; `aggregatorUrl` and `sidecarImage`,
 * which have none, are empty.
 */
export function defaultWebhookConfig(): WebhookConfig {
  return configFromStrings((flag) => OPTIONS.find((option) => option.flag === flag)?.default);
}

/**
 * Checks every field and returns a frozen copy. Throws ConfigError listing all problems,
 * `earlier` ones (from reading the options) first.
 */
export function validateWebhookConfig(
  config: WebhookConfig,
  earlier: string[] = [],
): WebhookConfig {
  const problems = [
    ...earlier,
    ...checkNames(config),
    ...checkChoices(config),
    ...checkUrl(config.aggregatorUrl),
    ...checkResources(config.sidecarResources),
    ...checkDurations(config),
  ];
  if (config.certMode === 'files' && config.certDir === undefined)
    problems.push('--cert-dir is required with --cert-mode files');
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return Object.freeze({
    ...config,
    listen: Object.freeze({ ...config.listen }),
    sidecarResources: Object.freeze({ ...config.sidecarResources }),
  });
}

function checkNames(config: WebhookConfig): string[] {
  const problems: string[] = [];
  const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
  if (!dnsLabel.test(config.namespace))
    problems.push(`--namespace: invalid namespace ${JSON.stringify(config.namespace)}`);
  if (!dnsLabel.test(config.serviceName))
    problems.push(`--service-name: invalid Service name ${JSON.stringify(config.serviceName)}`);
  if (!dnsSubdomain.test(config.secretName))
    problems.push(`--secret-name: invalid Secret name ${JSON.stringify(config.secretName)}`);
  if (config.webhookConfigName !== '' && !dnsSubdomain.test(config.webhookConfigName)) {
    problems.push(
      `--webhook-config-name: invalid name ${JSON.stringify(config.webhookConfigName)}`,
    );
  }
  if (!dnsSubdomain.test(config.clusterDomain))
    problems.push(`--cluster-domain: invalid domain ${JSON.stringify(config.clusterDomain)}`);
  if (config.sidecarImage.trim() === '' || /\s/.test(config.sidecarImage))
    problems.push(
      `--sidecar-image: missing or invalid image ${JSON.stringify(config.sidecarImage)}`,
    );
  if (config.tokenAudience.trim() === '') problems.push('--token-audience: must not be empty');
  if (!/^\/[\x21-\x7e]*$/.test(config.metricsPath))
    problems.push(
      `--metrics-path: invalid path ${JSON.stringify(config.metricsPath)}, expected e.g. /metrics`,
    );
  return problems;
}

function checkChoices(config: WebhookConfig): string[] {
  const problems: string[] = [];
  const check = (flag: string, value: string, allowed: readonly string[]): void => {
    if (!allowed.includes(value))
      problems.push(
        `--${flag}: invalid value ${JSON.stringify(value)}, expected one of ${allowed.join(', ')}`,
      );
  };
  check('cert-mode', config.certMode, ['self-signed', 'files']);
  check('sidecar-image-pull-policy', config.sidecarImagePullPolicy, PULL_POLICIES);
  check('sidecar-mode', config.sidecarMode, ['auto', 'native', 'container']);
  check('injection-scope', config.injectionScope, INJECTION_SCOPES);
  check('log-level', config.logLevel, LOG_LEVELS);
  return problems;
}

function checkUrl(text: string): string[] {
  if (text === '') return ['--aggregator-url is required'];
  try {
    const url = new URL(text);
    if (url.protocol === 'ws:' || url.protocol === 'wss:') return [];
  } catch {
    // reported below
  }
  return [
    `--aggregator-url: invalid URL ${JSON.stringify(text)}, expected ws://HOST:PORT/v1/ingest or wss://…`,
  ];
}

function checkResources(resources: SidecarResources): string[] {
  const problems: string[] = [];
  const cpuEntries = [
    ['sidecar-cpu-request', resources.cpuRequest],
    ['sidecar-cpu-limit', resources.cpuLimit],
  ] as const;
  for (const [flag, value] of cpuEntries) {
    if (validQuantity(value, CPU_CORES_RANGE) === undefined)
      problems.push(`--${flag}: invalid quantity ${JSON.stringify(value)}, expected 1m to 2`);
  }
  const memoryEntries = [
    ['sidecar-memory-request', resources.memoryRequest],
    ['sidecar-memory-limit', resources.memoryLimit],
  ] as const;
  for (const [flag, value] of memoryEntries) {
    if (validMemoryQuantity(value) === undefined) {
      problems.push(
        `--${flag}: invalid quantity ${JSON.stringify(value)}, expected a whole number of bytes from 32Mi to 1Gi`,
      );
    }
  }
  if (problems.length > 0) return problems;
  if (parseQuantity(resources.cpuRequest)! > parseQuantity(resources.cpuLimit)!)
    problems.push('--sidecar-cpu-request must not exceed --sidecar-cpu-limit');
  if (parseQuantity(resources.memoryRequest)! > parseQuantity(resources.memoryLimit)!)
    problems.push('--sidecar-memory-request must not exceed --sidecar-memory-limit');
  return problems;
}

function checkDurations(config: WebhookConfig): string[] {
  const problems: string[] = [];
  const positive = (flag: string, value: number): void => {
    if (!(value > 0) || !Number.isFinite(value))
      problems.push(`--${flag}: must be a positive number`);
  };
  positive('cert-validity-days', config.certValidityMs);
  positive('ca-validity-days', config.caValidityMs);
  positive('trainjob-read-timeout-ms', config.trainJobReadTimeoutMs);
  positive('reconcile-interval-seconds', config.reconcileIntervalMs);
  if (!(config.shutdownDelayMs >= 0)) problems.push('--shutdown-delay-seconds: must be 0 or more');
  if (config.caValidityMs < config.certValidityMs)
    problems.push('--ca-validity-days must not be shorter than --cert-validity-days');
  return problems;
}

function parseListen(text: string, problems: string[]): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    problems.push(
      `--listen: invalid address ${JSON.stringify(text)}, expected HOST:PORT such as 0.0.0.0:9443 or [::]:9443`,
    );
    return { host: '', port: 0 };
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function defaultNamespace(): string {
  if (!existsSync(IN_CLUSTER_NAMESPACE_FILE)) return 'default';
  return readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim() || 'default';
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
