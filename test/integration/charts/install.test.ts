// Installs the chart into the local control plane with helm. Nothing runs the pods (there
// is no kubelet), so these tests check that the API server accepts every object and that
// helm removes them again. The webhook is registered at a loopback URL, because the API
// server must never call a Service address here, and no pod that it matches is created.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Deployment,
  type V1MutatingWebhookConfiguration,
  type V1Pod,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { runHelmOrThrow } from '../../helm.ts';
import {
  CHART_DIR,
  CI_DIR,
  ciValuesFiles,
  objectsOfKind,
  parseObjects,
  renderChart,
  type RenderedObject,
} from '../../unit/charts/chart-render.ts';
import { getControlPlane, kubeConfigFor, type ControlPlane } from '../cluster.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;
const RELEASE = 'progress';
const DEV_URL_VALUES = 'dev-url-values.yaml';
// Webhook replicas on top of the dev URL values, so that the PodDisruptionBudget and the
// Deployment's pod template are checked too. Without a controller manager no pod starts.
const REPLICAS = 'webhook.replicas=2';
// NOTE: the local control plane has neither cert-manager's nor the Prometheus Operator's
// CRDs, so objects of these groups are only checked by the unit tests.
const GROUPS_WITHOUT_CRDS = ['cert-manager.io/', 'monitoring.coreos.com/'];

function isHelmTestHook(object: RenderedObject): boolean {
  const annotations = object.metadata.annotations ?? {};
  return annotations['helm.sh/hook'] === 'test';
}

/** Returns a Pod with the Deployment's pod template, for the PodSecurity admission check. */
function podOf(deployment: V1Deployment): V1Pod {
  const { metadata, spec } = deployment;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${metadata!.name}-template`, namespace: metadata!.namespace! },
    spec: spec!.template.spec!,
  };
}

/** Creates `object` with dryRun=All and fails the test with the API server's reason. */
async function dryRunCreate(api: KubernetesObjectApi, object: KubernetesObject): Promise<void> {
  try {
    await api.create(object, undefined, 'All');
  } catch (error) {
    const body = error instanceof ApiException ? String(error.body) : String(error);
    expect.fail(`the API server rejected ${describeObject(object)}: ${body}`);
  }
}

function describeObject(object: KubernetesObject): string {
  const { namespace, name } = object.metadata ?? {};
  return `${object.kind} ${namespace === undefined ? '' : `${namespace}/`}${name}`;
}

/** Returns whether the object exists, reading it through the API server. */
async function exists(api: KubernetesObjectApi, object: KubernetesObject): Promise<boolean> {
  try {
    await api.read({
      apiVersion: object.apiVersion!,
      kind: object.kind!,
      metadata: { name: object.metadata!.name!, namespace: object.metadata!.namespace! },
    });
    return true;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return false;
    throw error;
  }
}

describe('chart installation', function () {
  this.timeout(HELM_TIMEOUT_MS);
  let controlPlane: ControlPlane;
  let objectApi: KubernetesObjectApi;
  const namespace = `chart-${randomBytes(4).toString('hex')}`;

  function helm(args: string[]): Promise<string> {
    return runHelmOrThrow([
      ...args,
      '--kubeconfig',
      controlPlane.kubeconfigPath,
      '--namespace',
      namespace,
    ]);
  }

  before(async function () {
    controlPlane = getControlPlane();
    const kubeConfig = kubeConfigFor(controlPlane);
    objectApi = KubernetesObjectApi.makeApiClient(kubeConfig);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    // The restricted Pod Security Standard is enforced on pods, so a dry run of a pod
    // that breaks it fails.
    await core.createNamespace({
      body: {
        metadata: {
          name: namespace,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    });
  });

  after(async function () {
    // Removes the release even when a test failed in between, so that its webhook
    // registration cannot reach later tests that share the control plane.
    const releases = await helm(['list', '--short']);
    if (releases.split('\n').includes(RELEASE)) await helm(['uninstall', RELEASE]);
  });

  describe('server-side dry run', function () {
    for (const file of ciValuesFiles()) {
      it(`accepts every object of ${file}`, async function () {
        const objects = await renderChart({ valuesFiles: [file], namespace });
        const checked = objects.filter(
          (object) => !GROUPS_WITHOUT_CRDS.some((group) => object.apiVersion.startsWith(group)),
        );
        expect(checked.length).to.be.greaterThan(10);
        for (const object of checked) await dryRunCreate(objectApi, object);
      });
    }

    it('meets the restricted pod security standard', async function () {
      const objects = await renderChart({ namespace });
      const deployments = objectsOfKind<V1Deployment>(objects, 'Deployment');
      expect(deployments).to.have.length(2);
      for (const deployment of deployments) {
        await dryRunCreate(objectApi, podOf(deployment));
      }
    });

    it('rejects a privileged pod', async function () {
      const objects = await renderChart({ namespace });
      const pod = podOf(objectsOfKind<V1Deployment>(objects, 'Deployment')[0]!);
      pod.spec!.containers[0]!.securityContext = { privileged: true };

      const error = await objectApi.create(pod, undefined, 'All').then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).to.be.instanceOf(ApiException);
      expect((error as ApiException<unknown>).code).to.equal(403);
      expect(String((error as ApiException<unknown>).body)).to.include('violates PodSecurity');
    });
  });

  describe('install and uninstall', function () {
    let manifest: RenderedObject[];

    before(async function () {
      await helm([
        'install',
        RELEASE,
        CHART_DIR,
        '--values',
        path.join(CI_DIR, DEV_URL_VALUES),
        '--set',
        REPLICAS,
      ]);
      manifest = parseObjects(await helm(['get', 'manifest', RELEASE]));
    });

    it('installs every rendered object', async function () {
      const rendered = await renderChart({
        valuesFiles: [DEV_URL_VALUES],
        set: [REPLICAS],
        namespace,
      });
      const installable = rendered.filter((object) => !isHelmTestHook(object));
      expect(manifest.map(describeObject).sort()).to.deep.equal(
        installable.map(describeObject).sort(),
      );
    });

    it('stores every object', async function () {
      for (const object of manifest) {
        expect(await exists(objectApi, object), describeObject(object)).to.equal(true);
      }
    });

    it('registers the loopback URL without caBundle', async function () {
      const stored = await objectApi.read<V1MutatingWebhookConfiguration>({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: `${RELEASE}-trainjob-progress-${namespace}` },
      });
      const clientConfig = stored.webhooks![0]!.clientConfig;
      expect(clientConfig.url).to.equal('https://127.0.0.1:9443/mutate');
      expect(clientConfig.service).to.equal(undefined);
      expect(clientConfig.caBundle).to.equal(undefined);
      expect(stored.webhooks![0]!.failurePolicy).to.equal('Ignore');
    });

    it('removes every object on uninstall', async function () {
      const kinds = new Set(manifest.map((object) => object.kind));
      expect(kinds).to.include.members([
        'Deployment',
        'Service',
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'MutatingWebhookConfiguration',
        'PodDisruptionBudget',
      ]);

      await helm(['uninstall', RELEASE]);

      for (const object of manifest) {
        expect(await exists(objectApi, object), describeObject(object)).to.equal(false);
      }
    });
  });
});
