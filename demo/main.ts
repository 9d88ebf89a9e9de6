// `trainjob-progress demo`: one real training run, end to end, on a local control plane.
//
// It starts kube-apiserver and etcd, then the webhook and the aggregator as separate
// processes. It creates an opted-in TrainJob and its primary pod the way the JobSet and Job
// controllers do, so the API server calls the webhook. Then it plays the kubelet: it runs the
// injected sidecar with the environment that the stored pod declares, next to the example
// PyTorch trainer, and reports container states. When training ends it marks the TrainJob
// Complete as the Trainer controller would, and prints the final annotation as written by
// the aggregator.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';

import {
  TRAINER_CONTAINER_NAME,
  TRAINER_STATUS_ANNOTATION,
  TRAINJOB_GROUP,
  TRAINJOB_PLURAL,
  TRAINJOB_VERSION,
} from '../shared/annotations.ts';
import { startControlPlane, type ControlPlane } from '../test/control-plane/control-plane.ts';
import {
  CLI,
  hasSidecar,
  startAggregator,
  startSidecar,
  startTrainer,
  startWebhook,
} from './components.ts';
import { reportContainerTerminated, reportPodRunning } from './kubelet.ts';
import { buildPrimaryPod, buildTrainJob } from './objects.ts';
import { HELP, parseOptions, say, type DemoOptions } from './options.ts';
import { freePort, startProcess, waitFor, type ManagedProcess } from './processes.ts';

export type { DemoOptions } from './options.ts';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

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
