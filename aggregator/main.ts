// `trainjob-progress aggregator`: runs the aggregator until SIGTERM or SIGINT.

import { createLogger } from '../shared/logger.ts';
import { startAggregator } from './aggregator.ts';
import { aggregatorUsage, ConfigError, parseAggregatorConfig } from './config.ts';

export { startAggregator, type AggregatorOptions, type RunningAggregator } from './aggregator.ts';

export async function run(argv: string[]): Promise<number> {
  let config;
  try {
    config = parseAggregatorConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`trainjob-progress aggregator: ${error.message}`);
    return 2;
  }
  if (config === undefined) {
    console.log(aggregatorUsage());
    return 0;
  }
  const logger = createLogger('aggregator', config.logLevel);
  // A monitor only observes: Node still prints the error and exits with status 1, so a real
  // bug is not hidden, but the log also gets a JSON line with the error. Node 15 and later
  // turn an unhandled rejection into an uncaught exception, so this covers both.
  process.on('uncaughtExceptionMonitor', (error, origin) =>
    logger.fatal({ err: error, origin }, 'aggregator crashed'),
  );
  const aggregator = await startAggregator({ ...config, logger });
  const signal = await nextSignal();
  logger.info({ signal }, 'shutting down');
  await aggregator.stop();
  return 0;
}

function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
