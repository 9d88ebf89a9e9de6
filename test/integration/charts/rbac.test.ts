// Runs the webhook and the aggregator in this process with tokens of the ServiceAccounts
// that the installed chart creates, so every API request they make is authorized by the
// chart's Roles and ClusterRoles alone. A verb missing from those rules fails a step here.
// NOTE: the Secret `update` verb (certificate renewal) is not exercised, because a fresh
// certificate is not due for renewal during the test.
import { randomBytes } from 'node:crypto';
import {
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1MutatingWebhookConfiguration,
  type V1Pod,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { pino } from 'pino';

import { startAggregator, type RunningAggregator } from '../../../aggregator/aggregator.ts';
import { SIDECAR_CONTAINER_NAME } from '../../../shared/annotations.ts';
import { startWebhook, type RunningWebhook } from '../../../webhook/index.ts';
import { findFreePort } from '../../control-plane/processes.ts';
import { runHelmOrThrow } from '../../helm.ts';
import { CHART_DIR, FULLNAME, RELEASE_NAME } from '../../unit/charts/chart-render.ts';
import {
  Cluster,
  SIDECAR_AUDIENCE,
  SidecarClient,
  TRAINJOB,
  uniqueName,
  waitFor,
} from '../aggregator/kube-fixtures.ts';
import { getControlPlane, kubeConfigFor, type ControlPlane } from '../cluster.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;
const TEST_NAMESPACE_LABEL = 'trainjob-progress.test/rbac';
const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Returns a client config that authenticates with `token` only. */
function tokenKubeConfig(controlPlane: ControlPlane, user: string, token: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      {
        name: 'local',
        server: controlPlane.serverUrl,
        caData: Buffer.from(controlPlane.caCertPem).toString('base64'),
      },
    ],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: 'local', user }],
    currentContext: user,
  });
  return kubeConfig;
}

describe('chart RBAC for the running components', function () {
  this.timeout(HELM_TIMEOUT_MS);
  let controlPlane: ControlPlane;
  let cluster: Cluster;
  let releaseNamespace: string;
  let jobNamespace: string;
  let configurationName: string;
  let installed = false;
  let webhook: RunningWebhook | undefined;
  let aggregator: RunningAggregator | undefined;
  let sidecar: SidecarClient | undefined;
  let webhookConfig: KubeConfig;
  let aggregatorConfig: KubeConfig;
  let trainJob: string;
  let pod: V1Pod;

  function helm(args: string[]): Promise<string> {
    return runHelmOrThrow([
      ...args,
      '--kubeconfig',
      controlPlane.kubeconfigPath,
      '--namespace',
      releaseNamespace,
    ]);
  }

  async function serviceAccountToken(name: string): Promise<string> {
    const request = await cluster.core.createNamespacedServiceAccountToken({
      namespace: releaseNamespace,
      name,
      body: { spec: { expirationSeconds: 3600 } },
    });
    const token = request.status?.token;
    if (token === undefined) throw new Error(`TokenRequest for ${name} returned no token`);
    return token;
  }

  before(async function () {
    controlPlane = getControlPlane();
    cluster = new Cluster(kubeConfigFor(controlPlane));
    releaseNamespace = `chart-rbac-${randomBytes(4).toString('hex')}`;
    await cluster.core.createNamespace({ body: { metadata: { name: releaseNamespace } } });
    jobNamespace = uniqueName('chart-rbac-jobs');
    await cluster.core.createNamespace({
      body: { metadata: { name: jobNamespace, labels: { [TEST_NAMESPACE_LABEL]: 'true' } } },
    });
    configurationName = `${FULLNAME}-${releaseNamespace}`;

    const port = await findFreePort();
    await helm([
      'install',
      RELEASE_NAME,
      CHART_DIR,
      '--set',
      `webhook.clientConfig.url=https://127.0.0.1:${port}/mutate`,
      '--set',
      'aggregator.mirrorStatus=true',
    ]);
    installed = true;
    // The registration matches JobSet pods in every namespace. The test limits it to its
    // own namespace, so suites sharing the control plane never reach this webhook.
    await cluster.custom.patchClusterCustomObject(
      {
        group: 'admissionregistration.k8s.io',
        version: 'v1',
        plural: 'mutatingwebhookconfigurations',
        name: configurationName,
        body: [
          {
            op: 'add',
            path: '/webhooks/0/namespaceSelector/matchLabels',
            value: { [TEST_NAMESPACE_LABEL]: 'true' },
          },
        ],
      },
      JSON_PATCH,
    );

    webhookConfig = tokenKubeConfig(
      controlPlane,
      'webhook',
      await serviceAccountToken(`${FULLNAME}-webhook`),
    );
    aggregatorConfig = tokenKubeConfig(
      controlPlane,
      'aggregator',
      await serviceAccountToken(`${FULLNAME}-aggregator`),
    );
    webhook = await startWebhook({
      kubeConfig: webhookConfig,
      listen: { host: '127.0.0.1', port },
      namespace: releaseNamespace,
      webhookConfigName: configurationName,
      secretName: `${FULLNAME}-webhook-tls`,
      aggregatorUrl: 'ws://127.0.0.1:9/v1/ingest',
      sidecarImage: 'registry.example/trainjob-progress:test',
      reconcileIntervalMs: 1000,
      shutdownDelayMs: 0,
      logger,
    });
    await webhook.ready;
  });

  after(async function () {
    sidecar?.close();
    await aggregator?.stop();
    await webhook?.stop();
    if (installed) await helm(['uninstall', RELEASE_NAME]);
    for (const name of [jobNamespace, releaseNamespace]) {
      if (name !== undefined) await cluster.core.deleteNamespace({ name }).catch(() => undefined);
    }
  });

  it('uses tokens without admin rights', async function () {
    for (const kubeConfig of [webhookConfig, aggregatorConfig]) {
      const status = await kubeConfig
        .makeApiClient(CoreV1Api)
        .listNamespacedSecret({ namespace: 'kube-system' })
        .then(
          () => 200,
          (error: { code?: number }) => error.code,
        );
      expect(status).to.equal(403);
    }
  });

  it('lets the webhook create its Secret', async function () {
    const secret = await cluster.core.readNamespacedSecret({
      namespace: releaseNamespace,
      name: `${FULLNAME}-webhook-tls`,
    });
    expect(Object.keys(secret.data ?? {})).to.not.have.length(0);
  });

  it('lets the webhook patch its caBundle', async function () {
    const configuration = (await cluster.custom.getClusterCustomObject({
      group: 'admissionregistration.k8s.io',
      version: 'v1',
      plural: 'mutatingwebhookconfigurations',
      name: configurationName,
    })) as V1MutatingWebhookConfiguration;
    const caBundle = configuration.webhooks?.[0]?.clientConfig.caBundle;
    expect(caBundle, `caBundle of ${configurationName}`).to.be.a('string');
    expect(Buffer.from(caBundle!, 'base64').toString('utf8')).to.include(
      webhook!.caCertPem.trim().split('\n')[1],
    );
  });

  it('lets the webhook inject a pod', async function () {
    await cluster.createServiceAccount(jobNamespace, 'trainer');
    trainJob = uniqueName('job');
    await cluster.createTrainJob(jobNamespace, trainJob);
    // The pod may arrive before the webhook's TrainJob watch sees the TrainJob. The
    // webhook then reads the TrainJob live, which the `get` verb allows.
    pod = await cluster.createPrimaryPod(jobNamespace, trainJob, 'trainer');
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    expect(containers.map((container) => container.name)).to.include(SIDECAR_CONTAINER_NAME);
  });

  it('lets the aggregator write the annotation and status', async function () {
    expect(pod, 'the pod of the injection test').to.not.equal(undefined);
    aggregator = await startAggregator({
      kubeConfig: aggregatorConfig,
      logger,
      listenHost: '127.0.0.1',
      listenPort: 0,
      mirrorStatus: true,
    });
    await aggregator.ready;
    const token = await cluster.requestToken(jobNamespace, 'trainer', {
      audiences: [SIDECAR_AUDIENCE],
      pod,
    });
    sidecar = new SidecarClient(aggregator.url, token);
    expect(await sidecar.hello(jobNamespace, trainJob, pod)).to.deep.equal({
      type: 'welcome',
      lastSeq: 0,
    });
    await sidecar.sample({ progressPercentage: 40 });

    const annotation = await waitFor(
      'the status annotation',
      () => cluster.readStatusAnnotation(jobNamespace, trainJob),
      (value) => value !== undefined,
    );
    expect(annotation).to.include('"progressPercentage":40');
    const mirrored = await waitFor(
      'the status mirror',
      async () => {
        const object = (await cluster.custom.getNamespacedCustomObject({
          ...TRAINJOB,
          namespace: jobNamespace,
          name: trainJob,
        })) as { status?: { trainerStatus?: { progressPercentage?: number } } };
        return object.status?.trainerStatus;
      },
      (value) => value !== undefined,
    );
    expect(mirrored?.progressPercentage).to.equal(40);
  });

  it('lets the aggregator authorize a viewer', async function () {
    expect(aggregator, 'the aggregator of the previous test').to.not.equal(undefined);
    await cluster.createServiceAccount(jobNamespace, 'viewer');
    await cluster.grantTrainJobRead(jobNamespace, 'viewer');
    await cluster.createServiceAccount(jobNamespace, 'stranger');
    const url = `${aggregator!.url}/v1/namespaces/${jobNamespace}/trainjobs/${trainJob}`;
    const viewer = await cluster.requestToken(jobNamespace, 'viewer');
    const stranger = await cluster.requestToken(jobNamespace, 'stranger');

    const allowed = await fetch(url, { headers: { Authorization: `Bearer ${viewer}` } });
    expect(allowed.status).to.equal(200);
    const denied = await fetch(url, { headers: { Authorization: `Bearer ${stranger}` } });
    expect(denied.status).to.equal(403);
  });

  it('lets the aggregator read the final pod status', async function () {
    expect(aggregator, 'the aggregator of the previous test').to.not.equal(undefined);
    const message = JSON.stringify({ progressPercentage: 100, currentStep: 50, totalSteps: 50 });
    await cluster.setTerminationMessage(jobNamespace, pod.metadata!.name!, message);
    await cluster.setCondition(jobNamespace, trainJob, 'Complete');
    const annotation = await waitFor(
      'the final status annotation',
      () => cluster.readStatusAnnotation(jobNamespace, trainJob),
      (value) => value?.includes('"progressPercentage":100') === true,
    );
    expect(annotation).to.include('"currentStep":50');
  });
});
