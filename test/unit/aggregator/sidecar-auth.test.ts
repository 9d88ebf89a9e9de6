import { createServer, type Server } from 'node:http';

import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { pino } from 'pino';

import { KubernetesSidecarAuthenticator } from '../../../aggregator/sidecar-auth.ts';

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
