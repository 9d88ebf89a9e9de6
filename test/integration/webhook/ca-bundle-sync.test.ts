// CaBundleSync against a real kube-apiserver: the API server applies the JSON Patch, checks
// its `test` operations and stores the result that the tests read back.

import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import { CaBundleSync } from '../../../webhook/ca-bundle-sync.ts';
import {
  JSON_PATCH,
  KubeClient,
  type KubeRequestOptions,
  type KubeRequester,
} from '../../../webhook/kube-client.ts';
import { buildMutatingWebhookConfiguration } from '../../../webhook/registration.ts';
import { createCertificateAuthority } from '../../../webhook/self-signed-certs.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import { uniqueName } from './kube-objects.ts';

const CONFIG_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const DAY_MS = 24 * 60 * 60 * 1000;
const logger = createLogger('webhook-test', 'silent');

interface RecordedRequest {
  method: string;
  body: unknown;
  contentType: string | undefined;
}

/** A real client that records each request it sends. */
class RecordingClient implements KubeRequester {
  readonly requests: RecordedRequest[] = [];
  readonly #client: KubeClient;

  constructor(client: KubeClient) {
    this.#client = client;
  }

  request(method: string, path: string, options: KubeRequestOptions = {}): Promise<unknown> {
    this.requests.push({ method, body: options.body, contentType: options.contentType });
    return this.#client.request(method, path, options);
  }
}

describe('caBundle sync against kube-apiserver', function () {
  this.timeout(60_000);
  let client: KubeClient;
  let caPem: string;
  let otherCaPem: string;
  let name: string;
  const created: string[] = [];

  before(async () => {
    client = new KubeClient(kubeConfigFor(getControlPlane()));
    caPem = (await createCertificateAuthority(DAY_MS)).certificatePem;
    otherCaPem = (await createCertificateAuthority(DAY_MS)).certificatePem;
  });

  beforeEach(() => {
    name = uniqueName('tp-ca-bundle');
  });

  after(async () => {
    for (const configName of created) {
      await client.request('DELETE', `${CONFIG_PATH}/${configName}`).catch(() => undefined);
    }
  });

  /**
   * Creates a configuration with two webhooks whose namespace selector matches no namespace,
   * so the API server never calls the unreachable Service it names.
   */
  async function createConfiguration(caBundlePem?: string): Promise<void> {
    const configuration = buildMutatingWebhookConfiguration({
      name,
      target: { service: { namespace: 'tp-system', name: 'absent' } },
      ...(caBundlePem === undefined ? {} : { caBundlePem }),
    });
    const webhooks = configuration.webhooks as Record<string, unknown>[];
    webhooks[0]!.namespaceSelector = { matchLabels: { 'trainjob-progress.test/none': 'true' } };
    webhooks.push({ ...webhooks[0], name: 'second.trainjob-progress.example.com' });
    await client.request('POST', CONFIG_PATH, { body: configuration });
    created.push(name);
  }

  async function readCaBundles(): Promise<(string | undefined)[]> {
    const configuration = (await client.request('GET', `${CONFIG_PATH}/${name}`)) as {
      webhooks: { clientConfig: { caBundle?: string } }[];
    };
    return configuration.webhooks.map((webhook) => webhook.clientConfig.caBundle);
  }

  function base64(pem: string): string {
    return Buffer.from(pem).toString('base64');
  }

  it('writes a missing caBundle into every webhook', async () => {
    await createConfiguration();
    const recorder = new RecordingClient(client);
    let repairs = 0;
    const sync = new CaBundleSync(recorder, name, logger, () => repairs++);

    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(true);
    expect(sync.inPlace).to.equal(true);
    expect(repairs).to.equal(1);
    expect(await readCaBundles()).to.deep.equal([base64(caPem), base64(caPem)]);
    const patch = recorder.requests.find((request) => request.method === 'PATCH');
    expect(patch?.contentType).to.equal(JSON_PATCH);
    expect(patch?.body).to.deep.equal([
      { op: 'test', path: '/webhooks/0/name', value: 'pods.trainjob-progress.opendatahub.io' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: base64(caPem) },
      { op: 'test', path: '/webhooks/1/name', value: 'second.trainjob-progress.example.com' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: base64(caPem) },
    ]);
  });

  it('sends no patch when the caBundle is correct', async () => {
    await createConfiguration(caPem);
    const recorder = new RecordingClient(client);
    let repairs = 0;
    const sync = new CaBundleSync(recorder, name, logger, () => repairs++);
    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(true);
    expect(recorder.requests.map((request) => request.method)).to.deep.equal(['GET']);
    expect(repairs).to.equal(0);
  });

  it('replaces a caBundle of another CA', async () => {
    await createConfiguration(otherCaPem);
    const sync = new CaBundleSync(client, name, logger);
    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(true);
    expect(await readCaBundles()).to.deep.equal([base64(caPem), base64(caPem)]);
  });

  it('rewrites a caBundle blanked after a sync', async () => {
    await createConfiguration();
    const sync = new CaBundleSync(client, name, logger);
    await sync.sync(caPem, AbortSignal.timeout(10_000));
    await client.request('PATCH', `${CONFIG_PATH}/${name}`, {
      body: [{ op: 'remove', path: '/webhooks/1/clientConfig/caBundle' }],
      contentType: JSON_PATCH,
    });
    expect(await readCaBundles()).to.deep.equal([base64(caPem), undefined]);

    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(true);
    expect(await readCaBundles()).to.deep.equal([base64(caPem), base64(caPem)]);
  });

  it('reports not in place while the configuration is missing', async () => {
    const sync = new CaBundleSync(client, name, logger);
    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(false);
    expect(sync.inPlace).to.equal(false);

    await createConfiguration();
    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(true);
    expect(sync.inPlace).to.equal(true);
  });

  it('reports not in place after the configuration is deleted', async () => {
    await createConfiguration(caPem);
    const sync = new CaBundleSync(client, name, logger);
    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(true);
    await client.request('DELETE', `${CONFIG_PATH}/${name}`);
    expect(await sync.sync(caPem, AbortSignal.timeout(10_000))).to.equal(false);
    expect(sync.inPlace).to.equal(false);
  });
});
