import { expect } from 'chai';
import type {
  V1Container,
  V1Deployment,
  V1MutatingWebhookConfiguration,
  V1Pod,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1Service,
} from '@kubernetes/client-node';
import {
  ciValuesFiles,
  findObject,
  FULLNAME,
  hasKind,
  objectsOfKind,
  RELEASE_NAMESPACE,
  renderChart,
  type RenderedObject,
} from './chart-render.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;
const VERSION_LABELS = ['helm.sh/chart', 'app.kubernetes.io/version'];
const CLUSTER_SCOPED_KINDS = new Set([
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
]);

/** Returns every label selector of an object: Deployments, Services, PDBs, monitors. */
function selectorsOf(object: RenderedObject): Record<string, string>[] {
  const spec = object.spec as
    | {
        selector?: Record<string, string> | { matchLabels?: Record<string, string> };
        template?: { spec?: V1PodSpec };
      }
    | undefined;
  const selectors: Record<string, string>[] = [];
  if (spec?.selector !== undefined) {
    const selector = spec.selector;
    const matchLabels = (selector as { matchLabels?: Record<string, string> }).matchLabels;
    selectors.push(object.kind === 'Service' ? (selector as Record<string, string>) : matchLabels!);
  }
  const antiAffinity = spec?.template?.spec?.affinity?.podAntiAffinity;
  for (const term of antiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
    selectors.push(term.podAffinityTerm.labelSelector?.matchLabels ?? {});
  }
  return selectors;
}

function webhookOf(objects: RenderedObject[]) {
  const configuration = findObject<V1MutatingWebhookConfiguration>(
    objects,
    'MutatingWebhookConfiguration',
  );
  expect(configuration.webhooks).to.have.length(1);
  return configuration.webhooks![0]!;
}

function containerOf(deployment: V1Deployment): V1Container {
  const containers = deployment.spec!.template.spec!.containers;
  expect(containers).to.have.length(1);
  return containers[0]!;
}

function expectRestrictedSecurity(pod: V1PodSpec, container: V1Container): void {
  expect(pod.securityContext?.runAsNonRoot).to.equal(true);
  expect(pod.securityContext?.runAsUser).to.equal(65532);
  expect(pod.securityContext?.seccompProfile?.type).to.equal('RuntimeDefault');
  expect(container.securityContext?.allowPrivilegeEscalation).to.equal(false);
  expect(container.securityContext?.readOnlyRootFilesystem).to.equal(true);
  expect(container.securityContext?.capabilities?.drop).to.deep.equal(['ALL']);
  expect(container.securityContext?.privileged).to.not.equal(true);
  expect((container.ports ?? []).every((port) => port.hostPort === undefined)).to.equal(true);
}

function expectResources(container: V1Container): void {
  for (const kind of ['requests', 'limits'] as const) {
    expect(container.resources?.[kind], `${container.name} ${kind}`).to.have.all.keys(
      'cpu',
      'memory',
    );
  }
}

describe('chart rendering', function () {
  this.timeout(HELM_TIMEOUT_MS);

  for (const file of ciValuesFiles()) {
    describe(file, function () {
      let objects: RenderedObject[];

      before(async function () {
        objects = await renderChart({ valuesFiles: [file] });
      });

      it('keeps version labels out of selectors', function () {
        const selectors = objects.flatMap(selectorsOf);
        expect(selectors.length).to.be.greaterThan(3);
        for (const selector of selectors) {
          expect(selector).to.include.keys('app.kubernetes.io/name', 'app.kubernetes.io/instance');
          for (const label of VERSION_LABELS) expect(selector).not.to.have.property(label);
        }
      });

      it('labels pods with their selector', function () {
        for (const deployment of objectsOfKind<V1Deployment>(objects, 'Deployment')) {
          const labels = deployment.spec!.template.metadata!.labels!;
          expect(labels).to.include(deployment.spec!.selector.matchLabels!);
        }
      });

      it('places namespaced objects in the release namespace', function () {
        for (const object of objects) {
          const expected = CLUSTER_SCOPED_KINDS.has(object.kind) ? undefined : RELEASE_NAMESPACE;
          expect(object.metadata.namespace, `${object.kind} ${object.metadata.name}`).to.equal(
            expected,
          );
        }
      });

      it('keeps names within 63 characters', function () {
        for (const object of objects) {
          expect(object.metadata.name).to.have.length.within(1, 63);
        }
      });

      it('registers a webhook that never blocks pods', function () {
        const webhook = webhookOf(objects);
        expect(webhook.failurePolicy).to.equal('Ignore');
        expect(webhook.sideEffects).to.equal('None');
        expect(webhook.timeoutSeconds).to.be.within(1, 10);
        expect(webhook.admissionReviewVersions).to.deep.equal(['v1']);
        expect(webhook.reinvocationPolicy).to.be.oneOf(['Never', 'IfNeeded']);
      });

      it('intercepts pod creation only', function () {
        const rules = webhookOf(objects).rules!;
        expect(rules).to.have.length(1);
        expect(rules[0]!.operations).to.deep.equal(['CREATE']);
        expect(rules[0]!.resources).to.deep.equal(['pods']);
        expect(rules[0]!.apiGroups).to.deep.equal(['']);
        expect(rules[0]!.apiVersions).to.deep.equal(['v1']);
      });

      it('selects JobSet pods outside system namespaces', function () {
        const webhook = webhookOf(objects);
        expect(webhook.objectSelector).to.deep.equal({
          matchExpressions: [{ key: 'jobset.sigs.k8s.io/jobset-name', operator: 'Exists' }],
        });
        const expressions = webhook.namespaceSelector!.matchExpressions!;
        expect(expressions).to.have.length(1);
        expect(expressions[0]!.key).to.equal('kubernetes.io/metadata.name');
        expect(expressions[0]!.operator).to.equal('NotIn');
        expect(expressions[0]!.values).to.include.members([
          'kube-system',
          'kube-public',
          'kube-node-lease',
          RELEASE_NAMESPACE,
        ]);
      });

      it('runs every container restricted', function () {
        for (const deployment of objectsOfKind<V1Deployment>(objects, 'Deployment')) {
          expectRestrictedSecurity(deployment.spec!.template.spec!, containerOf(deployment));
        }
        for (const pod of objectsOfKind<V1Pod>(objects, 'Pod')) {
          expectRestrictedSecurity(pod.spec!, pod.spec!.containers[0]!);
        }
      });

      it('sets requests and limits', function () {
        for (const deployment of objectsOfKind<V1Deployment>(objects, 'Deployment')) {
          expectResources(containerOf(deployment));
        }
        for (const pod of objectsOfKind<V1Pod>(objects, 'Pod')) {
          expectResources(pod.spec!.containers[0]!);
        }
      });

      it('creates a PodDisruptionBudget only above one replica', function () {
        const webhook = findObject<V1Deployment>(objects, 'Deployment', '-webhook');
        const budgets = objectsOfKind<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget');
        if (webhook.spec!.replicas! > 1) {
          expect(budgets).to.have.length(1);
          expect(budgets[0]!.spec!.minAvailable).to.be.below(webhook.spec!.replicas!);
          expect(budgets[0]!.spec!.selector!.matchLabels).to.deep.equal(
            webhook.spec!.selector.matchLabels,
          );
        } else {
          expect(budgets).to.deep.equal([]);
        }
      });

      it('passes the namespace through the downward API', function () {
        const webhook = findObject<V1Deployment>(objects, 'Deployment', '-webhook');
        const env = containerOf(webhook).env ?? [];
        const namespace = env.find((variable) => variable.name === 'TRAINJOB_PROGRESS_NAMESPACE');
        expect(namespace?.valueFrom?.fieldRef?.fieldPath).to.equal('metadata.namespace');
      });
    });
  }
});

describe('chart defaults', function () {
  this.timeout(HELM_TIMEOUT_MS);
  let objects: RenderedObject[];

  before(async function () {
    objects = await renderChart();
  });

  it('runs two webhook replicas', function () {
    const webhook = findObject<V1Deployment>(objects, 'Deployment', '-webhook');
    expect(webhook.spec!.replicas).to.equal(2);
  });

  it('spreads webhook replicas over nodes', function () {
    const pod = findObject<V1Deployment>(objects, 'Deployment', '-webhook').spec!.template.spec!;
    const terms = pod.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution!;
    expect(terms).to.have.length(1);
    expect(terms[0]!.podAffinityTerm.topologyKey).to.equal('kubernetes.io/hostname');
  });

  it('probes the webhook over HTTPS', function () {
    const container = containerOf(findObject<V1Deployment>(objects, 'Deployment', '-webhook'));
    expect(container.livenessProbe?.httpGet?.path).to.equal('/healthz');
    expect(container.livenessProbe?.httpGet?.scheme).to.equal('HTTPS');
    expect(container.readinessProbe?.httpGet?.path).to.equal('/readyz');
    expect(container.readinessProbe?.httpGet?.scheme).to.equal('HTTPS');
  });

  it('probes the aggregator over HTTP', function () {
    const container = containerOf(findObject<V1Deployment>(objects, 'Deployment', '-aggregator'));
    expect(container.livenessProbe?.httpGet?.path).to.equal('/healthz');
    expect(container.readinessProbe?.httpGet?.path).to.equal('/readyz');
  });

  it('runs one aggregator with Recreate', function () {
    const aggregator = findObject<V1Deployment>(objects, 'Deployment', '-aggregator');
    expect(aggregator.spec!.replicas).to.equal(1);
    expect(aggregator.spec!.strategy?.type).to.equal('Recreate');
  });

  it('calls the webhook through its Service', function () {
    const webhook = webhookOf(objects);
    const service = findObject<V1Service>(objects, 'Service', '-webhook');
    expect(webhook.clientConfig.url).to.equal(undefined);
    expect(webhook.clientConfig.service).to.deep.equal({
      name: service.metadata!.name,
      namespace: RELEASE_NAMESPACE,
      path: '/mutate',
      port: 443,
    });
    expect(service.spec!.ports![0]!.targetPort).to.equal('https');
  });

  it('gives the sidecar the main image', function () {
    const container = containerOf(findObject<V1Deployment>(objects, 'Deployment', '-webhook'));
    expect(container.image).to.equal('trainjob-progress:0.1.0');
    expect(container.args).to.include('--sidecar-image=trainjob-progress:0.1.0');
  });

  it('points sidecars at the aggregator Service', function () {
    const container = containerOf(findObject<V1Deployment>(objects, 'Deployment', '-webhook'));
    const service = `${FULLNAME}-aggregator.${RELEASE_NAMESPACE}.svc:8080`;
    expect(container.args).to.include(`--aggregator-url=ws://${service}/v1/ingest`);
  });

  it('renders no ServiceMonitor', function () {
    expect(hasKind(objects, 'ServiceMonitor')).to.equal(false);
  });

  it('renders a helm test pod', function () {
    const pod = findObject<V1Pod>(objects, 'Pod', '-health-check');
    expect(pod.metadata!.annotations).to.include({ 'helm.sh/hook': 'test' });
    const env = Object.fromEntries(
      pod.spec!.containers[0]!.env!.map((variable) => [variable.name, variable.value]),
    );
    expect(env.WEBHOOK_URL).to.equal(
      `https://${FULLNAME}-webhook.${RELEASE_NAMESPACE}.svc:443/healthz`,
    );
    expect(env.AGGREGATOR_URL).to.equal(
      `http://${FULLNAME}-aggregator.${RELEASE_NAMESPACE}.svc:8080/healthz`,
    );
  });
});

describe('chart features', function () {
  this.timeout(HELM_TIMEOUT_MS);

  async function webhookArgs(valuesFile: string): Promise<string[]> {
    const objects = await renderChart({ valuesFiles: [valuesFile] });
    return containerOf(findObject<V1Deployment>(objects, 'Deployment', '-webhook')).args!;
  }

  async function aggregatorArgs(valuesFile: string): Promise<string[]> {
    const objects = await renderChart({ valuesFiles: [valuesFile] });
    return containerOf(findObject<V1Deployment>(objects, 'Deployment', '-aggregator')).args!;
  }

  it('registers the dev URL', async function () {
    const objects = await renderChart({ valuesFiles: ['dev-url-values.yaml'] });
    const webhook = webhookOf(objects);
    expect(webhook.clientConfig.url).to.equal('https://127.0.0.1:9443/mutate');
    expect(webhook.clientConfig.service).to.equal(undefined);
    expect(findObject<V1Deployment>(objects, 'Deployment', '-webhook').spec!.replicas).to.equal(0);
    const testPod = findObject<V1Pod>(objects, 'Pod', '-health-check');
    const names = testPod.spec!.containers[0]!.env!.map((variable) => variable.name);
    expect(names).to.deep.equal(['AGGREGATOR_URL']);
  });

  it('skips the PodDisruptionBudget for one replica', async function () {
    const objects = await renderChart({ valuesFiles: ['single-replica-values.yaml'] });
    expect(hasKind(objects, 'PodDisruptionBudget')).to.equal(false);
  });

  it('renders ServiceMonitors when enabled', async function () {
    const objects = await renderChart({ valuesFiles: ['service-monitor-values.yaml'] });
    const monitors = objectsOfKind<RenderedObject>(objects, 'ServiceMonitor');
    expect(monitors.map((monitor) => monitor.apiVersion)).to.deep.equal([
      'monitoring.coreos.com/v1',
      'monitoring.coreos.com/v1',
    ]);
    for (const monitor of monitors) {
      expect(monitor.metadata.labels).to.include({ release: 'prometheus' });
    }
  });

  it('turns the status mirror on', async function () {
    expect(await aggregatorArgs('status-mirror-values.yaml')).to.include('--mirror-status');
    expect(await aggregatorArgs('default-values.yaml')).not.to.include('--mirror-status');
  });

  it('selects the container sidecar mode', async function () {
    expect(await webhookArgs('container-sidecar-values.yaml')).to.include(
      '--sidecar-mode=container',
    );
    expect(await webhookArgs('default-values.yaml')).to.include('--sidecar-mode=auto');
  });

  it('selects the all-nodes scope', async function () {
    expect(await webhookArgs('all-nodes-values.yaml')).to.include(
      '--injection-scope=all-nodes',
    );
    expect(await webhookArgs('default-values.yaml')).to.include('--injection-scope=primary');
  });

  it('overrides the sidecar image', async function () {
    const objects = await renderChart({
      set: ['image.repository=registry.example/tp', 'sidecar.image.repository=registry.example/sc'],
    });
    const container = containerOf(findObject<V1Deployment>(objects, 'Deployment', '-webhook'));
    expect(container.image).to.equal('registry.example/tp:0.1.0');
    expect(container.args).to.include('--sidecar-image=registry.example/sc:0.1.0');
  });

  it('pins images by digest', async function () {
    const digest = `sha256:${'a'.repeat(64)}`;
    const objects = await renderChart({ set: [`image.tag=v1`, `image.digest=${digest}`] });
    const container = containerOf(findObject<V1Deployment>(objects, 'Deployment', '-webhook'));
    expect(container.image).to.equal(`trainjob-progress:v1@${digest}`);
    expect(container.args).to.include(`--sidecar-image=trainjob-progress:v1@${digest}`);
  });

  it('excludes extra namespaces', async function () {
    const objects = await renderChart({ set: ['webhook.excludedNamespaces={istio-system}'] });
    const values = webhookOf(objects).namespaceSelector!.matchExpressions![0]!.values!;
    expect(values).to.include('istio-system');
  });

  it('drops the test pod when disabled', async function () {
    const objects = await renderChart({ set: ['tests.enabled=false'] });
    expect(hasKind(objects, 'Pod')).to.equal(false);
  });
});
