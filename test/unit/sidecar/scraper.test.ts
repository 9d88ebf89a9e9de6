import { expect } from 'chai';

import { scrapeMetrics } from '../../../sidecar/scraper.ts';
import { closedPort, startTrainerEndpoint, type TrainerEndpoint } from './helpers.ts';

describe('scrapeMetrics', () => {
  let endpoint: TrainerEndpoint | undefined;

  afterEach(async () => {
    await endpoint?.close();
    endpoint = undefined;
  });

  it('returns the body of a 200 response', async () => {
    endpoint = await startTrainerEndpoint((_request, response) =>
      response.end('{"currentStep":3}'),
    );
    const result = await scrapeMetrics(endpoint.url);
    expect(result).to.deep.equal({ kind: 'ok', body: Buffer.from('{"currentStep":3}') });
  });

  it('reports a refused connection on a closed port', async () => {
    const port = await closedPort();
    const result = await scrapeMetrics(new URL(`http://127.0.0.1:${port}/metrics`));
    expect(result.kind).to.equal('refused');
  });

  it('times out on a silent server', async () => {
    endpoint = await startTrainerEndpoint(() => {
      // Never responds: the request stays open until the client gives up.
    });
    const startedAt = Date.now();
    const result = await scrapeMetrics(endpoint.url, { timeoutMs: 300 });
    const elapsedMs = Date.now() - startedAt;
    expect(result.kind).to.equal('timeout');
    expect(elapsedMs).to.be.at.least(280);
    expect(elapsedMs).to.be.below(1500);
  });

  it('times out on a body that stalls halfway', async () => {
    endpoint = await startTrainerEndpoint((_request, response) => response.write('{"curr'));
    const result = await scrapeMetrics(endpoint.url, { timeoutMs: 300 });
    expect(result.kind).to.equal('timeout');
  });

  it('uses a 2 s timeout by default', async () => {
    endpoint = await startTrainerEndpoint(() => {});
    const startedAt = Date.now();
    const result = await scrapeMetrics(endpoint.url);
    const elapsedMs = Date.now() - startedAt;
    expect(result.kind).to.equal('timeout');
    expect(elapsedMs).to.be.at.least(1950);
    expect(elapsedMs).to.be.below(3000);
  });

  it('rejects a body declared larger than 64 KiB', async () => {
    endpoint = await startTrainerEndpoint((_request, response) => {
      response.setHeader('content-length', 70_000);
      response.end('x'.repeat(70_000));
    });
    const result = await scrapeMetrics(endpoint.url);
    expect(result).to.deep.equal({ kind: 'too-large', bytes: 70_000 });
  });

  it('aborts a chunked body once it passes 64 KiB', async () => {
    endpoint = await startTrainerEndpoint((_request, response) => {
      // Chunked encoding without a length: the cap applies while reading.
      for (let i = 0; i < 100; i++) response.write('y'.repeat(1024));
      response.end();
    });
    const result = await scrapeMetrics(endpoint.url);
    expect(result.kind).to.equal('too-large');
    expect(result)
      .to.have.property('bytes')
      .above(64 * 1024);
  });

  it('accepts a body of exactly 64 KiB', async () => {
    endpoint = await startTrainerEndpoint((_request, response) => response.end('z'.repeat(65536)));
    const result = await scrapeMetrics(endpoint.url);
    expect(result.kind).to.equal('ok');
  });

  it('reports an HTTP error status', async () => {
    endpoint = await startTrainerEndpoint((_request, response) => response.writeHead(503).end());
    const result = await scrapeMetrics(endpoint.url);
    expect(result).to.deep.equal({ kind: 'http-error', status: 503 });
  });

  it('reports a connection closed mid-body as failed', async () => {
    endpoint = await startTrainerEndpoint((request, response) => {
      response.setHeader('content-length', 100);
      response.write('{"a":');
      setTimeout(() => request.socket.destroy(), 20);
    });
    const result = await scrapeMetrics(endpoint.url);
    expect(result.kind).to.equal('failed');
  });
});
