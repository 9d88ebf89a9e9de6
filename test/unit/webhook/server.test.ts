import https from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import { AdmissionHandler, type TrainJobLookupSource } from '../../../webhook/admission-handler.ts';
import { WebhookMetrics } from '../../../webhook/metrics.ts';
import {
  createWebhookServer,
  MAX_REQUEST_BODY_BYTES,
  reviewBudgetMs,
} from '../../../webhook/server.ts';
import {
  admissionRequest,
  DEFAULTS,
  jobSetPod,
  optedIn,
  reviewBody,
  SIDECAR_OPTIONS,
} from './fixtures.ts';
import { createTestTls, type TestTls } from './tls-fixture.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

describe('webhook/server', () => {
  let tls: TestTls;
  let server: https.Server;
  let port: number;
  let pendingReadiness: string[];
  let lookup: TrainJobLookupSource['lookup'];
  let metrics: WebhookMetrics;

  before(async () => {
    tls = await createTestTls();
  });

  beforeEach(async () => {
    pendingReadiness = [];
    lookup = () => ({ status: 'found', trainJob: optedIn('llama') });
    metrics = new WebhookMetrics({
      ready: () => pendingReadiness.length === 0,
      cacheSynced: () => true,
      cachedTrainJobs: () => 1,
      certificateNotAfterSeconds: () => 1_900_000_000,
    });
    const logger = createLogger('webhook-test', 'silent');
    const handler = new AdmissionHandler({
      defaults: DEFAULTS,
      sidecar: SIDECAR_OPTIONS,
      trainJobs: { lookup: (reference) => lookup(reference) },
      metrics,
      logger,
    });
    server = createWebhookServer({
      handler,
      metrics,
      logger,
      readiness: { pending: () => pendingReadiness },
      tls: tls.serving,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function send(
    method: string,
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const request = https.request(
        { host: '127.0.0.1', port, method, path, ca: tls.ca.certificatePem, headers },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  const postJson = (body: string, path = '/mutate'): Promise<Answer> =>
    send('POST', path, body, { 'Content-Type': 'application/json' });
  const review = (pod: unknown = jobSetPod()): string =>
    JSON.stringify(reviewBody(admissionRequest(pod)));

  it('answers a review with HTTP 200 and the uid', async () => {
    const answer = await postJson(review());
    expect(answer.status).to.equal(200);
    expect(answer.headers['content-type']).to.equal('application/json');
    const body = JSON.parse(answer.text) as {
      apiVersion: string;
      kind: string;
      response: { uid: string; allowed: boolean; patchType: string };
    };
    expect(body.apiVersion).to.equal('admission.k8s.io/v1');
    expect(body.kind).to.equal('AdmissionReview');
    expect(body.response.uid).to.equal(admissionRequest(null).uid);
    expect(body.response.allowed).to.equal(true);
    expect(body.response.patchType).to.equal('JSONPatch');
  });

  it('echoes the uid of a skipped pod', async () => {
    const answer = await postJson(
      JSON.stringify(
        reviewBody(admissionRequest(jobSetPod({ replicatedJob: 'launcher' }), { uid: 'skip-uid' })),
      ),
    );
    const body = JSON.parse(answer.text) as { response: Record<string, unknown> };
    expect(body.response).to.deep.equal({ uid: 'skip-uid', allowed: true });
  });

  it('accepts a JSON content type with charset', async () => {
    const answer = await send('POST', '/mutate', review(), {
      'Content-Type': 'application/json; charset=utf-8',
    });
    expect(answer.status).to.equal(200);
  });

  it('rejects malformed JSON with 400', async () => {
    const answer = await postJson('{"apiVersion":');
    expect(answer.status).to.equal(400);
    expect(answer.text).to.match(/^invalid AdmissionReview: /);
  });

  it('rejects another apiVersion with 400', async () => {
    const answer = await postJson(
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1beta1',
        kind: 'AdmissionReview',
        request: { uid: 'x' },
      }),
    );
    expect(answer.status).to.equal(400);
    expect(answer.text).to.contain('expected admission.k8s.io/v1 AdmissionReview');
  });

  it('rejects a review without uid with 400', async () => {
    const answer = await postJson(
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }),
    );
    expect(answer.status).to.equal(400);
    expect(answer.text).to.contain('missing request.uid');
  });

  it('survives an apiVersion object without toString', async () => {
    const first = await postJson(
      '{"apiVersion":{"toString":1},"kind":"AdmissionReview","request":{"uid":"a"}}',
    );
    expect(first.status).to.equal(400);
    expect(first.text).to.contain('found apiVersion of type object');
    const second = await postJson(review());
    expect(second.status).to.equal(200);
    expect((JSON.parse(second.text) as { response: { uid: string } }).response.uid).to.equal(
      admissionRequest(null).uid,
    );
  });

  it('allows the pod when the handler throws', async () => {
    lookup = () => {
      throw new Error('cache exploded');
    };
    const answer = await postJson(review());
    expect(answer.status).to.equal(200);
    const body = JSON.parse(answer.text) as {
      response: { uid: string; allowed: boolean; patch?: string; warnings: string[] };
    };
    expect(body.response.uid).to.equal(admissionRequest(null).uid);
    expect(body.response.allowed).to.equal(true);
    expect(body.response.patch).to.equal(undefined);
    expect(body.response.warnings).to.deep.equal([
      'trainjob-progress: sidecar not injected: internal error in the webhook',
    ]);
    expect(metrics.admissions.value(['error', 'internal'])).to.equal(1);
  });

  it('allows the pod when the lookup rejects', async () => {
    lookup = () => Promise.reject(new Error('watch failed'));
    const answer = await postJson(review());
    expect(answer.status).to.equal(200);
    const body = JSON.parse(answer.text) as { response: { allowed: boolean; patch?: string } };
    expect(body.response.allowed).to.equal(true);
    expect(body.response.patch).to.equal(undefined);
    expect(metrics.admissions.value(['error', 'internal'])).to.equal(1);
  });

  it('survives malformed HTTP and a failed TLS handshake', async () => {
    const malformed = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: tls.ca.certificatePem }, () =>
        socket.write('NOT HTTP AT ALL\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(malformed).to.match(/^HTTP\/1\.1 400 Bad Request\r\n/);

    await new Promise<void>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port }, () =>
        socket.write('GET / HTTP/1.1\r\n\r\n'),
      );
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });

    expect((await send('GET', '/healthz')).status).to.equal(200);
  });

  it('rejects a JSON array with 400', async () => {
    const answer = await postJson('[]');
    expect(answer.status).to.equal(400);
  });

  it('rejects another content type with 415', async () => {
    const answer = await send('POST', '/mutate', review(), { 'Content-Type': 'application/yaml' });
    expect(answer.status).to.equal(415);
    expect(answer.text).to.contain('expected application/json');
  });

  it('rejects a missing content type with 415', async () => {
    const answer = await send('POST', '/mutate', review());
    expect(answer.status).to.equal(415);
  });

  it('rejects a declared oversized body with 413', async () => {
    const answer = await send('POST', '/mutate', 'x', {
      'Content-Type': 'application/json',
      'Content-Length': String(MAX_REQUEST_BODY_BYTES + 1),
    });
    expect(answer.status).to.equal(413);
  });

  it('rejects a chunked oversized body with 413', async () => {
    const answer = await send(
      'POST',
      '/mutate',
      Buffer.alloc(MAX_REQUEST_BODY_BYTES + 1024, 0x20),
      { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
    );
    expect(answer.status).to.equal(413);
  });

  it('counts rejected requests by status', async () => {
    await send('POST', '/mutate', review(), { 'Content-Type': 'text/plain' });
    expect(metrics.rejectedRequests.value(['415'])).to.equal(1);
  });

  it('rejects GET /mutate with 405', async () => {
    const answer = await send('GET', '/mutate');
    expect(answer.status).to.equal(405);
    expect(answer.headers.allow).to.equal('POST');
  });

  it('answers unknown paths with 404', async () => {
    expect((await send('GET', '/nope')).status).to.equal(404);
  });

  it('serves /healthz', async () => {
    const answer = await send('GET', '/healthz');
    expect(answer.status).to.equal(200);
    expect(answer.text).to.equal('ok');
  });

  it('serves /readyz with 503 while pending', async () => {
    pendingReadiness = ['TrainJob cache'];
    const answer = await send('GET', '/readyz');
    expect(answer.status).to.equal(503);
    expect(answer.text).to.equal('not ready: waiting for TrainJob cache');
  });

  it('serves /readyz with 200 when ready', async () => {
    expect((await send('GET', '/readyz')).status).to.equal(200);
  });

  it('serves /metrics with results, reasons and latency', async () => {
    await postJson(review());
    await postJson(review(jobSetPod({ replicatedJob: 'dataset-initializer' })));
    const answer = await send('GET', '/metrics');
    expect(answer.status).to.equal(200);
    expect(answer.headers['content-type']).to.contain('text/plain; version=0.0.4');
    expect(answer.text).to.contain(
      'trainjob_progress_webhook_admissions_total{result="injected",reason="injected"} 1',
    );
    expect(answer.text).to.contain(
      'trainjob_progress_webhook_admissions_total{result="skipped",reason="initializer"} 1',
    );
    expect(answer.text).to.contain('trainjob_progress_webhook_admission_duration_seconds_count 2');
    expect(answer.text).to.contain('trainjob_progress_webhook_ready 1');
  });

  it('answers without a patch before the request timeout', async () => {
    lookup = () => new Promise(() => undefined);
    const startedAt = Date.now();
    const answer = await postJson(review(), '/mutate?timeout=1s');
    const elapsedMs = Date.now() - startedAt;
    expect(answer.status).to.equal(200);
    expect(elapsedMs).to.be.below(1000);
    const body = JSON.parse(answer.text) as {
      response: { allowed: boolean; patch?: string; warnings: string[] };
    };
    expect(body.response.allowed).to.equal(true);
    expect(body.response.patch).to.equal(undefined);
    expect(body.response.warnings[0]).to.contain('took longer than');
    expect(metrics.admissions.value(['error', 'timeout'])).to.equal(1);
  });

  it('allows the pod when the lookup fails', async () => {
    lookup = () =>
      Promise.resolve({
        status: 'failed',
        message: 'reading TrainJob team-a/llama failed: HTTP 500',
      });
    const body = JSON.parse((await postJson(review())).text) as {
      response: { allowed: boolean; patch?: string; warnings: string[] };
    };
    expect(body.response.allowed).to.equal(true);
    expect(body.response.patch).to.equal(undefined);
    expect(body.response.warnings).to.deep.equal([
      'trainjob-progress: sidecar not injected: reading TrainJob team-a/llama failed: HTTP 500',
    ]);
  });

  it('allows a pod of the wrong shape with a warning', async () => {
    const pod = jobSetPod();
    (pod.spec as Record<string, unknown>).volumes = 'not-a-list';
    const body = JSON.parse((await postJson(review(pod))).text) as {
      response: { allowed: boolean; patch?: string; warnings: string[] };
    };
    expect(body.response.allowed).to.equal(true);
    expect(body.response.patch).to.equal(undefined);
    expect(body.response.warnings[0]).to.contain('/spec/volumes is not an array');
  });

  it('skips an UPDATE without looking up', async () => {
    let lookups = 0;
    lookup = () => {
      lookups++;
      return { status: 'not-found' };
    };
    const body = JSON.stringify(reviewBody(admissionRequest(jobSetPod(), { operation: 'UPDATE' })));
    const answer = JSON.parse((await postJson(body)).text) as { response: Record<string, unknown> };
    expect(answer.response.patch).to.equal(undefined);
    expect(lookups).to.equal(0);
    expect(metrics.admissions.value(['skipped', 'not-pod-create'])).to.equal(1);
  });

  describe('reviewBudgetMs', () => {
    it('keeps a tenth of 10s back', () => {
      expect(reviewBudgetMs('/mutate?timeout=10s')).to.equal(9000);
    });

    it('keeps at least 100 ms back', () => {
      expect(reviewBudgetMs('/mutate?timeout=1s')).to.equal(900);
    });

    it('defaults to 10 s', () => {
      expect(reviewBudgetMs('/mutate')).to.equal(9000);
    });

    it('ignores an invalid timeout', () => {
      expect(reviewBudgetMs('/mutate?timeout=soon')).to.equal(9000);
    });
  });
});
