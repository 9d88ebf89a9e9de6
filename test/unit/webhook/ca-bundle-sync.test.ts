import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import { CaBundleSync } from '../../../webhook/ca-bundle-sync.ts';
import { JSON_PATCH } from '../../../webhook/kube-client.ts';
import { buildMutatingWebhookConfiguration } from '../../../webhook/registration.ts';
import { FakeKube } from './fake-kube.ts';

const PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tp';
const CA = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
const signal = AbortSignal.timeout(5000);

function configuration(caBundlePem?: string): Record<string, unknown> {
  const object = buildMutatingWebhookConfiguration({
    name: 'tp',
    target: { service: { namespace: 'ns', name: 'svc' } },
    ...(caBundlePem === undefined ? {} : { caBundlePem }),
  });
  (object.webhooks as unknown[]).push({
    ...(object.webhooks as Record<string, unknown>[])[0],
    name: 'second.example.com',
  });
  return object;
}

describe('webhook/ca-bundle-sync', () => {
  it('writes a missing caBundle into every webhook', async () => {
    const kube = new FakeKube();
    kube.objects.set(PATH, configuration());
    let repairs = 0;
    const sync = new CaBundleSync(kube, 'tp', createLogger('test', 'silent'), () => repairs++);
    expect(await sync.sync(CA, signal)).to.equal(true);
    const patch = kube.calls.find((call) => call.method === 'PATCH')!;
    expect(patch.contentType).to.equal(JSON_PATCH);
    const wanted = Buffer.from(CA).toString('base64');
    expect(patch.body).to.deep.equal([
      { op: 'test', path: '/webhooks/0/name', value: 'pods.trainjob-progress.opendatahub.io' },
      { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: wanted },
      { op: 'test', path: '/webhooks/1/name', value: 'second.example.com' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: wanted },
    ]);
    expect(repairs).to.equal(1);
    expect(sync.inPlace).to.equal(true);
  });

  it('sends no patch when the caBundle is correct', async () => {
    const kube = new FakeKube();
    kube.objects.set(PATH, configuration(CA));
    const sync = new CaBundleSync(kube, 'tp', createLogger('test', 'silent'));
    expect(await sync.sync(CA, signal)).to.equal(true);
    expect(kube.calls.map((call) => call.method)).to.deep.equal(['GET']);
  });

  it('replaces a drifted caBundle', async () => {
    const kube = new FakeKube();
    kube.objects.set(
      PATH,
      configuration('-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n'),
    );
    await new CaBundleSync(kube, 'tp', createLogger('test', 'silent')).sync(CA, signal);
    const webhooks = (
      kube.objects.get(PATH) as { webhooks: { clientConfig: { caBundle: string } }[] }
    ).webhooks;
    expect(webhooks.map((w) => w.clientConfig.caBundle)).to.deep.equal([
      Buffer.from(CA).toString('base64'),
      Buffer.from(CA).toString('base64'),
    ]);
  });

  it('reports not in place while the configuration is missing', async () => {
    const sync = new CaBundleSync(new FakeKube(), 'tp', createLogger('test', 'silent'));
    expect(await sync.sync(CA, signal)).to.equal(false);
    expect(sync.inPlace).to.equal(false);
  });
});
