// Parses the flags that the chart renders with the components' own configuration parsers,
// so a flag that the webhook or the aggregator does not accept fails here, not in a
// crash-looping pod.
import { expect } from 'chai';
import type { V1Container, V1Deployment } from '@kubernetes/client-node';
import { parseAggregatorConfig } from '../../../aggregator/config.ts';
import { parseWebhookConfig } from '../../../webhook/config.ts';
import {
  ciValuesFiles,
  findObject,
  FULLNAME,
  RELEASE_NAMESPACE,
  renderChart,
  type RenderedObject,
} from './chart-render.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;

function container(objects: RenderedObject[], suffix: string): V1Container {
  const deployment = findObject<V1Deployment>(objects, 'Deployment', suffix);
  return deployment.spec!.template.spec!.containers[0]!;
}

/** Returns the container's flags after the subcommand, which must be `subcommand`. */
function flagsOf(target: V1Container, subcommand: string): string[] {
  const [first, ...flags] = target.args!;
  expect(first).to.equal(subcommand);
  return flags;
}

/** Returns the environment that the kubelet would give the webhook container. */
function webhookEnvironment(target: V1Container): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {};
  for (const variable of target.env ?? []) {
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    expect(fieldPath, variable.name).to.equal('metadata.namespace');
    environment[variable.name] = RELEASE_NAMESPACE;
  }
  return environment;
}

describe('chart component flags', function () {
  this.timeout(HELM_TIMEOUT_MS);

  for (const file of ciValuesFiles()) {
    describe(file, function () {
      let objects: RenderedObject[];

      before(async function () {
        objects = await renderChart({ valuesFiles: [file] });
      });

      it('configures the webhook', function () {
        const webhook = container(objects, '-webhook');
        const config = parseWebhookConfig(flagsOf(webhook, 'webhook'), webhookEnvironment(webhook));

        expect(config).not.to.equal(undefined);
        expect(config!.namespace).to.equal(RELEASE_NAMESPACE);
        expect(config!.serviceName).to.equal(`${FULLNAME}-webhook`);
        expect(config!.listen.port).to.equal(webhook.ports![0]!.containerPort);
        expect(config!.sidecarImage).to.equal(webhook.image);
        expect(config!.aggregatorUrl).to.equal(
          `ws://${FULLNAME}-aggregator.${RELEASE_NAMESPACE}.svc:8080/v1/ingest`,
        );
      });

      it('configures the aggregator', function () {
        const aggregator = container(objects, '-aggregator');
        const config = parseAggregatorConfig(flagsOf(aggregator, 'aggregator'), {});

        expect(config).not.to.equal(undefined);
        expect(config!.auth).to.equal('kubernetes');
        expect(config!.listenPort).to.equal(aggregator.ports![0]!.containerPort);
        expect(config!.mirrorStatus).to.equal(file === 'status-mirror-values.yaml');
      });

      it('shares the token audience', function () {
        const webhook = container(objects, '-webhook');
        const aggregator = container(objects, '-aggregator');
        const webhookConfig = parseWebhookConfig(
          flagsOf(webhook, 'webhook'),
          webhookEnvironment(webhook),
        );
        const aggregatorConfig = parseAggregatorConfig(flagsOf(aggregator, 'aggregator'), {});

        expect(webhookConfig!.tokenAudience).to.equal('trainjob-progress');
        expect(aggregatorConfig!.tokenAudience).to.equal(webhookConfig!.tokenAudience);
      });
    });
  }

  it('passes the certificate settings', async function () {
    const objects = await renderChart({ valuesFiles: ['provided-certificates-values.yaml'] });
    const webhook = container(objects, '-webhook');
    const config = parseWebhookConfig(flagsOf(webhook, 'webhook'), webhookEnvironment(webhook));

    expect(config!.certMode).to.equal('files');
    expect(config!.certDir).to.equal(webhook.volumeMounts![0]!.mountPath);
  });

  it('passes the self-signed settings', async function () {
    const objects = await renderChart();
    const webhook = container(objects, '-webhook');
    const config = parseWebhookConfig(flagsOf(webhook, 'webhook'), webhookEnvironment(webhook));

    expect(config!.certMode).to.equal('self-signed');
    expect(config!.secretName).to.equal(`${FULLNAME}-webhook-tls`);
    expect(config!.webhookConfigName).to.equal(`${FULLNAME}-${RELEASE_NAMESPACE}`);
    expect(config!.certValidityMs).to.equal(365 * 24 * 60 * 60 * 1000);
  });

  it('passes the sidecar settings', async function () {
    const objects = await renderChart({
      set: [
        'sidecar.mode=native',
        'sidecar.injectionScope=all-nodes',
        'sidecar.metricsPath=/progress',
        'sidecar.image.pullPolicy=Always',
        'sidecar.resources.requests.cpu=20m',
        'sidecar.resources.requests.memory=96Mi',
        'sidecar.resources.limits.memory=160Mi',
      ],
    });
    const webhook = container(objects, '-webhook');
    const config = parseWebhookConfig(flagsOf(webhook, 'webhook'), webhookEnvironment(webhook));

    expect(config!.sidecarMode).to.equal('native');
    expect(config!.injectionScope).to.equal('all-nodes');
    expect(config!.metricsPath).to.equal('/progress');
    expect(config!.sidecarImagePullPolicy).to.equal('Always');
    expect(config!.sidecarResources).to.deep.equal({
      cpuRequest: '20m',
      cpuLimit: '100m',
      memoryRequest: '96Mi',
      memoryLimit: '160Mi',
    });
  });

  it('passes the write budget', async function () {
    const objects = await renderChart({
      values: { aggregator: { writesPerSecond: 2.5, writeBurst: 4 } },
    });
    const aggregator = container(objects, '-aggregator');
    const config = parseAggregatorConfig(flagsOf(aggregator, 'aggregator'), {});

    expect(config!.writesPerSecond).to.equal(2.5);
    expect(config!.writeBurst).to.equal(4);
  });
});
