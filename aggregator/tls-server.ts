// The aggregator's HTTP or HTTPS server. With a certificate, the files are watched and a
// renewed certificate (e.g. a rotated Secret) is loaded without a restart.

import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Logger } from '../shared/logger.ts';
import type { AggregatorConfig } from './config.ts';

const CERTIFICATE_POLL_MS = 10_000;

type TlsFiles = Pick<AggregatorConfig, 'tlsCertFile' | 'tlsKeyFile'>;

/** Creates a plain HTTP server, or an HTTPS server when both TLS files are configured. */
export function createServer(config: TlsFiles, logger: Logger): Server {
  const { tlsCertFile, tlsKeyFile } = config;
  if (tlsCertFile === undefined || tlsKeyFile === undefined) return createHttpServer();
  const readPair = () => ({ cert: readFileSync(tlsCertFile), key: readFileSync(tlsKeyFile) });
  const server = createHttpsServer(readPair());
  const reload = (): void => {
    try {
      server.setSecureContext(readPair());
      logger.info({ tlsCertFile }, 'TLS certificate reloaded');
    } catch (error) {
      logger.error(
        { err: error, tlsCertFile },
        'TLS certificate reload failed, keeping the previous one',
      );
    }
  };
  watchFile(tlsCertFile, { interval: CERTIFICATE_POLL_MS }, reload);
  watchFile(tlsKeyFile, { interval: CERTIFICATE_POLL_MS }, reload);
  return server;
}

/** Stops watching the TLS files. */
export function stopCertificateReload(config: TlsFiles): void {
  if (config.tlsCertFile !== undefined) unwatchFile(config.tlsCertFile);
  if (config.tlsKeyFile !== undefined) unwatchFile(config.tlsKeyFile);
}
