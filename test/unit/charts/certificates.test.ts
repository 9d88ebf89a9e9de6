import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type {
  V1Container,
  V1Deployment,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1PodSpec,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import {
  CI_DIR,
  ciValuesFiles,
  findObject,
  FULLNAME,
  objectsOfKind,
  RELEASE_NAMESPACE,
  renderChart,
  type RenderedObject,
} from './chart-render.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;
const CERT_MANAGER_API_VERSION = 'cert-manager.io/v1';
const INJECT_CA_ANNOTATION = 'cert-manager.io/inject-ca-from';
const SERVICE_HOST = `${FULLNAME}-webhook.${RELEASE_NAMESPACE}.svc`;

interface Certificate {
  metadata: { name: string };
  spec: {
    secretName: string;
    dnsNames: string[];
    issuerRef: { name: string; kind: string; group: string };
  };
}

function configurationOf(objects: RenderedObject[]): V1MutatingWebhookConfiguration {
  return findObject<V1MutatingWebhookConfiguration>(objects, 'MutatingWebhookConfiguration');
}

function webhookOf(objects: RenderedObject[]): V1MutatingWebhook {
  return configurationOf(objects).webhooks![0]!;
}

function webhookPod(objects: RenderedObject[]): { pod: V1PodSpec; container: V1Container } {
  const pod = findObject<V1Deployment>(objects, 'Deployment', '-webhook').spec!.template.spec!;
  return { pod, container: pod.containers[0]! };
}

/** Returns the Secret that the webhook pod mounts at its certificate folder. */
function mountedSecretName(objects: RenderedObject[]): string | undefined {
  const { pod, container } = webhookPod(objects);
  const mount = container.volumeMounts?.find((candidate) => candidate.name === 'tls');
  expect(mount?.mountPath).to.equal('/etc/trainjob-progress/tls');
  expect(mount?.readOnly).to.equal(true);
  return pod.volumes?.find((volume) => volume.name === 'tls')?.secret?.secretName;
}

function ciCaBundle(): string {
  const values = parse(
    readFileSync(path.join(CI_DIR, 'provided-certificates-values.yaml'), 'utf8'),
  ) as { certificates: { caBundle: string } };
  return values.certificates.caBundle;
}

describe('chart certificates', function () {
  this.timeout(HELM_TIMEOUT_MS);

  describe('selfSigned mode', function () {
    let objects: RenderedObject[];

    before(async function () {
      objects = await renderChart();
    });

    it('renders no caBundle', function () {
      expect(webhookOf(objects).clientConfig).not.to.have.property('caBundle');
      expect(configurationOf(objects).metadata!.annotations ?? {}).not.to.have.property(
        INJECT_CA_ANNOTATION,
      );
    });

    it('lets the webhook manage its certificate', function () {
      const { container } = webhookPod(objects);
      expect(container.args).to.include.members([
        '--cert-mode=self-signed',
        `--secret-name=${FULLNAME}-webhook-tls`,
        `--service-name=${FULLNAME}-webhook`,
        `--webhook-config-name=${configurationOf(objects).metadata!.name}`,
      ]);
    });

    it('mounts no certificate files', function () {
      const { pod, container } = webhookPod(objects);
      expect(pod.volumes ?? []).to.deep.equal([]);
      expect(container.volumeMounts ?? []).to.deep.equal([]);
    });
  });

  describe('certManager mode', function () {
    let objects: RenderedObject[];
    let certificate: Certificate;

    before(async function () {
      objects = await renderChart({ valuesFiles: ['cert-manager-values.yaml'] });
      certificate = findObject<Certificate>(objects, 'Certificate', '-webhook');
    });

    it('creates a self-signed Issuer', function () {
      const issuer = findObject<RenderedObject>(objects, 'Issuer', '-webhook');
      expect(issuer.apiVersion).to.equal(CERT_MANAGER_API_VERSION);
      expect(issuer.spec).to.deep.equal({ selfSigned: {} });
      expect(certificate.spec.issuerRef).to.deep.equal({
        name: issuer.metadata.name,
        kind: 'Issuer',
        group: 'cert-manager.io',
      });
    });

    it('certifies the Service name', function () {
      expect(certificate.spec.dnsNames).to.include(SERVICE_HOST);
    });

    it('injects the CA from the Certificate', function () {
      const annotations = configurationOf(objects).metadata!.annotations!;
      expect(annotations[INJECT_CA_ANNOTATION]).to.equal(
        `${RELEASE_NAMESPACE}/${certificate.metadata.name}`,
      );
      expect(webhookOf(objects).clientConfig).not.to.have.property('caBundle');
    });

    it('mounts the issued Secret', function () {
      expect(mountedSecretName(objects)).to.equal(certificate.spec.secretName);
      const { container } = webhookPod(objects);
      expect(container.args).to.include('--cert-mode=files');
      expect(container.args).to.include('--cert-dir=/etc/trainjob-progress/tls');
    });
  });

  it('uses an existing ClusterIssuer', async function () {
    const objects = await renderChart({ valuesFiles: ['cert-manager-cluster-issuer-values.yaml'] });
    expect(objectsOfKind(objects, 'Issuer')).to.deep.equal([]);
    const certificate = findObject<Certificate>(objects, 'Certificate', '-webhook');
    expect(certificate.spec.issuerRef).to.deep.equal({
      name: 'cluster-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
    expect(certificate.spec.secretName).to.equal('trainjob-progress-webhook-serving');
    expect(mountedSecretName(objects)).to.equal('trainjob-progress-webhook-serving');
  });

  describe('provided mode', function () {
    let objects: RenderedObject[];

    before(async function () {
      objects = await renderChart({ valuesFiles: ['provided-certificates-values.yaml'] });
    });

    it('renders the given caBundle', function () {
      expect(webhookOf(objects).clientConfig.caBundle).to.equal(ciCaBundle());
    });

    it('mounts the given Secret', function () {
      expect(mountedSecretName(objects)).to.equal('trainjob-progress-webhook-serving');
      expect(webhookPod(objects).container.args).to.include('--cert-mode=files');
    });

    it('gives the test pod the CA', function () {
      const pod = findObject<{ spec: V1PodSpec }>(objects, 'Pod', '-health-check');
      const ca = pod.spec.containers[0]!.env!.find((variable) => variable.name === 'WEBHOOK_CA');
      expect(ca?.value).to.equal(Buffer.from(ciCaBundle(), 'base64').toString('utf8'));
    });
  });

  for (const file of ciValuesFiles()) {
    it(`gates cert-manager objects with ${file}`, async function () {
      const objects = await renderChart({ valuesFiles: [file] });
      const certManagerObjects = objects.filter(
        (object) => object.apiVersion === CERT_MANAGER_API_VERSION,
      );
      const annotations = configurationOf(objects).metadata!.annotations ?? {};
      if (file.startsWith('cert-manager')) {
        expect(certManagerObjects).not.to.deep.equal([]);
        expect(annotations).to.have.property(INJECT_CA_ANNOTATION);
      } else {
        expect(certManagerObjects).to.deep.equal([]);
        expect(annotations).not.to.have.property(INJECT_CA_ANNOTATION);
      }
    });
  }
});
