import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApiException,
  ApiextensionsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  VersionApi,
  type V1TokenReview,
} from '@kubernetes/client-node';
import { expect } from 'chai';
import { getControlPlane, kubeConfigFor, type ControlPlane } from './cluster.ts';

const TRAINJOB = {
  group: 'trainer.kubeflow.org',
  version: 'v1alpha1',
  plural: 'trainjobs',
} as const;
const AUDIENCE = 'trainjob-progress-test';
const POD_DELETION_TIMEOUT_MS = 5000;

interface TrainJob {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec: { runtimeRef: { name: string } };
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
}

describe('local control plane', function () {
  let controlPlane: ControlPlane;
  let core: CoreV1Api;
  let authentication: AuthenticationV1Api;
  let customObjects: CustomObjectsApi;
  const namespace = `control-plane-${randomBytes(4).toString('hex')}`;

  before(async function () {
    controlPlane = getControlPlane();
    const kubeConfig = kubeConfigFor(controlPlane);
    core = kubeConfig.makeApiClient(CoreV1Api);
    authentication = kubeConfig.makeApiClient(AuthenticationV1Api);
    customObjects = kubeConfig.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  async function createServiceAccount(name: string): Promise<void> {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  }

  function reviewToken(token: string, audiences = [AUDIENCE]): Promise<V1TokenReview> {
    return authentication.createTokenReview({ body: { spec: { token, audiences } } });
  }

  it('reports the pinned version', async function () {
    const info = await kubeConfigFor(controlPlane).makeApiClient(VersionApi).getCode();

    expect(info.gitVersion).to.equal(controlPlane.version);
    expect(info.gitVersion).to.match(/^v1\.\d+\.\d+$/);
    const [major, minor] = controlPlane.version.slice(1).split('.');
    expect(info.major).to.equal(major);
    expect(info.minor).to.equal(minor);
  });

  it('establishes the TrainJob CRD', async function () {
    const api = kubeConfigFor(controlPlane).makeApiClient(ApiextensionsV1Api);
    const crd = await api.readCustomResourceDefinition({ name: 'trainjobs.trainer.kubeflow.org' });

    const established = crd.status?.conditions?.find(
      (condition) => condition.type === 'Established',
    );
    expect(established?.status).to.equal('True');
    const version = crd.spec.versions.find((candidate) => candidate.name === TRAINJOB.version);
    expect(version?.served).to.equal(true);
    expect(version?.subresources?.status).to.not.equal(undefined);
  });

  it('writes TrainJob status conditions', async function () {
    const body: TrainJob = {
      apiVersion: `${TRAINJOB.group}/${TRAINJOB.version}`,
      kind: 'TrainJob',
      metadata: { name: 'minimal' },
      spec: { runtimeRef: { name: 'torch-distributed' } },
    };
    const created = (await customObjects.createNamespacedCustomObject({
      ...TRAINJOB,
      namespace,
      body,
    })) as TrainJob;
    expect(created.status?.conditions).to.equal(undefined);

    const condition = {
      type: 'Created',
      status: 'True',
      reason: 'JobsCreated',
      message: 'set by the control plane test',
      lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    await customObjects.replaceNamespacedCustomObjectStatus({
      ...TRAINJOB,
      namespace,
      name: 'minimal',
      body: { ...created, status: { conditions: [condition] } },
    });

    const stored = (await customObjects.getNamespacedCustomObject({
      ...TRAINJOB,
      namespace,
      name: 'minimal',
    })) as TrainJob;
    expect(stored.status?.conditions).to.have.lengthOf(1);
    expect(stored.status?.conditions?.[0]).to.include({ type: 'Created', status: 'True' });
    expect(stored.spec.runtimeRef.name).to.equal('torch-distributed');
  });

  it('rejects an invalid TrainJob condition', async function () {
    const body: TrainJob = {
      apiVersion: `${TRAINJOB.group}/${TRAINJOB.version}`,
      kind: 'TrainJob',
      metadata: { name: 'invalid-condition' },
      spec: { runtimeRef: { name: 'torch-distributed' } },
    };
    const created = (await customObjects.createNamespacedCustomObject({
      ...TRAINJOB,
      namespace,
      body,
    })) as TrainJob;
    // The CRD's schema allows only True, False and Unknown, and requires lastTransitionTime.
    const condition = { type: 'Created', status: 'Maybe', reason: 'Test', message: '' };

    const error: unknown = await customObjects
      .replaceNamespacedCustomObjectStatus({
        ...TRAINJOB,
        namespace,
        name: 'invalid-condition',
        body: { ...created, status: { conditions: [condition] } },
      })
      .then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
    expect(error).to.be.instanceOf(ApiException);
    expect((error as ApiException<string>).code).to.equal(422);
  });

  it('accepts a TokenRequest token', async function () {
    await createServiceAccount('reader');

    const request = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'reader',
      body: { spec: { audiences: [AUDIENCE], expirationSeconds: 600 } },
    });
    const token = request.status?.token ?? '';
    const review = await reviewToken(token);

    expect(review.status?.authenticated).to.equal(true);
    expect(review.status?.user?.username).to.equal(`system:serviceaccount:${namespace}:reader`);
    expect(review.status?.audiences).to.deep.equal([AUDIENCE]);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      iss: string;
    };
    expect(claims.iss).to.equal(controlPlane.serviceAccountIssuer);
  });

  it('rejects a token for another audience', async function () {
    await createServiceAccount('other-audience');
    const request = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'other-audience',
      body: { spec: { audiences: ['another-audience'] } },
    });

    const review = await reviewToken(request.status?.token ?? '');

    expect(review.status?.authenticated).to.not.equal(true);
  });

  describe('pod-bound token', function () {
    const serviceAccountName = 'trainer';

    before(async function () {
      await createServiceAccount(serviceAccountName);
    });

    // Creates a pod that stays Pending, because no scheduler or kubelet runs, and returns a
    // token bound to it.
    async function createPodBoundToken(podName: string): Promise<string> {
      const pod = await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: podName },
          spec: {
            serviceAccountName,
            containers: [{ name: 'trainer', image: 'registry.invalid/trainer:never-pulled' }],
          },
        },
      });
      const request = await core.createNamespacedServiceAccountToken({
        namespace,
        name: serviceAccountName,
        body: {
          spec: {
            audiences: [AUDIENCE],
            boundObjectRef: {
              apiVersion: 'v1',
              kind: 'Pod',
              name: podName,
              uid: pod.metadata?.uid,
            },
          },
        },
      });
      return request.status?.token ?? '';
    }

    it('carries the pod name', async function () {
      const token = await createPodBoundToken('trainer-node-0');

      const review = await reviewToken(token);

      expect(review.status?.authenticated).to.equal(true);
      const extra = review.status?.user?.extra ?? {};
      expect(extra['authentication.kubernetes.io/pod-name']).to.deep.equal(['trainer-node-0']);
      const pod = await core.readNamespacedPod({ namespace, name: 'trainer-node-0' });
      expect(extra['authentication.kubernetes.io/pod-uid']).to.deep.equal([pod.metadata?.uid]);
      expect(pod.status?.phase).to.equal('Pending');
    });

    it('stops validating after pod deletion', async function () {
      const token = await createPodBoundToken('trainer-node-1');

      // A pod without a node has no kubelet to wait for, so the API server removes it at once.
      await core.deleteNamespacedPod({ namespace, name: 'trainer-node-1', gracePeriodSeconds: 0 });
      const lookup: unknown = await core
        .readNamespacedPod({ namespace, name: 'trainer-node-1' })
        .then(
          () => undefined,
          (rejection: unknown) => rejection,
        );
      expect((lookup as ApiException<string>).code).to.equal(404);

      // The token authenticator reads pods from an informer cache, which receives the deletion
      // a moment later. This token was never reviewed before, so kube-apiserver's cache of
      // successful authentications (10 s by default) has no entry for it.
      const deadline = Date.now() + POD_DELETION_TIMEOUT_MS;
      let review = await reviewToken(token);
      while (review.status?.authenticated === true && Date.now() < deadline) {
        await sleep(100);
        review = await reviewToken(token);
      }

      expect(review.status?.authenticated).to.not.equal(true);
    });
  });
});
