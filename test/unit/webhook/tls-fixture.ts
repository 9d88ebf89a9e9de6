// A CA and a serving certificate for 127.0.0.1, for tests that start HTTPS servers.

import {
  createCertificateAuthority,
  issueServingCertificate,
  type KeyedCertificate,
} from '../../../webhook/self-signed-certs.ts';

export interface TestTls {
  ca: KeyedCertificate;
  serving: KeyedCertificate;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export async function createTestTls(validityMs = DAY_MS): Promise<TestTls> {
  const ca = await createCertificateAuthority(validityMs);
  const serving = await issueServingCertificate(
    ca,
    { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
    validityMs,
  );
  return { ca, serving };
}
