// Entry point of `trainjob-progress sidecar`: reads the configuration, then runs the scrape
// loop and the aggregator stream until SIGTERM, or in container mode until the trainer exits.

import { createLogger } from '../shared/logger.ts';
import { SIDECAR_ENV } from '../shared/sidecar-env.ts';
import { loadSidecarConfig, SidecarConfigError, sidecarUsage, wantsHelp } from './config.ts';
import { runSidecar } from './sidecar-runner.ts';
import { readSidecarVersion } from './version.ts';

/**
 * Runs the sidecar and resolves with its exit code: 0 after a normal stop, 2 for an invalid
 * configuration. In container mode an invalid configuration also exits 0, after printing the
 * error, because a failed regular container marks the whole pod, and so the Job, as failed.
 */
export async function run(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    console.log(sidecarUsage());
    return 0;
  }

  let config;
  try {
    config = loadSidecarConfig(argv);
  } catch (error) {
    if (!(error instanceof SidecarConfigError)) throw error;
    console.error(`trainjob-progress sidecar: ${error.message}`);
    return process.env[SIDECAR_ENV.mode]?.trim() === 'container' ? 0 : 2;
  }

  const logger = createLogger('sidecar', config.logLevel).child({
    namespace: config.podNamespace,
    trainJob: config.trainJobName,
    pod: config.podName,
  });
  return runSidecar(config, logger, readSidecarVersion());
}
