import { expect } from 'chai';
import { buildMutatingWebhookConfiguration } from '../../../webhook/registration.ts';

describe('webhook/registration', () => {
  const [webhook] = buildMutatingWebhookConfiguration({
    name: 'tp',
    target: { url: 'https://127.0.0.1:9443/mutate' },
    caBundlePem: 'PEM',
    ownNamespace: 'tp-system',
  }).webhooks as Record<string, unknown>[];

  it('registers pod CREATE only', () => {
    expect(webhook!.rules).to.deep.equal([
      {
        operations: ['CREATE'],
        apiGroups: [''],
        apiVersions: ['v1'],
        resources: ['pods'],
        scope: 'Namespaced',
      },
    ]);
  });

  it('never blocks pods and has no side effects', () => {
    expect(webhook).to.deep.include({
      failurePolicy: 'Ignore',
      sideEffects: 'None',
      timeoutSeconds: 5,
      admissionReviewVersions: ['v1'],
    });
  });

  it('selects only JobSet pods', () => {
    expect(webhook!.objectSelector).to.deep.equal({
      matchExpressions: [{ key: 'jobset.sigs.k8s.io/jobset-name', operator: 'Exists' }],
    });
  });

  it('excludes system namespaces and its own', () => {
    expect(webhook!.namespaceSelector).to.deep.equal({
      matchExpressions: [
        {
          key: 'kubernetes.io/metadata.name',
          operator: 'NotIn',
          values: ['kube-system', 'kube-public', 'kube-node-lease', 'tp-system'],
        },
      ],
    });
  });

  it('uses a URL with the caBundle', () => {
    expect(webhook!.clientConfig).to.deep.equal({
      url: 'https://127.0.0.1:9443/mutate',
      caBundle: Buffer.from('PEM').toString('base64'),
    });
  });

  it('uses a Service reference on /mutate', () => {
    const [serviceWebhook] = buildMutatingWebhookConfiguration({
      name: 'tp',
      target: { service: { namespace: 'ns', name: 'svc' } },
    }).webhooks as Record<string, unknown>[];
    expect(serviceWebhook!.clientConfig).to.deep.equal({
      service: { path: '/mutate', port: 443, namespace: 'ns', name: 'svc' },
    });
  });

  it('rejects a timeout above 10 s', () => {
    expect(() =>
      buildMutatingWebhookConfiguration({
        name: 'tp',
        target: { url: 'https://x' },
        timeoutSeconds: 11,
      }),
    ).to.throw(RangeError, 'invalid timeoutSeconds 11');
  });
});
