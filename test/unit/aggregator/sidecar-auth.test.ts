import { createServer, type Server } from 'node:http';

import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { pino } from 'pino';

import { checkTokenPod, KubernetesSidecarAuthenticator } from '../../../aggregator/sidecar-auth.ts';
import {
  JOBSET_NAME_LABEL,
  REPLICATED_JOB_NAME_LABEL,
  TRAINER_REPLICATED_JOB,
} from '../../../shared/annotations.ts';

/** A JWT-shaped token that the fake API server's TokenReview rejects. */
const UNKNOWN_JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

describe('sidecar authentication', () => {
  let server: Server;
  let reviews = 0;
  let authenticator: KubernetesSidecarAuthenticator;

  beforeEach(async () => {
    reviews = 0;
    server = createServer((request, response) => {
      if (request.url?.startsWith('/apis/authentication.k8s.io/v1/tokenreviews') === true) {
        reviews++;
      }
      request.resume();
      response.writeHead(201, { 'Content-Type': 'application/json' });
      response.end(
        JSON.stringify({
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          status: { authenticated: false, error: 'invalid bearer token' },
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const kubeConfig = new KubeConfig();
    // client-node 2.0 refuses an http:// server unless skipTLSVerify is set.
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'aggregator' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'aggregator' }],
      currentContext: 'fake',
    });
    authenticator = new KubernetesSidecarAuthenticator(kubeConfig, {
      audience: 'trainjob-progress',
      cacheSeconds: 60,
      logger: pino({ level: 'silent' }),
    });
  });

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('rejects a non-JWT token without a review', async () => {
    const result = await authenticator.authenticate('garbage');
    expect(result).to.deep.include({ ok: false, status: 401 });
    expect(reviews).to.equal(0);
  });

  it('reviews a rejected token once', async () => {
    for (let i = 0; i < 5; i++) {
      expect(await authenticator.authenticate(UNKNOWN_JWT)).to.deep.include({
        ok: false,
        status: 401,
      });
    }
    expect(reviews).to.equal(1);
  });
});

describe('sidecar pod check', () => {
  const claims = {
    namespace: 'team-a',
    serviceAccount: 'trainer',
    podName: 'bert-node-0-0',
    podUid: 'uid-1',
  };

  function pod(uid: string, labels: Record<string, string>): V1Pod {
    return { metadata: { name: claims.podName, namespace: claims.namespace, uid, labels } };
  }

  const trainerLabels = {
    [JOBSET_NAME_LABEL]: 'bert',
    [REPLICATED_JOB_NAME_LABEL]: TRAINER_REPLICATED_JOB,
  };

  it('accepts the trainer pod with the token UID', () => {
    expect(checkTokenPod(claims, pod('uid-1', trainerLabels))).to.deep.equal({
      ok: true,
      identity: { ...claims, trainJob: 'bert' },
    });
  });

  it('rejects a missing pod', () => {
    expect(checkTokenPod(claims, undefined)).to.deep.equal({
      ok: false,
      status: 403,
      reason: 'pod team-a/bert-node-0-0 not found',
    });
  });

  it('rejects a pod with another UID', () => {
    const result = checkTokenPod(claims, pod('uid-2', trainerLabels));
    expect(result).to.deep.include({ ok: false, status: 403 });
    expect(result.ok ? '' : result.reason).to.equal(
      'pod team-a/bert-node-0-0 has UID uid-2, but the token belongs to the pod with UID uid-1',
    );
  });

  it('rejects a pod without UID', () => {
    const result = checkTokenPod(claims, { metadata: { name: claims.podName } });
    expect(result).to.deep.include({ ok: false, status: 403 });
    expect(result.ok ? '' : result.reason).to.include('has UID none');
  });

  it('rejects a pod without JobSet name', () => {
    const cases: Record<string, string>[] = [{}, { [JOBSET_NAME_LABEL]: '' }];
    for (const labels of cases) {
      const result = checkTokenPod(claims, pod('uid-1', labels));
      expect(result).to.deep.include({ ok: false, status: 403 });
      expect(result.ok ? '' : result.reason).to.include(`has no ${JOBSET_NAME_LABEL} label`);
    }
  });

  it('rejects a pod of another replicated job', () => {
    const labels = { ...trainerLabels, [REPLICATED_JOB_NAME_LABEL]: 'dataset-initializer' };
    const result = checkTokenPod(claims, pod('uid-1', labels));
    expect(result).to.deep.include({ ok: false, status: 403 });
    expect(result.ok ? '' : result.reason).to.include(`is not a ${TRAINER_REPLICATED_JOB} pod`);
  });
});
