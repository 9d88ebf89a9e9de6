import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import {
  CertRotator,
  filesSource,
  type CertificateSource,
  type ServingCertificate,
} from '../../../webhook/cert-rotator.ts';
import { createTestTls } from './tls-fixture.ts';

const logger = createLogger('test', 'silent');

function servedCertificateSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      { host: '127.0.0.1', port, path: '/', ca, agent: false },
      (response) => {
        resolve((response.socket as TLSSocket).getPeerCertificate().serialNumber);
        response.resume();
      },
    );
    request.on('error', reject);
  });
}

describe('webhook/cert-rotator', () => {
  it('swaps the served certificate without a restart', async () => {
    const first = await createTestTls();
    const second = await createTestTls();
    let current = first;
    const source: CertificateSource = {
      kind: 'test',
      fetch: () =>
        Promise.resolve({
          certificatePem: current.serving.certificatePem,
          privateKeyPem: current.serving.privateKeyPem,
          caBundlePem: current.ca.certificatePem,
          notAfter: 0,
        }),
    };
    const rotator = new CertRotator(source, logger);
    const initial = await rotator.initialize(AbortSignal.timeout(5000));
    const server = https.createServer(
      { cert: initial.certificatePem, key: initial.privateKeyPem },
      (_request, response) => response.end('ok'),
    );
    rotator.onChange((next: ServingCertificate) =>
      server.setSecureContext({ cert: next.certificatePem, key: next.privateKeyPem }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const before = await servedCertificateSerial(port, first.ca.certificatePem);
      expect(await rotator.refresh(AbortSignal.timeout(5000))).to.equal(false);
      current = second;
      expect(await rotator.refresh(AbortSignal.timeout(5000))).to.equal(true);
      const after = await servedCertificateSerial(port, second.ca.certificatePem);
      expect(after).to.not.equal(before);
      expect(rotator.rotations).to.equal(1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  describe('filesSource', () => {
    let directory: string;

    beforeEach(() => {
      directory = mkdtempSync(path.join(tmpdir(), 'cert-rotator-'));
    });

    afterEach(() => {
      rmSync(directory, { recursive: true, force: true });
    });

    it('reads tls.crt, tls.key and ca.crt', async () => {
      const tls = await createTestTls();
      writeFileSync(path.join(directory, 'tls.crt'), tls.serving.certificatePem);
      writeFileSync(path.join(directory, 'tls.key'), tls.serving.privateKeyPem);
      writeFileSync(path.join(directory, 'ca.crt'), tls.ca.certificatePem);
      const certificate = await filesSource(directory).fetch(AbortSignal.timeout(1000));
      expect(certificate.caBundlePem).to.equal(tls.ca.certificatePem);
      expect(certificate.notAfter).to.be.above(Date.now());
    });

    it('rejects a key that does not match', async () => {
      const tls = await createTestTls();
      const other = await createTestTls();
      writeFileSync(path.join(directory, 'tls.crt'), tls.serving.certificatePem);
      writeFileSync(path.join(directory, 'tls.key'), other.serving.privateKeyPem);
      const error = await filesSource(directory)
        .fetch(AbortSignal.timeout(1000))
        .catch((e: unknown) => e);
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.contain('does not match tls.key');
    });

    it('picks up replaced files on refresh', async () => {
      const first = await createTestTls();
      const second = await createTestTls();
      writeFileSync(path.join(directory, 'tls.crt'), first.serving.certificatePem);
      writeFileSync(path.join(directory, 'tls.key'), first.serving.privateKeyPem);
      const rotator = new CertRotator(filesSource(directory), logger);
      await rotator.initialize(AbortSignal.timeout(1000));
      writeFileSync(path.join(directory, 'tls.crt'), second.serving.certificatePem);
      writeFileSync(path.join(directory, 'tls.key'), second.serving.privateKeyPem);
      expect(await rotator.refresh(AbortSignal.timeout(1000))).to.equal(true);
      expect(rotator.current?.certificatePem).to.equal(second.serving.certificatePem);
    });
  });
});
