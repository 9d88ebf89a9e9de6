// X.509 material for a local control plane and for test servers: a certificate authority,
// certificates it signs, and a bare RSA key pair for signing service account tokens.
//
// Keys come from node:crypto because RSA key generation in node-forge's pure JavaScript takes
// seconds per key. node-forge builds and signs the certificates.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

const DAY_MS = 24 * 60 * 60 * 1000;
// Backdates notBefore so a verifier whose clock runs slightly behind accepts a fresh certificate.
const CLOCK_SKEW_MS = 60 * 60 * 1000;

/** An RSA key pair in PEM: SubjectPublicKeyInfo ("PUBLIC KEY") and PKCS#1 ("RSA PRIVATE KEY"). */
export interface KeyPairPem {
  publicKeyPem: string;
  privateKeyPem: string;
}

/** A certificate in PEM with its private key. */
export interface IssuedCertificate {
  certificatePem: string;
  privateKeyPem: string;
}

/** A self-signed CA certificate and key that `issueCertificate` signs with. */
export interface CertificateAuthority extends IssuedCertificate {
  certificate: forge.pki.Certificate;
  privateKey: forge.pki.rsa.PrivateKey;
}

/** The subject and use of a certificate for `issueCertificate`. */
export interface CertificateRequest {
  commonName: string;
  /** Subject O attribute. Kubernetes reads it as the user's group, such as `system:masters`. */
  organization?: string;
  /** DNS subject alternative names. */
  dnsNames?: string[];
  /** IPv4 or IPv6 subject alternative names. */
  ipAddresses?: string[];
  /** Issues a TLS client certificate (extended key usage clientAuth) instead of a server one. */
  client?: boolean;
  /** Validity period in days, 365 if unset. */
  validityDays?: number;
}

/** Generates a 2048-bit RSA key pair with node:crypto. */
export function generateRsaKeyPair(): KeyPairPem {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

/** Creates a self-signed certificate authority valid for `validityDays` (default 365). */
export function createCertificateAuthority(
  commonName = 'trainjob-progress-test-ca',
  validityDays = 365,
): CertificateAuthority {
  const keys = generateRsaKeyPair();
  const privateKey = forge.pki.privateKeyFromPem(keys.privateKeyPem);
  const certificate = newCertificate(keys.publicKeyPem, validityDays);
  const subject = [{ name: 'commonName', value: commonName }];
  certificate.setSubject(subject);
  certificate.setIssuer(subject);
  certificate.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  certificate.sign(privateKey, forge.md.sha256.create());

  return {
    certificate,
    privateKey,
    certificatePem: forge.pki.certificateToPem(certificate),
    privateKeyPem: keys.privateKeyPem,
  };
}

/** Issues a server or client certificate with a new key, signed by `ca`. */
export function issueCertificate(
  ca: CertificateAuthority,
  request: CertificateRequest,
): IssuedCertificate {
  const keys = generateRsaKeyPair();
  const certificate = newCertificate(keys.publicKeyPem, request.validityDays ?? 365);
  const subject: forge.pki.CertificateField[] = [{ name: 'commonName', value: request.commonName }];
  if (request.organization !== undefined) {
    subject.push({ name: 'organizationName', value: request.organization });
  }
  certificate.setSubject(subject);
  certificate.setIssuer(ca.certificate.subject.attributes);

  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    request.client
      ? { name: 'extKeyUsage', clientAuth: true }
      : { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: ca.certificate.generateSubjectKeyIdentifier().getBytes(),
    },
  ];
  const altNames = subjectAltNames(request);
  if (altNames.length > 0) {
    extensions.push({ name: 'subjectAltName', altNames });
  }
  certificate.setExtensions(extensions);
  certificate.sign(ca.privateKey, forge.md.sha256.create());

  return {
    certificatePem: forge.pki.certificateToPem(certificate),
    privateKeyPem: keys.privateKeyPem,
  };
}

function newCertificate(publicKeyPem: string, validityDays: number): forge.pki.Certificate {
  if (!Number.isFinite(validityDays) || validityDays <= 0) {
    throw new RangeError(`invalid validityDays ${validityDays}: expected a positive number`);
  }
  const certificate = forge.pki.createCertificate();
  certificate.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  certificate.serialNumber = randomSerialNumber();
  const now = Date.now();
  certificate.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  certificate.validity.notAfter = new Date(now + validityDays * DAY_MS);
  return certificate;
}

// Returns 16 random bytes in hex with the first byte in 0x40-0x7f. DER reads a leading bit of 1
// as a negative number, and Go's x509 parser rejects a leading zero byte as a non-minimal integer.
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

function subjectAltNames(request: CertificateRequest): object[] {
  const names: object[] = [];
  for (const dnsName of request.dnsNames ?? []) {
    names.push({ type: 2, value: dnsName });
  }
  for (const ipAddress of request.ipAddresses ?? []) {
    if (isIP(ipAddress) === 0) {
      throw new TypeError(`invalid IP address ${JSON.stringify(ipAddress)} in ipAddresses`);
    }
    names.push({ type: 7, ip: ipAddress });
  }
  return names;
}
