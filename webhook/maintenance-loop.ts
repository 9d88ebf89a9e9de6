// Start-up retries and the periodic upkeep of the serving certificate and the caBundle.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../shared/logger.ts';
import type { CaBundleSync } from './ca-bundle-sync.ts';
import type { CertRotator } from './cert-rotator.ts';

const RETRY_INITIAL_MS = 500;
const RETRY_MAX_MS = 10_000;
const PENDING_CHECK_MS = 1_000;

/** Runs `attempt` until it succeeds, backing off up to 10 s; throws only when `signal` aborts. */
export async function retryUntilDone<T>(
  what: string,
  logger: Logger,
  signal: AbortSignal,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (error) {
      signal.throwIfAborted();
      const delayMs = Math.min(RETRY_MAX_MS, RETRY_INITIAL_MS * 2 ** failures);
      logger.warn({ err: error, retryInMs: delayMs }, `${what} failed, retrying`);
      await sleep(delayMs, undefined, { signal });
    }
  }
}

export interface MaintenanceOptions {
  rotator: CertRotator;
  caBundleSync: CaBundleSync | undefined;
  logger: Logger;
  intervalMs: number;
  signal: AbortSignal;
  afterEach: () => void;
}

/**
 * Syncs the caBundle at once, then refreshes the certificate and syncs again every interval.
 * Until the caBundle is first in place (the webhook is not ready before that), it checks
 * every second up to the interval instead, so a configuration created after start-up is
 * picked up within seconds.
 */
export async function runMaintenance(options: MaintenanceOptions): Promise<void> {
  const { rotator, caBundleSync, logger, signal } = options;
  let inPlace = caBundleSync === undefined;
  for (let first = true; !signal.aborted; first = false) {
    try {
      if (!first) await rotator.refresh(signal);
      const caBundle = rotator.current?.caBundlePem;
      if (caBundleSync !== undefined && caBundle !== undefined) {
        inPlace = await caBundleSync.sync(caBundle, signal);
      }
    } catch (error) {
      if (signal.aborted) break;
      logger.warn(
        { err: error },
        'certificate or caBundle check failed; retrying at the next interval',
      );
    }
    options.afterEach();
    const delayMs = inPlace ? options.intervalMs : Math.min(options.intervalMs, PENDING_CHECK_MS);
    await sleep(delayMs, undefined, { signal }).catch(() => undefined);
  }
}
