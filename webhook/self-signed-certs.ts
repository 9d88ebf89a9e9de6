// A certificate authority and the serving certificate it signs, built with node-forge. Keys
// come from node:crypto, whose native RSA key generation takes milliseconds where node-forge's
// JavaScript takes seconds.

import { generateKeyPair, randomBytes, X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A certificate and its private key, both PEM. */
export interface KeyedCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

/** DNS and IP subject alternative names of the serving certificate. */
export interface ServingNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/** notBefore is set this far in the past, so API servers whose clocks lag accept a new certificate. */
export const CLOCK_SKEW_MS = 60 * 60 * 1000;
const CA_COMMON_NAME = 'trainjob-progress-webhook-ca';

/**
 * Returns the names that the API server may dial: the Service by its short, namespaced and
 * fully qualified names, plus localhost and 127.0.0.1 for webhooks registered by URL in
 * local runs.
 */
export function servingNames(
  serviceName: string,
  namespace: string,
  clusterDomain = 'cluster.local',
): ServingNames {
  const service = `${serviceName}.${namespace}`;
  return {
    dnsNames: [
      serviceName,
      service,
      `${service}.svc`,
      `${service}.svc.${clusterDomain}`,
      'localhost',
    ],
    ipAddresses: ['127.0.0.1'],
  };
}

/** Creates a self-signed CA certificate with a new 2048-bit RSA key. */
export async function createCertificateAuthority(
  validityMs: number,
  now = Date.now(),
): Promise<KeyedCertificate> {
  const keys = await generateRsaKeys();
  const certificate = newCertificate(keys.publicKeyPem, validityMs, now);
  const subject = [{ name: 'commonName', value: `${CA_COMMON_NAME}-${now}` }];
  certificate.setSubject(subject);
  certificate.setIssuer(subject);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  certificate.sign(forge.pki.privateKeyFromPem(keys.privateKeyPem), forge.md.sha256.create());
  return {
    certificatePem: forge.pki.certificateToPem(certificate),
    privateKeyPem: keys.privateKeyPem,
  };
}

/** Issues a TLS server certificate for `names`, signed by `ca`, with a new key. */
export async function issueServingCertificate(
  ca: KeyedCertificate,
  names: ServingNames,
  validityMs: number,
  now = Date.now(),
): Promise<KeyedCertificate> {
  const caCertificate = forge.pki.certificateFromPem(ca.certificatePem);
  const keys = await generateRsaKeys();
  const certificate = newCertificate(keys.publicKeyPem, validityMs, now);
  certificate.setSubject([
    { name: 'commonName', value: names.dnsNames[2] ?? names.dnsNames[0] ?? 'localhost' },
  ]);
  certificate.setIssuer(caCertificate.subject.attributes);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: caCertificate.generateSubjectKeyIdentifier().getBytes(),
    },
    { name: 'subjectAltName', altNames: altNames(names) },
  ]);
  certificate.sign(forge.pki.privateKeyFromPem(ca.privateKeyPem), forge.md.sha256.create());
  return {
    certificatePem: forge.pki.certificateToPem(certificate),
    privateKeyPem: keys.privateKeyPem,
  };
}

/** Facts about a certificate that decide whether it must be replaced. */
export interface CertificateFacts {
  notBefore: number;
  notAfter: number;
  dnsNames: Set<string>;
  ipAddresses: Set<string>;
  x509: X509Certificate;
}

/** Parses a PEM certificate and checks it against its key; undefined when either is unusable. */
export function inspectCertificate(pair: KeyedCertificate): CertificateFacts | undefined {
  try {
    const x509 = new X509Certificate(pair.certificatePem);
    if (!x509.checkPrivateKey(createPrivateKey(pair.privateKeyPem))) return undefined;
    const dnsNames = new Set<string>();
    const ipAddresses = new Set<string>();
    for (const entry of (x509.subjectAltName ?? '').split(', ')) {
      if (entry.startsWith('DNS:')) dnsNames.add(entry.slice(4));
      else if (entry.startsWith('IP Address:')) ipAddresses.add(entry.slice(11));
    }
    return {
      notBefore: Date.parse(x509.validFrom),
      notAfter: Date.parse(x509.validTo),
      dnsNames,
      ipAddresses,
      x509,
    };
  } catch {
    return undefined;
  }
}

async function generateRsaKeys(): Promise<{ publicKeyPem: string; privateKeyPem: string }> {
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

function newCertificate(
  publicKeyPem: string,
  validityMs: number,
  now: number,
): forge.pki.Certificate {
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  certificate.serialNumber = randomSerialNumber();
  certificate.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  certificate.validity.notAfter = new Date(now + validityMs);
  return certificate;
}

// 16 random bytes with the top bit clear and the next one set, so DER reads a positive
// integer without a leading zero byte, which Go's x509 parser rejects.
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

function altNames(names: ServingNames): object[] {
  const result: object[] = names.dnsNames.map((value) => ({ type: 2, value }));
  for (const ip of names.ipAddresses) {
    if (isIP(ip) === 0)
      throw new TypeError(`invalid IP address ${JSON.stringify(ip)} for a certificate`);
    result.push({ type: 7, ip });
  }
  return result;
}
