// Keeps the HTTPS server's certificate current without a restart. A source produces the
// certificate, self-signed through the shared Secret or from files that cert-manager or the
// user wrote. The rotator fetches it again on every reconcile and swaps the server's secure
// context when the certificate changed.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../shared/logger.ts';
import {
  ensureCertificateSecret,
  notAfterOf,
  type CertificateSecretOptions,
} from './certificate-secret.ts';
import type { KubeRequester } from './kube-client.ts';
import { inspectCertificate } from './self-signed-certs.ts';

/** A serving certificate and the CAs that verify it, when known. */
export interface ServingCertificate {
  certificatePem: string;
  privateKeyPem: string;
  /** PEM of the CAs for the webhook's caBundle; undefined when the source has none. */
  caBundlePem: string | undefined;
  /** Unix milliseconds when the certificate expires. */
  notAfter: number;
}

export interface CertificateSource {
  /** Short name for logs: `self-signed` or `files`. */
  readonly kind: string;
  /** Returns the certificate to serve now, renewing or re-reading it as needed. */
  fetch(signal: AbortSignal): Promise<ServingCertificate>;
}

export const CA_FILE_NAME = 'ca.crt';
export const CERT_FILE_NAME = 'tls.crt';
export const KEY_FILE_NAME = 'tls.key';

/**
 * Returns a source backed by the shared Secret. With `certDir` set, it also writes the CA
 * bundle there as ca.crt whenever it changes, for clients outside the cluster.
 */
export function selfSignedSource(
  client: KubeRequester,
  options: CertificateSecretOptions,
  certDir: string | undefined,
  logger: Logger,
): CertificateSource {
  let writtenCaBundle: string | undefined;
  return {
    kind: 'self-signed',
    async fetch(signal) {
      const { bundle } = await ensureCertificateSecret(client, options, logger, signal);
      if (certDir !== undefined && bundle.caBundlePem !== writtenCaBundle) {
        writeFileAtomically(path.join(certDir, CA_FILE_NAME), bundle.caBundlePem);
        writtenCaBundle = bundle.caBundlePem;
      }
      return {
        certificatePem: bundle.serving.certificatePem,
        privateKeyPem: bundle.serving.privateKeyPem,
        caBundlePem: bundle.caBundlePem,
        notAfter: bundle.servingNotAfter,
      };
    },
  };
}

/**
 * Returns a source that reads tls.crt and tls.key (and ca.crt when present) from `certDir`.
 * A pair that does not parse or whose key does not match is an error, so the caller keeps
 * serving the previous pair. A Secret volume swaps its files in one step, but other writers
 * may leave a half-written pair for a moment.
 */
export function filesSource(certDir: string): CertificateSource {
  return {
    kind: 'files',
    fetch() {
      const certificatePem = readFileSync(path.join(certDir, CERT_FILE_NAME), 'utf8');
      const privateKeyPem = readFileSync(path.join(certDir, KEY_FILE_NAME), 'utf8');
      if (inspectCertificate({ certificatePem, privateKeyPem }) === undefined) {
        return Promise.reject(
          new Error(
            `${certDir}: ${CERT_FILE_NAME} does not parse or does not match ${KEY_FILE_NAME}`,
          ),
        );
      }
      let caBundlePem: string | undefined;
      try {
        caBundlePem = readFileSync(path.join(certDir, CA_FILE_NAME), 'utf8');
      } catch {
        caBundlePem = undefined;
      }
      return Promise.resolve({
        certificatePem,
        privateKeyPem,
        caBundlePem,
        notAfter: notAfterOf(certificatePem),
      });
    },
  };
}

function writeFileAtomically(file: string, contents: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, contents, { mode: 0o644 });
  renameSync(temporary, file);
}

/** Tracks the certificate in use and reports a changed one to `apply`. */
export class CertRotator {
  readonly #source: CertificateSource;
  readonly #logger: Logger;
  #current: ServingCertificate | undefined;
  #apply: ((certificate: ServingCertificate) => void) | undefined;
  #rotations = 0;

  constructor(source: CertificateSource, logger: Logger) {
    this.#source = source;
    this.#logger = logger;
  }

  get current(): ServingCertificate | undefined {
    return this.#current;
  }

  /** Number of certificates applied after the first. */
  get rotations(): number {
    return this.#rotations;
  }

  /** Fetches the first certificate. */
  async initialize(signal: AbortSignal): Promise<ServingCertificate> {
    this.#current = await this.#source.fetch(signal);
    this.#logger.info(
      { source: this.#source.kind, notAfter: new Date(this.#current.notAfter).toISOString() },
      'serving certificate loaded',
    );
    return this.#current;
  }

  /** Sets the callback that loads a new certificate into the server. */
  onChange(apply: (certificate: ServingCertificate) => void): void {
    this.#apply = apply;
  }

  /** Fetches again; applies and returns true when the certificate changed. */
  async refresh(signal: AbortSignal): Promise<boolean> {
    const next = await this.#source.fetch(signal);
    const previous = this.#current;
    this.#current = next;
    if (
      previous !== undefined &&
      previous.certificatePem === next.certificatePem &&
      previous.privateKeyPem === next.privateKeyPem
    ) {
      return false;
    }
    this.#apply?.(next);
    this.#rotations++;
    this.#logger.info(
      { source: this.#source.kind, notAfter: new Date(next.notAfter).toISOString() },
      'serving certificate rotated',
    );
    return true;
  }
}
