// Certificates, keys and the admin kubeconfig of the local control plane.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import {
  createCertificateAuthority,
  generateRsaKeyPair,
  issueCertificate,
} from './certificates.ts';

/** PEM contents and file paths of the control plane's CA, certificates and keys. */
export interface Pki {
  caCertPem: string;
  files: Record<
    'caCert' | 'servingCert' | 'servingKey' | 'serviceAccountPublicKey' | 'serviceAccountKey',
    string
  >;
  admin: { certificatePem: string; privateKeyPem: string };
}

/**
 * Creates a CA, a kube-apiserver serving certificate for 127.0.0.1 and localhost, an admin
 * client certificate and a service account signing key pair, and writes them to `pkiDir`.
 */
export function createPki(pkiDir: string): Pki {
  mkdirSync(pkiDir, { recursive: true });
  const ca = createCertificateAuthority('trainjob-progress-local-ca');
  const serving = issueCertificate(ca, {
    commonName: 'kube-apiserver',
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
    ipAddresses: ['127.0.0.1', '10.0.0.1'],
  });
  const admin = issueCertificate(ca, {
    commonName: 'admin',
    organization: 'system:masters',
    client: true,
  });
  const serviceAccount = generateRsaKeyPair();

  const contents = {
    caCert: ca.certificatePem,
    servingCert: serving.certificatePem,
    servingKey: serving.privateKeyPem,
    serviceAccountPublicKey: serviceAccount.publicKeyPem,
    serviceAccountKey: serviceAccount.privateKeyPem,
  };
  const files = {} as Pki['files'];
  for (const [name, pem] of Object.entries(contents) as [keyof Pki['files'], string][]) {
    files[name] = path.join(pkiDir, `${name}.pem`);
    writeFileSync(files[name], pem, { mode: 0o600 });
  }
  return { caCertPem: ca.certificatePem, files, admin };
}

/** Writes a kubeconfig for the admin user with its certificate and the CA embedded. */
export function writeKubeconfig(kubeconfigPath: string, serverUrl: string, pki: Pki): void {
  const base64 = (text: string): string => Buffer.from(text).toString('base64');
  const name = 'trainjob-progress-local';
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name, cluster: { server: serverUrl, 'certificate-authority-data': base64(pki.caCertPem) } },
    ],
    users: [
      {
        name: 'admin',
        user: {
          'client-certificate-data': base64(pki.admin.certificatePem),
          'client-key-data': base64(pki.admin.privateKeyPem),
        },
      },
    ],
    contexts: [{ name, context: { cluster: name, user: 'admin', namespace: 'default' } }],
    'current-context': name,
  };
  writeFileSync(kubeconfigPath, stringify(kubeconfig), { mode: 0o600 });
}
