// The chart-wide injection defaults, with the sidecar mode resolved against the API server's
// version once at start-up.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../shared/logger.ts';
import type { WebhookConfig } from './config.ts';
import type { KubeRequester } from './kube-client.ts';
import type { InjectionDefaults, SidecarMode } from './pod-settings.ts';
import { readServerVersion, supportsNativeSidecars } from './server-version.ts';

const VERSION_ATTEMPTS = 3;
const VERSION_TIMEOUT_MS = 5_000;

/**
 * Resolves the chart-wide sidecar mode. `auto` reads the API server's version and uses
 * native sidecars from 1.29 on; when the version cannot be read it falls back to a regular
 * container, which works on every version.
 */
export async function injectionDefaults(
  config: WebhookConfig,
  client: KubeRequester,
  logger: Logger,
  signal: AbortSignal,
): Promise<InjectionDefaults> {
  let supported: boolean | undefined;
  for (let attempt = 1; attempt <= VERSION_ATTEMPTS && supported === undefined; attempt++) {
    try {
      const version = await readServerVersion(
        client,
        AbortSignal.any([signal, AbortSignal.timeout(VERSION_TIMEOUT_MS)]),
      );
      supported = supportsNativeSidecars(version);
      logger.info(
        { version: version.gitVersion, nativeSidecars: supported },
        'read the API server version',
      );
    } catch (error) {
      signal.throwIfAborted();
      logger.warn({ err: error, attempt }, 'reading the API server version failed');
      if (attempt < VERSION_ATTEMPTS) await sleep(1000 * attempt, undefined, { signal });
    }
  }
  let sidecarMode: SidecarMode =
    config.sidecarMode === 'auto'
      ? supported === true
        ? 'native'
        : 'container'
      : config.sidecarMode;
  if (config.sidecarMode === 'native' && supported === false) {
    logger.warn(
      '--sidecar-mode native was requested but the API server is older than 1.29; pods may be rejected',
    );
  }
  if (supported === undefined && config.sidecarMode === 'auto') {
    logger.warn('the API server version is unknown; injecting the sidecar as a regular container');
    sidecarMode = 'container';
  }
  return {
    scope: config.injectionScope,
    sidecarMode,
    nativeSidecarsSupported: sidecarMode === 'native' || supported === true,
    metricsPath: config.metricsPath,
    resources: config.sidecarResources,
  };
}
