// Runs the script of the chart's `helm test` pod against local servers that stand in for
// the webhook (HTTPS) and the aggregator (HTTP) Services.
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { V1Pod } from '@kubernetes/client-node';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
} from '../../control-plane/certificates.ts';
import { findObject, renderChart } from './chart-render.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;

interface ScriptResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function runScript(script: string, env: Record<string, string>): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--eval', script], { env }, (error, stdout, stderr) => {
      resolve({ exitCode: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

describe('chart health check', function () {
  this.timeout(HELM_TIMEOUT_MS);
  let script: string;
  let ca: CertificateAuthority;
  let webhookServer: https.Server;
  let aggregatorServer: http.Server;
  let aggregatorStatus = 200;
  let healthyEnv: Record<string, string>;

  before(async function () {
    const objects = await renderChart();
    const pod = findObject<V1Pod>(objects, 'Pod', '-health-check');
    const command = pod.spec!.containers[0]!.command!;
    expect(command.slice(0, 2)).to.deep.equal(['node', '--eval']);
    script = command[2]!;

    ca = createCertificateAuthority();
    const serving = issueCertificate(ca, { commonName: 'localhost', dnsNames: ['localhost'] });
    webhookServer = https.createServer(
      { cert: serving.certificatePem, key: serving.privateKeyPem },
      (request, response) => response.writeHead(request.url === '/healthz' ? 200 : 404).end(),
    );
    aggregatorServer = http.createServer((request, response) => {
      response.writeHead(request.url === '/healthz' ? aggregatorStatus : 404).end();
    });
    const webhookPort = await listen(webhookServer);
    const aggregatorPort = await listen(aggregatorServer);
    healthyEnv = {
      WEBHOOK_URL: `https://localhost:${webhookPort}/healthz`,
      WEBHOOK_CA: ca.certificatePem,
      AGGREGATOR_URL: `http://127.0.0.1:${aggregatorPort}/healthz`,
    };
  });

  afterEach(function () {
    aggregatorStatus = 200;
  });

  after(function () {
    webhookServer.close();
    aggregatorServer.close();
  });

  it('passes when both answer 200', async function () {
    const result = await runScript(script, healthyEnv);

    expect(result.exitCode, result.stderr).to.equal(0);
    expect(result.stdout).to.include(`webhook: GET ${healthyEnv.WEBHOOK_URL} returned 200`);
    expect(result.stdout).to.include(`aggregator: GET ${healthyEnv.AGGREGATOR_URL} returned 200`);
  });

  it('fails on an unhealthy aggregator', async function () {
    aggregatorStatus = 503;

    const result = await runScript(script, healthyEnv);

    expect(result.exitCode).to.equal(1);
    expect(result.stderr).to.include(`aggregator: GET ${healthyEnv.AGGREGATOR_URL} returned 503`);
  });

  it('fails on an untrusted certificate', async function () {
    const otherCa = createCertificateAuthority('another-ca');

    const result = await runScript(script, { ...healthyEnv, WEBHOOK_CA: otherCa.certificatePem });

    expect(result.exitCode).to.equal(1);
    expect(result.stderr).to.include(`webhook: GET ${healthyEnv.WEBHOOK_URL} failed`);
  });

  it('fails without a CA', async function () {
    const result = await runScript(script, { ...healthyEnv, WEBHOOK_CA: '' });

    expect(result.exitCode).to.equal(1);
    expect(result.stderr).to.include('the Secret has no ca.crt');
  });

  it('fails on a closed port', async function () {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));

    const result = await runScript(script, {
      ...healthyEnv,
      AGGREGATOR_URL: `http://127.0.0.1:${port}/healthz`,
    });

    expect(result.exitCode).to.equal(1);
    expect(result.stderr).to.include('ECONNREFUSED');
  });
});
