// The webhook against a real kube-apiserver: registered by URL on 127.0.0.1 with its CA, so
// the API server itself calls it, applies the patch and validates and stores the result.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  INJECTED_ANNOTATION,
  PROGRESSION_TRACKING_ANNOTATION,
} from '../../../shared/annotations.ts';
import { createLogger } from '../../../shared/logger.ts';
import { SIDECAR_ENV } from '../../../shared/sidecar-env.ts';
import { JSON_PATCH, KubeClient } from '../../../webhook/kube-client.ts';
import {
  buildMutatingWebhookConfiguration,
  applyMutatingWebhookConfiguration,
} from '../../../webhook/registration.ts';
import { startWebhook, type RunningWebhook } from '../../../webhook/start-webhook.ts';
import { findFreePort } from '../../control-plane/processes.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import {
  createNamespace,
  createPod,
  createTrainJob,
  deleteNamespace,
  jobSetPod,
  listPods,
  sidecarOf,
  TEST_NAMESPACE_LABEL,
  uniqueName,
  waitFor,
} from './kube-objects.ts';

const CONFIG_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');

const RESTRICTED_TRAINER = {
  securityContext: {
    runAsNonRoot: true,
    runAsUser: 1000,
    seccompProfile: { type: 'RuntimeDefault' },
  },
  restartPolicy: 'OnFailure',
  containers: [
    {
      name: 'node',
      image: 'docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } },
    },
  ],
};

/** Registers the webhook for namespaces labelled by the tests only, so other suites never reach it. */
async function register(
  client: KubeClient,
  name: string,
  url: string,
  caBundlePem: string,
  ownNamespace: string,
): Promise<void> {
  const configuration = buildMutatingWebhookConfiguration({
    name,
    target: { url },
    caBundlePem,
    ownNamespace,
  });
  const [webhook] = configuration.webhooks as { namespaceSelector: Record<string, unknown> }[];
  webhook!.namespaceSelector.matchLabels = { [TEST_NAMESPACE_LABEL]: 'true' };
  await applyMutatingWebhookConfiguration(client, configuration);
}

async function readCaBundle(client: KubeClient, name: string): Promise<string | undefined> {
  const configuration = (await client.request('GET', `${CONFIG_PATH}/${name}`)) as {
    webhooks: { clientConfig: { caBundle?: string } }[];
  };
  return configuration.webhooks[0]?.clientConfig.caBundle;
}

describe('webhook against kube-apiserver', function () {
  this.timeout(120_000);
  let client: KubeClient;
  let webhook: RunningWebhook;
  let systemNamespace: string;
  let namespace: string;
  let configName: string;
  const namespaces: string[] = [];

  async function newNamespace(
    prefix: string,
    labels: Record<string, string> = {},
  ): Promise<string> {
    const name = uniqueName(prefix);
    await createNamespace(client, name, labels);
    namespaces.push(name);
    return name;
  }

  before(async () => {
    const controlPlane = getControlPlane();
    client = new KubeClient(kubeConfigFor(controlPlane));
    systemNamespace = await newNamespace('tp-webhook-system');
    namespace = await newNamespace('tp-webhook');
    configName = uniqueName('trainjob-progress-test');
    webhook = await startWebhook({
      kubeConfig: kubeConfigFor(controlPlane),
      listen: { host: '127.0.0.1', port: 0 },
      namespace: systemNamespace,
      webhookConfigName: configName,
      secretName: 'trainjob-progress-webhook-tls',
      aggregatorUrl: 'ws://127.0.0.1:9/v1/ingest',
      sidecarImage: 'registry.example/trainjob-progress:test',
      reconcileIntervalMs: 1000,
      shutdownDelayMs: 0,
      logger: createLogger('webhook-test', process.env.WEBHOOK_TEST_LOG_LEVEL ?? 'silent'),
    });
    await register(client, configName, webhook.url, webhook.caCertPem, systemNamespace);
    await webhook.ready;

    await createTrainJob(client, namespace, 'probe', { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    await waitFor('the API server to call the webhook', 30_000, async () => {
      const pod = await createPod(client, namespace, jobSetPod('probe'), true);
      return sidecarOf(pod) !== undefined;
    });
  });

  after(async () => {
    await webhook?.stop();
    await client?.request('DELETE', `${CONFIG_PATH}/${configName}`).catch(() => undefined);
    for (const name of namespaces) await deleteNamespace(client, name);
  });

  it('reads the API server version as native-sidecar capable', () => {
    expect(webhook.sidecarMode).to.equal('native');
  });

  for (const optIn of ['true', 'enabled']) {
    it(`stores an injected primary pod for opt-in ${optIn}`, async () => {
      const job = uniqueName(`opt-${optIn}`);
      await createTrainJob(client, namespace, job, { [PROGRESSION_TRACKING_ANNOTATION]: optIn });
      const pod = await createPod(client, namespace, jobSetPod(job));

      const sidecar = sidecarOf(pod);
      expect(sidecar, 'sidecar').to.not.equal(undefined);
      expect(sidecar!.restartPolicy).to.equal('Always');
      expect(pod.spec.initContainers?.map((c) => c.name)).to.deep.equal(['trainjob-progress']);
      expect(pod.metadata.annotations?.[INJECTED_ANNOTATION]).to.equal('native');
      expect(pod.spec.volumes?.map((v) => v.name)).to.include('trainjob-progress-token');
      const env = Object.fromEntries((sidecar!.env ?? []).map((e) => [e.name, e.value]));
      expect(env[SIDECAR_ENV.aggregatorUrl]).to.equal('ws://127.0.0.1:9/v1/ingest');
      expect(env[SIDECAR_ENV.metricsPort]).to.equal('28080');
      expect(sidecar!.resources).to.deep.equal({
        requests: { cpu: '50m', memory: '128Mi' },
        limits: { cpu: '100m', memory: '128Mi' },
      });
    });
  }

  it('leaves the pods of an opted-out job untouched', async () => {
    await createTrainJob(client, namespace, 'opted-out', {
      [PROGRESSION_TRACKING_ANNOTATION]: 'false',
    });
    const pod = await createPod(client, namespace, jobSetPod('opted-out'));
    expect(sidecarOf(pod)).to.equal(undefined);
    expect(pod.metadata.annotations?.[INJECTED_ANNOTATION]).to.equal(undefined);
  });

  it('leaves a non-primary node pod untouched', async () => {
    const job = uniqueName('ranks');
    await createTrainJob(client, namespace, job, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    const pod = await createPod(client, namespace, jobSetPod(job, { jobIndex: '1' }));
    expect(sidecarOf(pod)).to.equal(undefined);
  });

  it('leaves a dataset-initializer pod untouched', async () => {
    const job = uniqueName('init');
    await createTrainJob(client, namespace, job, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    const pod = await createPod(
      client,
      namespace,
      jobSetPod(job, { replicatedJob: 'dataset-initializer' }),
    );
    expect(sidecarOf(pod)).to.equal(undefined);
  });

  it('leaves a pod without JobSet labels untouched', async () => {
    const pod = await createPod(client, namespace, jobSetPod('probe', { labels: null }));
    expect(sidecarOf(pod)).to.equal(undefined);
    expect(pod.metadata.labels).to.equal(undefined);
  });

  it('stores nothing for a dry-run create', async () => {
    const job = uniqueName('dry');
    await createTrainJob(client, namespace, job, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    const dryNamespace = await newNamespace('tp-dry');
    await createTrainJob(client, dryNamespace, job, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    const pod = await createPod(client, dryNamespace, jobSetPod(job), true);
    expect(sidecarOf(pod)).to.not.equal(undefined);
    expect(await listPods(client, dryNamespace)).to.deep.equal([]);
  });

  it('admits a compliant pod in a restricted namespace', async () => {
    const restricted = await newNamespace('tp-restricted', {
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    await createTrainJob(client, restricted, 'secure', {
      [PROGRESSION_TRACKING_ANNOTATION]: 'true',
    });
    const pod = await createPod(
      client,
      restricted,
      jobSetPod('secure', { spec: RESTRICTED_TRAINER }),
    );
    expect(sidecarOf(pod)).to.not.equal(undefined);
  });

  it('admits the injected pod under LimitRange and ResourceQuota', async () => {
    const quota = await newNamespace('tp-quota');
    await createQuotaAndLimits(client, quota);
    await createTrainJob(client, quota, 'bounded', { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    const pod = await createPod(client, quota, jobSetPod('bounded', { spec: RESTRICTED_TRAINER }));
    expect(sidecarOf(pod)?.resources?.limits).to.deep.equal({ cpu: '100m', memory: '128Mi' });
  });

  it('has a quota that rejects containers without limits', async () => {
    const quota = await newNamespace('tp-quota');
    await createQuotaAndLimits(client, quota);
    const unbounded = {
      containers: [
        {
          name: 'node',
          image: 'busybox:1.36',
          resources: { requests: { cpu: '1', memory: '1Gi' } },
        },
      ],
    };
    const error = await createPod(client, quota, jobSetPod('none', { spec: unbounded })).catch(
      (e: unknown) => e,
    );
    expect(error).to.have.property('status', 403);
  });

  it('keeps existing init containers and another native sidecar', async () => {
    const job = uniqueName('mesh');
    await createTrainJob(client, namespace, job, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    // Every field that the API server would default is set, so the stored containers must
    // equal the sent ones exactly.
    const stored = {
      imagePullPolicy: 'IfNotPresent',
      terminationMessagePath: '/dev/termination-log',
      terminationMessagePolicy: 'File',
    };
    const proxy = {
      name: 'istio-proxy',
      image: 'docker.io/istio/proxyv2:1.24.0',
      restartPolicy: 'Always',
      args: ['proxy', 'sidecar'],
      resources: { requests: { cpu: '10m' } },
      startupProbe: {
        httpGet: { path: '/healthz/ready', port: 15021, scheme: 'HTTP' },
        initialDelaySeconds: 1,
        timeoutSeconds: 3,
        periodSeconds: 1,
        successThreshold: 1,
        failureThreshold: 600,
      },
      readinessProbe: {
        httpGet: { path: '/healthz/ready', port: 15021, scheme: 'HTTP' },
        timeoutSeconds: 1,
        periodSeconds: 15,
        successThreshold: 1,
        failureThreshold: 4,
      },
      livenessProbe: {
        tcpSocket: { port: 15090 },
        timeoutSeconds: 1,
        periodSeconds: 10,
        successThreshold: 1,
        failureThreshold: 3,
      },
      lifecycle: {
        postStart: { exec: { command: ['pilot-agent', 'wait'] } },
        preStop: { exec: { command: ['/bin/sh', '-c', 'sleep 5'] } },
      },
      ...stored,
    };
    const wait = {
      name: 'wait-for-model',
      image: 'busybox:1.36',
      command: ['sh', '-c', 'true'],
      resources: {},
      ...stored,
    };
    const spec = {
      restartPolicy: 'OnFailure',
      initContainers: [wait, proxy],
      containers: [{ name: 'node', image: 'docker.io/pytorch/pytorch:2.5.1' }],
    };
    const pod = await createPod(client, namespace, jobSetPod(job, { spec }));
    const init = pod.spec.initContainers ?? [];
    expect(init.map((c) => c.name)).to.deep.equal([
      'wait-for-model',
      'istio-proxy',
      'trainjob-progress',
    ]);
    expect(init[0]).to.deep.equal(wait);
    expect(init[1]).to.deep.equal(proxy);
  });

  it('repairs a blanked caBundle', async () => {
    await client.request('PATCH', `${CONFIG_PATH}/${configName}`, {
      body: [{ op: 'remove', path: '/webhooks/0/clientConfig/caBundle' }],
      contentType: JSON_PATCH,
    });
    const expected = Buffer.from(webhook.caCertPem).toString('base64');
    await waitFor(
      'the caBundle to be written again',
      15_000,
      async () => (await readCaBundle(client, configName)) === expected,
    );
    expect(webhook.metrics.caBundleRepairs.value()).to.be.at.least(1);
    await waitFor(
      'injection to work again',
      30_000,
      async () =>
        sidecarOf(await createPod(client, namespace, jobSetPod('probe'), true)) !== undefined,
    );
  });

  it('still creates pods with the webhook stopped', async () => {
    await webhook.stop();
    const job = uniqueName('down');
    await createTrainJob(client, namespace, job, { [PROGRESSION_TRACKING_ANNOTATION]: 'true' });
    const pod = await createPod(client, namespace, jobSetPod(job));
    expect(pod.metadata.name).to.match(new RegExp(`^${job}-node-0-0-`));
    expect(sidecarOf(pod)).to.equal(undefined);
  });
});

describe('webhook self-registration', function () {
  this.timeout(60_000);

  it('registers itself and rotates its certificate', async () => {
    const controlPlane = getControlPlane();
    const client = new KubeClient(kubeConfigFor(controlPlane));
    const systemNamespace = uniqueName('tp-register');
    await createNamespace(client, systemNamespace);
    const configName = uniqueName('trainjob-progress-register');
    const webhook = await startWebhook({
      kubeConfig: kubeConfigFor(controlPlane),
      listen: { host: '127.0.0.1', port: 0 },
      namespace: systemNamespace,
      webhookConfigName: configName,
      aggregatorUrl: 'ws://127.0.0.1:9/v1/ingest',
      sidecarImage: 'registry.example/trainjob-progress:test',
      reconcileIntervalMs: 1000,
      // A third of 6 s is left after 4 s, so the serving certificate is renewed during the test.
      certValidityMs: 6000,
      logger: createLogger('webhook-test', 'silent'),
      register: true,
    });

    try {
      await webhook.ready;
      const configuration = (await client.request('GET', `${CONFIG_PATH}/${configName}`)) as {
        webhooks: { clientConfig: { url?: string; caBundle?: string }; failurePolicy: string }[];
      };
      const [registered] = configuration.webhooks;
      expect(registered!.clientConfig.url).to.equal(webhook.url);
      expect(registered!.clientConfig.caBundle).to.equal(
        Buffer.from(webhook.caCertPem).toString('base64'),
      );
      expect(registered!.failurePolicy).to.equal('Ignore');
      expect(webhook.isReady()).to.equal(true);

      const namespace = uniqueName('tp-rotate');
      await createNamespace(client, namespace);
      await createTrainJob(client, namespace, 'rotating', {
        [PROGRESSION_TRACKING_ANNOTATION]: 'true',
      });
      await waitFor('a certificate rotation', 15_000, () =>
        Promise.resolve(webhook.metrics.certificateRotations.value() >= 1),
      );
      await waitFor(
        'injection with the new certificate',
        15_000,
        async () =>
          sidecarOf(await createPod(client, namespace, jobSetPod('rotating'), true)) !== undefined,
      );
      await deleteNamespace(client, namespace);
    } finally {
      await webhook.stop();
      await client.request('DELETE', `${CONFIG_PATH}/${configName}`).catch(() => undefined);
      await deleteNamespace(client, systemNamespace);
    }
  });
});

describe('webhook command', function () {
  this.timeout(60_000);

  it('serves until SIGTERM and writes the CA file', async () => {
    const controlPlane = getControlPlane();
    const client = new KubeClient(kubeConfigFor(controlPlane));
    const certDir = mkdtempSync(path.join(tmpdir(), 'trainjob-progress-webhook-'));
    const systemNamespace = uniqueName('tp-cli');
    await createNamespace(client, systemNamespace);
    const port = await findFreePort();

    const child = spawn(
      process.execPath,
      [
        path.join(REPO_ROOT, 'cli/main.ts'),
        'webhook',
        `--listen=127.0.0.1:${port}`,
        `--cert-dir=${certDir}`,
        `--kubeconfig=${controlPlane.kubeconfigPath}`,
        `--namespace=${systemNamespace}`,
        '--webhook-config-name=',
        '--aggregator-url=ws://127.0.0.1:9/v1/ingest',
        '--sidecar-image=registry.example/trainjob-progress:test',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));

    try {
      await waitFor('/readyz to answer 200', 30_000, async () => {
        const ca = readFileSync(path.join(certDir, 'ca.crt'), 'utf8');
        const response = await fetchWithCa(`https://127.0.0.1:${port}/readyz`, ca);
        return response === 200;
      });
      child.kill('SIGTERM');
      expect(await exited, output).to.equal(0);
    } finally {
      child.kill('SIGKILL');
      rmSync(certDir, { recursive: true, force: true });
      await deleteNamespace(client, systemNamespace);
    }
  });
});

/**
 * Creates a LimitRange and a ResourceQuota on CPU and memory requests and limits, and writes
 * the quota's status as the quota controller would: without status.hard the API server's
 * quota admission enforces nothing, and this control plane runs no controller-manager.
 */
async function createQuotaAndLimits(client: KubeClient, namespace: string): Promise<void> {
  const base = `/api/v1/namespaces/${namespace}`;
  // No max and no default, because the API server copies a max into a missing default limit,
  // and the quota should see only the limits that the containers set themselves.
  const limits = [
    { type: 'Container', min: { cpu: '10m', memory: '16Mi' }, maxLimitRequestRatio: { cpu: '4' } },
  ];
  await client.request('POST', `${base}/limitranges`, {
    body: { apiVersion: 'v1', kind: 'LimitRange', metadata: { name: 'bounds' }, spec: { limits } },
  });
  const hard = {
    'requests.cpu': '8',
    'requests.memory': '16Gi',
    'limits.cpu': '8',
    'limits.memory': '16Gi',
  };
  const quota = (await client.request('POST', `${base}/resourcequotas`, {
    body: {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'compute' },
      spec: { hard },
    },
  })) as Record<string, unknown>;
  const used = {
    'requests.cpu': '0',
    'requests.memory': '0',
    'limits.cpu': '0',
    'limits.memory': '0',
  };
  await client.request('PUT', `${base}/resourcequotas/compute/status`, {
    body: { ...quota, status: { hard, used } },
  });
}

async function fetchWithCa(url: string, ca: string): Promise<number> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      })
      .on('error', reject);
  });
}
