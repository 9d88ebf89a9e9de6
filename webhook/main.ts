// `trainjob-progress webhook`: parses the configuration, starts the webhook and serves until
// SIGTERM or SIGINT. SIGTERM first reports not ready for --shutdown-delay-seconds, so the
// Service stops routing here before the server closes; SIGINT (Ctrl-C) stops at once.

import { ConfigError, helpText, parseWebhookConfig } from './config.ts';
import { createLogger } from '../shared/logger.ts';
import { startWebhookWithConfig } from './start-webhook.ts';

export async function run(argv: string[]): Promise<number> {
  let config;
  try {
    config = parseWebhookConfig(argv);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`trainjob-progress webhook: ${error.message}`);
    return 2;
  }
  if (config === undefined) {
    console.log(helpText());
    return 0;
  }

  const logger = createLogger('webhook', config.logLevel);
  const startAborted = new AbortController();
  const signals = waitForSignal();
  void signals.then(() => startAborted.abort());
  let webhook;
  try {
    webhook = await startWebhookWithConfig(config, { logger, signal: startAborted.signal });
  } catch (error) {
    if (startAborted.signal.aborted) return 0;
    logger.error({ err: error }, 'webhook failed to start');
    return 1;
  }

  const signal = await signals;
  logger.info({ signal }, 'shutting down');
  webhook.beginShutdown();
  if (signal === 'SIGTERM' && config.shutdownDelayMs > 0) {
    await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
  }
  await webhook.stop();
  return 0;
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handle = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', handle);
      process.off('SIGINT', handle);
      resolve(signal);
    };
    process.on('SIGTERM', handle);
    process.on('SIGINT', handle);
  });
}
