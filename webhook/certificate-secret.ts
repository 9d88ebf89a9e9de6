// The self-signed CA and serving certificate, kept in a Secret that every replica shares.
//
// Each replica reads the Secret and adopts what it finds while it is usable. When it is
// missing or needs renewal, the replica writes a new one. A create that fails with 409
// AlreadyExists, or an update with a stale resourceVersion (409 Conflict), means that another
// replica wrote first. The replica then reads again and adopts that Secret, so all replicas
// converge on one CA. A renewed CA is published next to the older CAs that are still valid,
// so serving certificates of either generation verify while the caBundle changes over.

import { X509Certificate } from 'node:crypto';
import type { Logger } from '../shared/logger.ts';
import { isJsonObject, objectField, stringField, type JsonObject } from './json-object.ts';
import { hasStatus, type KubeRequester } from './kube-client.ts';
import {
  CLOCK_SKEW_MS,
  createCertificateAuthority,
  inspectCertificate,
  issueServingCertificate,
  type KeyedCertificate,
  type ServingNames,
} from './self-signed-certs.ts';

export const SECRET_KEYS = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  cert: 'tls.crt',
  key: 'tls.key',
} as const;

/** The serving certificate with its key, and the CAs that clients trust. */
export interface CertificateBundle {
  ca: KeyedCertificate;
  /** PEM of the current CA followed by older CAs that are still valid. */
  caBundlePem: string;
  serving: KeyedCertificate;
  /** Unix time in milliseconds when the serving certificate expires. */
  servingNotAfter: number;
}

export interface CertificateSecretOptions {
  namespace: string;
  secretName: string;
  names: ServingNames;
  servingValidityMs: number;
  caValidityMs: number;
}

export type RenewalPlan = 'keep' | 'renew-serving' | 'renew-ca';

const MAX_WRITE_ATTEMPTS = 5;
const MAX_PUBLISHED_CAS = 3;
/** A certificate is renewed once less than this share of its lifetime remains. */
const RENEW_AT_REMAINING_SHARE = 1 / 3;

/**
 * Decides whether a bundle can be kept. The CA must be a valid CA with more than a third of
 * its lifetime left. The serving certificate must be signed by it, cover every name in
 * `names` and have more than a third of its lifetime left.
 */
export function planRenewal(
  bundle: CertificateBundle | undefined,
  names: ServingNames,
  now: number,
): RenewalPlan {
  const ca = bundle === undefined ? undefined : inspectCertificate(bundle.ca);
  if (bundle === undefined || ca === undefined || !ca.x509.ca || isDue(ca, now)) return 'renew-ca';
  const serving = inspectCertificate(bundle.serving);
  if (serving === undefined || isDue(serving, now) || !serving.x509.checkIssued(ca.x509))
    return 'renew-serving';
  if (!serving.x509.verify(ca.x509.publicKey)) return 'renew-serving';
  const covered =
    names.dnsNames.every((name) => serving.dnsNames.has(name)) &&
    names.ipAddresses.every((ip) => serving.ipAddresses.has(ip));
  return covered ? 'keep' : 'renew-serving';
}

// Measures the lifetime from the issue time, because notBefore is back-dated by CLOCK_SKEW_MS,
// which would otherwise make a certificate valid for less than an hour due at once.
function isDue(facts: { notBefore: number; notAfter: number }, now: number): boolean {
  const lifetime = facts.notAfter - Math.min(facts.notBefore + CLOCK_SKEW_MS, facts.notAfter);
  return facts.notAfter - now < lifetime * RENEW_AT_REMAINING_SHARE;
}

/**
 * Reads the Secret and returns a usable bundle, writing a renewed one first when needed.
 * `written` is true when this call wrote the Secret.
 */
export async function ensureCertificateSecret(
  client: KubeRequester,
  options: CertificateSecretOptions,
  logger: Logger,
  signal?: AbortSignal,
): Promise<{ bundle: CertificateBundle; written: boolean }> {
  const path = `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/secrets`;
  for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
    const secret = await readSecret(
      client,
      `${path}/${encodeURIComponent(options.secretName)}`,
      signal,
    );
    const existing = secret === undefined ? undefined : bundleFromSecret(secret);
    const plan = planRenewal(existing, options.names, Date.now());
    if (plan === 'keep' && existing !== undefined) return { bundle: existing, written: false };

    const bundle = await renewBundle(existing, plan, options);
    try {
      if (secret === undefined) {
        await client.request('POST', path, { body: newSecret(options, bundle), signal });
      } else {
        const body = {
          ...secret,
          data: { ...(objectField(secret, 'data') ?? {}), ...secretData(bundle) },
        };
        await client.request('PUT', `${path}/${encodeURIComponent(options.secretName)}`, {
          body,
          signal,
        });
      }
    } catch (error) {
      if (!hasStatus(error, 409)) throw error;
      logger.info(
        { secret: options.secretName, attempt },
        'another replica wrote the certificate Secret first, reading it again',
      );
      continue;
    }
    logger.info(
      { secret: options.secretName, plan },
      plan === 'renew-ca'
        ? 'created a new CA and serving certificate'
        : 'issued a new serving certificate',
    );
    return { bundle, written: true };
  }
  throw new Error(
    `writing Secret ${options.namespace}/${options.secretName} kept conflicting after ${MAX_WRITE_ATTEMPTS} attempts`,
  );
}

async function readSecret(
  client: KubeRequester,
  path: string,
  signal?: AbortSignal,
): Promise<JsonObject | undefined> {
  try {
    const secret = await client.request('GET', path, signal === undefined ? {} : { signal });
    return isJsonObject(secret) ? secret : undefined;
  } catch (error) {
    if (hasStatus(error, 404)) return undefined;
    throw error;
  }
}

/** Reads a bundle from a Secret's data; undefined when a key is missing. */
export function bundleFromSecret(secret: JsonObject): CertificateBundle | undefined {
  const data = objectField(secret, 'data');
  const decode = (key: string): string | undefined => {
    const value = stringField(data, key);
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  };
  const caBundlePem = decode(SECRET_KEYS.caCert);
  const caKey = decode(SECRET_KEYS.caKey);
  const cert = decode(SECRET_KEYS.cert);
  const key = decode(SECRET_KEYS.key);
  if (caBundlePem === undefined || caKey === undefined || cert === undefined || key === undefined)
    return undefined;
  const caCert = splitPem(caBundlePem)[0] ?? '';
  return {
    ca: { certificatePem: caCert, privateKeyPem: caKey },
    caBundlePem,
    serving: { certificatePem: cert, privateKeyPem: key },
    servingNotAfter: notAfterOf(cert),
  };
}

async function renewBundle(
  existing: CertificateBundle | undefined,
  plan: RenewalPlan,
  options: CertificateSecretOptions,
): Promise<CertificateBundle> {
  let ca = existing?.ca;
  let caBundlePem = existing?.caBundlePem ?? '';
  if (plan === 'renew-ca' || ca === undefined) {
    ca = await createCertificateAuthority(options.caValidityMs);
    caBundlePem = publishedCas(ca.certificatePem, caBundlePem);
  }
  const serving = await issueServingCertificate(ca, options.names, options.servingValidityMs);
  return { ca, caBundlePem, serving, servingNotAfter: notAfterOf(serving.certificatePem) };
}

// The new CA first, then older CAs that are still valid, at most MAX_PUBLISHED_CAS in all.
function publishedCas(newCaPem: string, previousBundlePem: string): string {
  const now = Date.now();
  const older = splitPem(previousBundlePem).filter((pem) => {
    try {
      return Date.parse(new X509Certificate(pem).validTo) > now;
    } catch {
      return false;
    }
  });
  return (
    [newCaPem, ...older]
      .slice(0, MAX_PUBLISHED_CAS)
      .map((pem) => pem.trim())
      .join('\n') + '\n'
  );
}

/** Splits concatenated PEM certificates into single ones. */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** Returns the expiry of a PEM certificate in Unix milliseconds, NaN when it does not parse. */
export function notAfterOf(certificatePem: string): number {
  try {
    return Date.parse(new X509Certificate(certificatePem).validTo);
  } catch {
    return NaN;
  }
}

function secretData(bundle: CertificateBundle): Record<string, string> {
  const encode = (text: string): string => Buffer.from(text).toString('base64');
  return {
    [SECRET_KEYS.caCert]: encode(bundle.caBundlePem),
    [SECRET_KEYS.caKey]: encode(bundle.ca.privateKeyPem),
    [SECRET_KEYS.cert]: encode(bundle.serving.certificatePem),
    [SECRET_KEYS.key]: encode(bundle.serving.privateKeyPem),
  };
}

function newSecret(options: CertificateSecretOptions, bundle: CertificateBundle): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: options.secretName,
      namespace: options.namespace,
      labels: {
        'app.kubernetes.io/name': 'trainjob-progress',
        'app.kubernetes.io/component': 'webhook',
      },
    },
    type: 'kubernetes.io/tls',
    data: secretData(bundle),
  };
}
