// `trainjob-progress demo`: one real training run, end to end, on a local control plane.
//
// It starts kube-apiserver and etcd, then the webhook and the aggregator as separate
// processes. It creates an opted-in TrainJob and its primary pod the way the JobSet and Job
// controllers do, so the API server calls the webhook. Then it plays the kubelet: it runs the
// injected sidecar with the environment that the stored pod declares, next to the example
// PyTorch trainer, and reports container states. When training ends it marks the TrainJob Complete as the
// Trainer controller would, and prints the final annotation as written by the aggregator.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';

import {
  SIDECAR_CONTAINER_NAME,
  TRAINER_CONTAINER_NAME,
  TRAINER_STATUS_ANNOTATION,
  TRAINJOB_GROUP,
  TRAINJOB_PLURAL,
  TRAINJOB_VERSION,
} from '../shared/annotations.ts';
import { startControlPlane, type ControlPlane } from '../test/control-plane/control-plane.ts';
import {
  mountProjectedTokens,
  reportContainerTerminated,
  reportPodRunning,
  resolveContainerEnv,
  rewriteMountPaths,
} from './kubelet.ts';
import { buildPrimaryPod, buildTrainJob, buildWebhookConfiguration } from './objects.ts';
import { freePort, startProcess, waitFor, type ManagedProcess } from './processes.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const CLI = path.join(REPO_ROOT, 'cli', 'main.ts');
const TRAINER_SCRIPT = path.join(REPO_ROOT, 'examples', 'train_digits.py');
const PYTHON = '/usr/bin/python3';
const SYSTEM_NAMESPACE = 'trainjob-progress-system';
const SIDECAR_IMAGE = 'ghcr.io/trainjob-progress/trainjob-progress:0.1.0';
const WEBHOOK_CONFIG_NAME = 'trainjob-progress-demo';
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const HELP = `Usage: trainjob-progress demo [options]

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

function parseOptions(argv: string[]): DemoOptions | undefined {
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

function say(message: string): void {
  console.log(`demo: ${message}`);
}

export async function run(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === undefined) {
    console.log(HELP);
    return 0;
  }
  const workDir = await mkdtemp(path.join(tmpdir(), 'trainjob-progress-demo-'));
  const processes: ManagedProcess[] = [];
  let controlPlane: ControlPlane | undefined;
  let failed = true;
  try {
    say('starting kube-apiserver and etcd (the first run builds them from source)');
    controlPlane = await startControlPlane({ logDir: workDir });
    say(`control plane ${controlPlane.version} at ${controlPlane.serverUrl}`);
    const status = await runDemo(controlPlane, options, workDir, processes);
    console.log(`trainerStatus: ${status}`);
    failed = false;
    return 0;
  } finally {
    for (const managed of processes.reverse()) await managed.stop();
    await controlPlane?.stop();
    if (failed || options.keepLogs) say(`process logs are in ${workDir}`);
    else await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * Runs the pipeline on a running control plane and returns the final annotation value.
 * Started processes are appended to `processes`, and the caller stops them.
 */
export async function runDemo(
  controlPlane: ControlPlane,
  options: DemoOptions,
  workDir: string,
  processes: ManagedProcess[],
): Promise<string> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(controlPlane.kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);

  await core.createNamespace({ body: { metadata: { name: options.systemNamespace } } });
  const aggregatorPort = await freePort();
  processes.push(await startAggregator(controlPlane, aggregatorPort, workDir));
  processes.push(await startWebhook(controlPlane, kubeConfig, aggregatorPort, workDir, options));

  const metricsPort = await freePort();
  await createTrainJob(core, custom, options, metricsPort);
  const pod = await createPrimaryPod(core, options);
  await reportPodRunning(core, pod);

  const terminationLog = path.join(workDir, 'termination-log');
  const trainer = startTrainer(options, metricsPort, terminationLog, workDir);
  processes.push(trainer);
  const sidecar = await startSidecar(core, pod, workDir);
  processes.push(sidecar);
  const tail = startProcess(
    'tail',
    process.execPath,
    [
      CLI,
      'tail',
      options.name,
      '-n',
      options.namespace,
      '--kubeconfig',
      controlPlane.kubeconfigPath,
    ],
    { logFile: path.join(workDir, 'tail.log') },
  );
  if (options.showProgress) tail.child.stdout?.pipe(process.stdout);
  processes.push(tail);

  const trainerExit = await trainer.exited;
  say(`trainer exited with code ${trainerExit}`);
  await finishJob(core, custom, pod, options, trainerExit, terminationLog, sidecar);
  await waitForExit(tail, 30_000);
  return readStatusAnnotation(custom, options);
}

async function startAggregator(
  controlPlane: ControlPlane,
  port: number,
  workDir: string,
): Promise<ManagedProcess> {
  say(`starting the aggregator on 127.0.0.1:${port}`);
  const aggregator = startProcess(
    'aggregator',
    process.execPath,
    [
      CLI,
      'aggregator',
      '--listen',
      `127.0.0.1:${port}`,
      '--kubeconfig',
      controlPlane.kubeconfigPath,
    ],
    { logFile: path.join(workDir, 'aggregator.log') },
  );
  await waitFor(
    'the aggregator to be ready',
    () => httpOk(`http://127.0.0.1:${port}/readyz`),
    30_000,
    aggregator,
  );
  return aggregator;
}

async function startWebhook(
  controlPlane: ControlPlane,
  kubeConfig: KubeConfig,
  aggregatorPort: number,
  workDir: string,
  options: DemoOptions,
): Promise<ManagedProcess> {
  const port = await freePort();
  const certDir = path.join(workDir, 'webhook-certs');
  say(`starting the webhook on 127.0.0.1:${port}`);
  const webhook = startProcess(
    'webhook',
    process.execPath,
    [
      CLI,
      'webhook',
      ...['--listen', `127.0.0.1:${port}`],
      ...['--kubeconfig', controlPlane.kubeconfigPath],
      ...['--cert-dir', certDir],
      ...['--namespace', options.systemNamespace],
      ...['--webhook-config-name', options.webhookConfigName],
      ...['--aggregator-url', `ws://127.0.0.1:${aggregatorPort}/v1/ingest`],
      // The demo runs the sidecar as a local process; the image is what a kubelet would pull.
      ...['--sidecar-image', SIDECAR_IMAGE],
    ],
    { logFile: path.join(workDir, 'webhook.log') },
  );
  const caFile = path.join(certDir, 'ca.crt');
  await waitFor(
    'the webhook CA certificate',
    () => readFile(caFile).then(() => true),
    30_000,
    webhook,
  );
  const caPem = await readFile(caFile, 'utf8');
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const url = `https://127.0.0.1:${port}/mutate`;
  await objects.create(buildWebhookConfiguration(options.webhookConfigName, url, caPem));
  await waitFor(
    'the webhook to be ready',
    () => httpsOk(`https://127.0.0.1:${port}/readyz`, caPem),
    30_000,
    webhook,
  );
  return webhook;
}

async function createTrainJob(
  core: CoreV1Api,
  custom: CustomObjectsApi,
  options: DemoOptions,
  metricsPort: number,
): Promise<void> {
  await core.createNamespace({
    body: {
      metadata: {
        name: options.namespace,
        labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
      },
    },
  });
  await core.createNamespacedServiceAccount({
    namespace: options.namespace,
    body: { metadata: { name: 'trainer' } },
  });
  say(`creating TrainJob ${options.namespace}/${options.name} (opted in, poll interval 5s)`);
  await custom.createNamespacedCustomObject({
    group: TRAINJOB_GROUP,
    version: TRAINJOB_VERSION,
    namespace: options.namespace,
    plural: TRAINJOB_PLURAL,
    body: buildTrainJob(options.namespace, options.name, metricsPort, '5s'),
  });
}

/**
 * Creates the primary pod. A dry run is retried until it shows the sidecar first, because the
 * webhook's cache and the API server's webhook registry each take a moment to catch up.
 */
async function createPrimaryPod(core: CoreV1Api, options: DemoOptions): Promise<V1Pod> {
  const body = buildPrimaryPod(options.name, 'trainer');
  await waitFor(
    'the webhook to inject the sidecar',
    async () =>
      hasSidecar(
        await core.createNamespacedPod({ namespace: options.namespace, body, dryRun: 'All' }),
      ),
    30_000,
  );
  const pod = await core.createNamespacedPod({ namespace: options.namespace, body });
  say(`created pod ${pod.metadata?.name}; the API server stored it with the injected sidecar`);
  return pod;
}

function hasSidecar(pod: V1Pod): boolean {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return containers.some((container) => container.name === SIDECAR_CONTAINER_NAME);
}

function startTrainer(
  options: DemoOptions,
  metricsPort: number,
  terminationLog: string,
  workDir: string,
): ManagedProcess {
  say(`starting the PyTorch trainer; its metrics endpoint is 127.0.0.1:${metricsPort}`);
  const args = [TRAINER_SCRIPT, '--metrics-port', String(metricsPort)];
  args.push('--termination-log', terminationLog, '--load-delay', '3');
  if (options.steps !== undefined) args.push('--max-steps', options.steps);
  if (options.stepDelay !== undefined) args.push('--step-sleep', options.stepDelay);
  return startProcess('trainer', PYTHON, args, { logFile: path.join(workDir, 'trainer.log') });
}

/** Runs the injected sidecar with the environment and token that its stored spec declares. */
async function startSidecar(core: CoreV1Api, pod: V1Pod, workDir: string): Promise<ManagedProcess> {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const sidecar = containers.find((container) => container.name === SIDECAR_CONTAINER_NAME);
  if (sidecar === undefined) throw new Error('the stored pod has no injected sidecar');
  const mounts = await mountProjectedTokens(core, pod, sidecar, path.join(workDir, 'volumes'));
  const env = rewriteMountPaths(resolveContainerEnv(pod, sidecar), mounts);
  say(`starting the sidecar with args ${JSON.stringify(sidecar.args ?? [])}`);
  return startProcess('sidecar', process.execPath, [CLI, ...(sidecar.args ?? ['sidecar'])], {
    env: { PATH: process.env.PATH, ...env },
    logFile: path.join(workDir, 'sidecar.log'),
  });
}

/** Plays the kubelet and the Trainer controller once the trainer process has exited. */
async function finishJob(
  core: CoreV1Api,
  custom: CustomObjectsApi,
  pod: V1Pod,
  options: DemoOptions,
  exitCode: number,
  terminationLog: string,
  sidecar: ManagedProcess,
): Promise<void> {
  const message = await readFile(terminationLog, 'utf8').catch(() => '');
  const current = await core.readNamespacedPod({
    name: pod.metadata!.name!,
    namespace: options.namespace,
  });
  await reportContainerTerminated(
    core,
    current,
    TRAINER_CONTAINER_NAME,
    exitCode,
    message.slice(0, 4096),
  );
  say('the trainer container terminated; stopping the sidecar as the kubelet would');
  const sidecarExit = await sidecar.stop('SIGTERM', 30_000);
  say(`sidecar exited with code ${sidecarExit}`);
  const type = exitCode === 0 ? 'Complete' : 'Failed';
  say(`setting the TrainJob condition ${type}`);
  await custom.patchNamespacedCustomObjectStatus(
    {
      group: TRAINJOB_GROUP,
      version: TRAINJOB_VERSION,
      namespace: options.namespace,
      plural: TRAINJOB_PLURAL,
      name: options.name,
      body: {
        status: {
          conditions: [
            {
              type,
              status: 'True',
              reason: exitCode === 0 ? 'JobSetCompleted' : 'JobSetFailed',
              message: `jobset ${type === 'Complete' ? 'completed' : 'failed'}`,
              lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
            },
          ],
        },
      },
    },
    MERGE_PATCH,
  );
}

async function waitForExit(managed: ManagedProcess, timeoutMs: number): Promise<void> {
  const timer = setTimeout(() => void managed.stop(), timeoutMs);
  const code = await managed.exited;
  clearTimeout(timer);
  if (code !== 0) say(`${managed.name} exited with code ${code}`);
}

async function readStatusAnnotation(
  custom: CustomObjectsApi,
  options: DemoOptions,
): Promise<string> {
  let value: string | undefined;
  await waitFor(
    'the final trainerStatus annotation',
    async () => {
      const trainJob = (await custom.getNamespacedCustomObject({
        group: TRAINJOB_GROUP,
        version: TRAINJOB_VERSION,
        namespace: options.namespace,
        plural: TRAINJOB_PLURAL,
        name: options.name,
      })) as { metadata?: { annotations?: Record<string, string> } };
      value = trainJob.metadata?.annotations?.[TRAINER_STATUS_ANNOTATION];
      return (
        value !== undefined && /"estimatedRemainingTimeSummary":"(complete|failed)/.test(value)
      );
    },
    10_000,
  );
  return value!;
}

async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url);
  return response.ok;
}

async function httpsOk(url: string, caPem: string): Promise<boolean> {
  const https = await import('node:https');
  return new Promise((resolve) => {
    const request = https.get(url, { ca: caPem, timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('error', () => resolve(false));
  });
}
