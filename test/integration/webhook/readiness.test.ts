// Readiness of the real webhook against a real kube-apiserver: /readyz stays 503 until the
// MutatingWebhookConfiguration exists and carries the webhook's caBundle.

import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import { KubeClient } from '../../../webhook/kube-client.ts';
import { buildMutatingWebhookConfiguration } from '../../../webhook/registration.ts';
import { startWebhook, type RunningWebhook } from '../../../webhook/start-webhook.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import { createNamespace, deleteNamespace, uniqueName, waitFor } from './kube-objects.ts';

const CONFIG_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

function getReadyz(webhook: RunningWebhook): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(`https://127.0.0.1:${webhook.port}/readyz`, { ca: webhook.caCertPem }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('webhook readiness against kube-apiserver', function () {
  this.timeout(60_000);

  it('becomes ready once its configuration exists', async () => {
    const client = new KubeClient(kubeConfigFor(getControlPlane()));
    const systemNamespace = uniqueName('tp-readiness');
    await createNamespace(client, systemNamespace);
    const configName = uniqueName('trainjob-progress-readiness');
    // The reconcile interval keeps its default of 30 s, so readiness within seconds must come
    // from the one-second checks that run while the caBundle is not in place.
    const webhook = await startWebhook({
      kubeConfig: kubeConfigFor(getControlPlane()),
      listen: { host: '127.0.0.1', port: 0 },
      namespace: systemNamespace,
      webhookConfigName: configName,
      aggregatorUrl: 'ws://127.0.0.1:9/v1/ingest',
      sidecarImage: 'registry.example/trainjob-progress:test',
      shutdownDelayMs: 0,
      logger: createLogger('webhook-test', 'silent'),
    });

    try {
      const waitingForCaBundle = `not ready: waiting for caBundle of ${configName}`;
      await waitFor('the TrainJob cache to sync', 10_000, async () => {
        return (await getReadyz(webhook)).body === waitingForCaBundle;
      });
      // Long enough for a backing-off check to stretch past the few seconds allowed below.
      await sleep(8_000);
      const waiting = await getReadyz(webhook);
      expect(waiting.status).to.equal(503);
      expect(waiting.body).to.equal(waitingForCaBundle);
      expect(webhook.isReady()).to.equal(false);

      const configuration = buildMutatingWebhookConfiguration({
        name: configName,
        target: { url: webhook.url },
        ownNamespace: systemNamespace,
      });
      const [entry] = configuration.webhooks as Record<string, unknown>[];
      entry!.namespaceSelector = { matchLabels: { 'trainjob-progress.test/none': 'true' } };
      await client.request('POST', CONFIG_PATH, { body: configuration });
      const createdAt = Date.now();

      await waitFor('/readyz to answer 200', 3_000, async () => {
        return (await getReadyz(webhook)).status === 200;
      });
      expect(Date.now() - createdAt).to.be.below(3_000);
      expect(webhook.isReady()).to.equal(true);
      const stored = (await client.request('GET', `${CONFIG_PATH}/${configName}`)) as {
        webhooks: { clientConfig: { caBundle?: string } }[];
      };
      expect(stored.webhooks[0]?.clientConfig.caBundle).to.equal(
        Buffer.from(webhook.caCertPem).toString('base64'),
      );
    } finally {
      await webhook.stop();
      await client.request('DELETE', `${CONFIG_PATH}/${configName}`).catch(() => undefined);
      await deleteNamespace(client, systemNamespace);
    }
  });
});
