// The processes of the demo: the aggregator and webhook, the example trainer, and the
// injected sidecar run the way a kubelet would run it.

import { readFile } from 'node:fs/promises';
import path from 'node:path';

import {
  KubernetesObjectApi,
  type CoreV1Api,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';

import { SIDECAR_CONTAINER_NAME } from '../shared/annotations.ts';
import type { ControlPlane } from '../test/control-plane/control-plane.ts';
import { mountProjectedTokens, resolveContainerEnv, rewriteMountPaths } from './kubelet.ts';
import { buildWebhookConfiguration } from './objects.ts';
import { say, type DemoOptions } from './options.ts';
import { freePort, startProcess, waitFor, type ManagedProcess } from './processes.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
export const CLI = path.join(REPO_ROOT, 'cli', 'main.ts');
const TRAINER_SCRIPT = path.join(REPO_ROOT, 'examples', 'train_digits.py');
const PYTHON = '/usr/bin/python3';
const SIDECAR_IMAGE = 'ghcr.io/trainjob-progress/trainjob-progress:0.1.0';

export async function startAggregator(
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

export async function startWebhook(
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

export function hasSidecar(pod: V1Pod): boolean {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return containers.some((container) => container.name === SIDECAR_CONTAINER_NAME);
}

export function startTrainer(
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
export async function startSidecar(
  core: CoreV1Api,
  pod: V1Pod,
  workDir: string,
): Promise<ManagedProcess> {
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

export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url);
  return response.ok;
}

export async function httpsOk(url: string, caPem: string): Promise<boolean> {
  const https = await import('node:https');
  return new Promise((resolve) => {
    const request = https.get(url, { ca: caPem, timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('error', () => resolve(false));
  });
}
