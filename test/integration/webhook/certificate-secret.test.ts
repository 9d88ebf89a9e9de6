// The certificate Secret against a real kube-apiserver: create, adopt, renew and the races
// between replicas. A race is produced by running the rival replica from inside the first
// one's request, just before its write, so the API server itself returns the 409.

import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import { selfSignedSource } from '../../../webhook/cert-rotator.ts';
import {
  bundleFromSecret,
  ensureCertificateSecret,
  splitPem,
  type CertificateSecretOptions,
} from '../../../webhook/certificate-secret.ts';
import {
  KubeClient,
  type KubeRequestOptions,
  type KubeRequester,
} from '../../../webhook/kube-client.ts';
import { createCertificateAuthority, servingNames } from '../../../webhook/self-signed-certs.ts';
import { startWebhook } from '../../../webhook/start-webhook.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import { createNamespace, deleteNamespace, uniqueName } from './kube-objects.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const logger = createLogger('webhook-test', 'silent');

/** A real client that runs `beforeRequest` before each request and records the methods. */
class InterleavingClient implements KubeRequester {
  readonly methods: string[] = [];
  beforeRequest: ((method: string) => Promise<void>) | undefined;
  readonly #client: KubeClient;

  constructor(client: KubeClient) {
    this.#client = client;
  }

  async request(method: string, path: string, options?: KubeRequestOptions): Promise<unknown> {
    this.methods.push(method);
    await this.beforeRequest?.(method);
    return this.#client.request(method, path, options);
  }
}

describe('certificate Secret against kube-apiserver', function () {
  this.timeout(60_000);
  let client: KubeClient;
  let namespace: string;
  let options: CertificateSecretOptions;
  const namespaces: string[] = [];

  before(() => {
    client = new KubeClient(kubeConfigFor(getControlPlane()));
  });

  beforeEach(async () => {
    namespace = uniqueName('tp-cert');
    await createNamespace(client, namespace);
    namespaces.push(namespace);
    options = {
      namespace,
      secretName: 'webhook-tls',
      names: servingNames('trainjob-progress-webhook', namespace),
      servingValidityMs: 30 * DAY_MS,
      caValidityMs: 365 * DAY_MS,
    };
  });

  after(async () => {
    for (const name of namespaces) await deleteNamespace(client, name);
  });

  function secretPath(): string {
    return `/api/v1/namespaces/${namespace}/secrets/${options.secretName}`;
  }

  async function readSecret(): Promise<Record<string, unknown>> {
    return (await client.request('GET', secretPath())) as Record<string, unknown>;
  }

  it('creates a TLS Secret when missing', async () => {
    const { bundle, written } = await ensureCertificateSecret(client, options, logger);
    expect(written).to.equal(true);
    const secret = await readSecret();
    expect(secret.type).to.equal('kubernetes.io/tls');
    expect(Object.keys(secret.data as object).sort()).to.deep.equal([
      'ca.crt',
      'ca.key',
      'tls.crt',
      'tls.key',
    ]);
    expect(bundleFromSecret(secret)!.serving.certificatePem).to.equal(
      bundle.serving.certificatePem,
    );
  });

  it('issues a certificate for Service and loopback', async () => {
    const { bundle } = await ensureCertificateSecret(client, options, logger);
    const certificate = new X509Certificate(bundle.serving.certificatePem);
    const service = `trainjob-progress-webhook.${namespace}`;
    expect(certificate.subjectAltName).to.equal(
      `DNS:trainjob-progress-webhook, DNS:${service}, DNS:${service}.svc, ` +
        `DNS:${service}.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1`,
    );
    expect(certificate.checkIssued(new X509Certificate(bundle.ca.certificatePem))).to.equal(true);
    expect(Date.parse(certificate.validFrom)).to.be.below(Date.now() - 30 * 60 * 1000);
  });

  it('adopts a usable Secret without writing', async () => {
    const first = await ensureCertificateSecret(client, options, logger);
    const recorder = new InterleavingClient(client);
    const second = await ensureCertificateSecret(recorder, options, logger);
    expect(second.written).to.equal(false);
    expect(second.bundle.serving.certificatePem).to.equal(first.bundle.serving.certificatePem);
    expect(recorder.methods).to.deep.equal(['GET']);
  });

  it('adopts a Secret created first by another replica', async () => {
    const slow = new InterleavingClient(client);
    let rival: Awaited<ReturnType<typeof ensureCertificateSecret>> | undefined;
    slow.beforeRequest = async (method) => {
      if (method === 'POST' && rival === undefined) {
        rival = await ensureCertificateSecret(client, options, logger);
      }
    };
    const { bundle, written } = await ensureCertificateSecret(slow, options, logger);
    expect(rival?.written).to.equal(true);
    expect(written).to.equal(false);
    expect(bundle.caBundlePem).to.equal(rival!.bundle.caBundlePem);
    expect(bundle.serving.certificatePem).to.equal(rival!.bundle.serving.certificatePem);
    expect(slow.methods).to.deep.equal(['GET', 'POST', 'GET']);
  });

  it('adopts a renewal that won an update conflict', async () => {
    const oldNames = { dnsNames: ['old'], ipAddresses: [] };
    await ensureCertificateSecret(client, { ...options, names: oldNames }, logger);
    const slow = new InterleavingClient(client);
    let rival: Awaited<ReturnType<typeof ensureCertificateSecret>> | undefined;
    slow.beforeRequest = async (method) => {
      if (method === 'PUT' && rival === undefined) {
        rival = await ensureCertificateSecret(client, options, logger);
      }
    };
    const { bundle, written } = await ensureCertificateSecret(slow, options, logger);
    expect(rival?.written).to.equal(true);
    expect(written).to.equal(false);
    expect(slow.methods).to.deep.equal(['GET', 'PUT', 'GET']);
    const stored = bundleFromSecret(await readSecret())!;
    expect(bundle.serving.certificatePem).to.equal(stored.serving.certificatePem);
    expect(bundle.serving.certificatePem).to.equal(rival!.bundle.serving.certificatePem);
  });

  it('converges two racing replicas on one CA', async () => {
    const [first, second] = await Promise.all([
      ensureCertificateSecret(client, options, logger),
      ensureCertificateSecret(client, options, logger),
    ]);
    expect(first.bundle.caBundlePem).to.equal(second.bundle.caBundlePem);
    expect(first.bundle.serving.certificatePem).to.equal(second.bundle.serving.certificatePem);
    expect([first.written, second.written].filter(Boolean)).to.have.length(1);
  });

  it('converges two starting webhooks on one CA', async () => {
    const start = (): ReturnType<typeof startWebhook> =>
      startWebhook({
        kubeConfig: kubeConfigFor(getControlPlane()),
        listen: { host: '127.0.0.1', port: 0 },
        namespace,
        secretName: options.secretName,
        webhookConfigName: '',
        aggregatorUrl: 'ws://127.0.0.1:9/v1/ingest',
        sidecarImage: 'registry.example/trainjob-progress:test',
        shutdownDelayMs: 0,
        logger,
      });
    const replicas = await Promise.all([start(), start()]);
    try {
      const [first, second] = replicas;
      expect(first.caCertPem).to.equal(second.caCertPem);
      expect(first.caCertPem).to.equal(bundleFromSecret(await readSecret())!.caBundlePem);
    } finally {
      await Promise.all(replicas.map((replica) => replica.stop()));
    }
  });

  it('keeps the CA when renewing the serving certificate', async () => {
    const oldNames = { dnsNames: ['old'], ipAddresses: [] };
    const first = await ensureCertificateSecret(client, { ...options, names: oldNames }, logger);
    const second = await ensureCertificateSecret(client, options, logger);
    expect(second.written).to.equal(true);
    expect(second.bundle.caBundlePem).to.equal(first.bundle.caBundlePem);
    expect(second.bundle.serving.certificatePem).to.not.equal(first.bundle.serving.certificatePem);
  });

  it('publishes the old CA next to a renewed one', async () => {
    await ensureCertificateSecret(client, options, logger);
    // A CA issued 20 hours ago for a day has 4 of its 25 hours left: due, but still valid.
    const old = await createCertificateAuthority(DAY_MS, Date.now() - 20 * 60 * 60 * 1000);
    const secret = await readSecret();
    const data = secret.data as Record<string, string>;
    data['ca.crt'] = Buffer.from(old.certificatePem).toString('base64');
    data['ca.key'] = Buffer.from(old.privateKeyPem).toString('base64');
    await client.request('PUT', secretPath(), { body: secret });

    const rotated = await ensureCertificateSecret(client, options, logger);
    expect(rotated.written).to.equal(true);
    const cas = splitPem(rotated.bundle.caBundlePem);
    expect(cas).to.have.length(2);
    expect(cas[0]).to.equal(rotated.bundle.ca.certificatePem.trim());
    expect(cas[1]).to.equal(old.certificatePem.trim());
    expect(bundleFromSecret(await readSecret())!.caBundlePem).to.equal(rotated.bundle.caBundlePem);
  });

  it('writes the CA to the cert folder', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'trainjob-progress-cert-'));
    try {
      const source = selfSignedSource(client, options, directory, logger);
      const certificate = await source.fetch(AbortSignal.timeout(10_000));
      expect(readFileSync(path.join(directory, 'ca.crt'), 'utf8')).to.equal(
        certificate.caBundlePem,
      );
      expect(certificate.caBundlePem).to.equal(bundleFromSecret(await readSecret())!.caBundlePem);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
