import { expect } from 'chai';
import { pino } from 'pino';
import WebSocket from 'ws';

import type { RunningAggregator } from '../../../aggregator/aggregator.ts';
import { getControlPlane, kubeConfigFor } from '../cluster.ts';
import {
  Cluster,
  SIDECAR_AUDIENCE,
  SidecarClient,
  startReadyAggregator,
  uniqueName,
  waitFor,
} from './kube-fixtures.ts';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Opens a WebSocket and returns the HTTP status of a rejected upgrade, or 101. */
function upgradeStatus(
  url: string,
  headers: Record<string, string>,
  protocols?: string[],
): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers, perMessageDeflate: false });
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    socket.once('error', reject);
  });
}

/** Opens a WebSocket that the server must reject, and returns the HTTP status and body. */
function upgradeRejection(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers, perMessageDeflate: false });
    socket.once('open', () => {
      socket.close();
      reject(new Error(`the upgrade to ${url} succeeded, expected a rejection`));
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    socket.once('error', reject);
  });
}

describe('aggregator authentication on a real API server', function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let aggregator: RunningAggregator;
  let namespace: string;
  const sidecars: SidecarClient[] = [];

  before(async function () {
    const kubeConfig = kubeConfigFor(getControlPlane());
    cluster = new Cluster(kubeConfig);
    namespace = await cluster.createNamespace('aggregator-auth');
    for (const account of ['trainer', 'reader', 'stranger']) {
      await cluster.createServiceAccount(namespace, account);
    }
    await cluster.grantTrainJobRead(namespace, 'reader');
    aggregator = await startReadyAggregator({ kubeConfig, logger });
  });

  after(async function () {
    for (const sidecar of sidecars) sidecar.close();
    await aggregator?.stop();
  });

  function sidecar(token: string | undefined): SidecarClient {
    const client = new SidecarClient(aggregator.url, token);
    sidecars.push(client);
    return client;
  }

  async function rejection(token: string | undefined): Promise<string> {
    return sidecar(token).opened.then(
      () => 'connected',
      (error: Error) => error.message,
    );
  }

  async function jobWithPod(): Promise<{
    name: string;
    pod: Awaited<ReturnType<Cluster['createPrimaryPod']>>;
  }> {
    const name = uniqueName('job');
    await cluster.createTrainJob(namespace, name);
    return { name, pod: await cluster.createPrimaryPod(namespace, name, 'trainer') };
  }

  describe('sidecars', function () {
    it('accepts a pod-bound token with the audience', async function () {
      const { name, pod } = await jobWithPod();
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
        pod,
      });
      const client = sidecar(token);
      expect(await client.hello(namespace, name, pod)).to.deep.equal({
        type: 'welcome',
        lastSeq: 0,
      });
    });

    it('rejects a missing token', async function () {
      expect(await rejection(undefined)).to.equal('HTTP 401');
    });

    it('rejects a token for another audience', async function () {
      const { pod } = await jobWithPod();
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: ['another-audience'],
        pod,
      });
      expect(await rejection(token)).to.equal('HTTP 401');
    });

    it('rejects a token bound to no pod', async function () {
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
      });
      expect(await rejection(token)).to.equal('HTTP 403');
    });

    it('rejects a token of a deleted pod', async function () {
      const { pod } = await jobWithPod();
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
        pod,
      });
      await cluster.core.deleteNamespacedPod({
        namespace,
        name: pod.metadata!.name!,
        gracePeriodSeconds: 0,
      });
      await waitFor(
        'the pod to be deleted',
        () =>
          cluster.core.readNamespacedPod({ namespace, name: pod.metadata!.name! }).then(
            () => false,
            () => true,
          ),
        (deleted) => deleted,
      );
      expect(await rejection(token)).to.match(/^HTTP 40[13]$/);
    });

    it('rechecks the pod of a cached token', async function () {
      const { name, pod } = await jobWithPod();
      const podName = pod.metadata!.name!;
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
        pod,
      });
      const ingestUrl = `${aggregator.url.replace(/^http/, 'ws')}/v1/ingest`;
      const headers = { Authorization: `Bearer ${token}` };

      // The first connection makes the aggregator cache the TokenReview of this token.
      const first = sidecar(token);
      expect(await first.hello(namespace, name, pod)).to.deep.equal({
        type: 'welcome',
        lastSeq: 0,
      });
      first.close();
      await first.closed;

      await cluster.core.deleteNamespacedPod({ namespace, name: podName, gracePeriodSeconds: 0 });
      await waitFor(
        'the pod to be deleted',
        () =>
          cluster.core.readNamespacedPod({ namespace, name: podName }).then(
            () => false,
            () => true,
          ),
        (deleted) => deleted,
      );
      // The API server rejects this token now, so these reasons can only come from the
      // aggregator's own pod check on the cached review.
      const deleted = await upgradeRejection(ingestUrl, headers);
      expect(deleted.status).to.equal(403);
      expect(deleted.body).to.include(`pod ${namespace}/${podName} not found`);

      const replacement = await cluster.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: podName, labels: pod.metadata!.labels! },
          spec: { serviceAccountName: 'trainer', containers: pod.spec!.containers },
        },
      });
      expect(replacement.metadata!.uid).to.not.equal(pod.metadata!.uid);
      const replaced = await upgradeRejection(ingestUrl, headers);
      expect(replaced.status).to.equal(403);
      expect(replaced.body).to.include(`has UID ${replacement.metadata!.uid}`);
      expect(replaced.body).to.include(`the pod with UID ${pod.metadata!.uid}`);
    });

    it('closes a stream that reports another TrainJob', async function () {
      const own = await jobWithPod();
      const other = await jobWithPod();
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
        pod: own.pod,
      });
      const client = sidecar(token);
      await client.hello(namespace, other.name, own.pod).catch(() => undefined);
      const closed = await client.closed;
      expect(closed.code).to.equal(4403);
      expect(closed.reason).to.include(own.name);
      expect(await cluster.readStatusAnnotation(namespace, other.name)).to.equal(undefined);
    });

    it('closes a stream that claims another pod', async function () {
      const own = await jobWithPod();
      const other = await jobWithPod();
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
        pod: own.pod,
      });
      const client = sidecar(token);
      await client.hello(namespace, other.name, other.pod).catch(() => undefined);
      expect((await client.closed).code).to.equal(4403);
    });
  });

  describe('viewers', function () {
    let job: string;

    before(async function () {
      const { name, pod } = await jobWithPod();
      job = name;
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
        pod,
      });
      const client = sidecar(token);
      await client.hello(namespace, name, pod);
      await client.sample({ progressPercentage: 12 });
    });

    function watchUrl(name?: string): string {
      const query = new URLSearchParams({ namespace, ...(name === undefined ? {} : { name }) });
      return `${aggregator.url.replace('http', 'ws')}/v1/watch?${query.toString()}`;
    }

    it('lets a user with get on trainjobs watch a job', async function () {
      const token = await cluster.requestToken(namespace, 'reader');
      expect(await upgradeStatus(watchUrl(job), { Authorization: `Bearer ${token}` })).to.equal(
        101,
      );
    });

    it('lets a user with get on trainjobs watch the namespace', async function () {
      const token = await cluster.requestToken(namespace, 'reader');
      expect(await upgradeStatus(watchUrl(), { Authorization: `Bearer ${token}` })).to.equal(101);
    });

    it('accepts the token as a WebSocket subprotocol', async function () {
      const token = await cluster.requestToken(namespace, 'reader');
      const protocols = [
        'trainjob-progress.v1',
        `base64url.bearer.authorization.k8s.io.${Buffer.from(token).toString('base64url')}`,
      ];
      expect(await upgradeStatus(watchUrl(job), {}, protocols)).to.equal(101);
    });

    it('rejects a user without get on trainjobs', async function () {
      const token = await cluster.requestToken(namespace, 'stranger');
      expect(await upgradeStatus(watchUrl(job), { Authorization: `Bearer ${token}` })).to.equal(
        403,
      );
    });

    it('rejects a one-job viewer namespace-wide', async function () {
      // This account may get the one TrainJob by name, and has no list, watch or get on
      // trainjobs in the namespace.
      const account = uniqueName('one-job');
      await cluster.createServiceAccount(namespace, account);
      await cluster.rbac.createNamespacedRole({
        namespace,
        body: {
          metadata: { name: account },
          rules: [
            {
              apiGroups: ['trainer.kubeflow.org'],
              resources: ['trainjobs'],
              resourceNames: [job],
              verbs: ['get'],
            },
          ],
        },
      });
      await cluster.rbac.createNamespacedRoleBinding({
        namespace,
        body: {
          metadata: { name: account },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: account },
          subjects: [{ kind: 'ServiceAccount', name: account, namespace }],
        },
      });
      const token = await cluster.requestToken(namespace, account);
      const headers = { Authorization: `Bearer ${token}` };

      expect(await upgradeStatus(watchUrl(job), headers)).to.equal(101);
      const denied = await upgradeRejection(watchUrl(), headers);
      expect(denied.status).to.equal(403);
      expect(denied.body).to.include(`may not get trainjobs in namespace ${namespace}`);
    });

    it('rejects a viewer without a token', async function () {
      expect(await upgradeStatus(watchUrl(job), {})).to.equal(401);
    });

    it('rejects a sidecar token as a viewer token', async function () {
      const { pod } = await jobWithPod();
      const token = await cluster.requestToken(namespace, 'trainer', {
        audiences: [SIDECAR_AUDIENCE],
        pod,
      });
      expect(await upgradeStatus(watchUrl(job), { Authorization: `Bearer ${token}` })).to.equal(
        401,
      );
    });

    it('serves the JSON API to an authorized user only', async function () {
      const url = `${aggregator.url}/v1/namespaces/${namespace}/trainjobs/${job}`;
      const reader = await cluster.requestToken(namespace, 'reader');
      const stranger = await cluster.requestToken(namespace, 'stranger');
      const allowed = await fetch(url, { headers: { Authorization: `Bearer ${reader}` } });
      const body = (await allowed.json()) as {
        job: { status: { progressPercentage: number } };
        history: unknown[];
      };
      expect(allowed.status).to.equal(200);
      expect(body.job.status.progressPercentage).to.equal(12);
      expect(body.history).to.have.length(1);
      expect(
        (await fetch(url, { headers: { Authorization: `Bearer ${stranger}` } })).status,
      ).to.equal(403);
    });
  });
});
