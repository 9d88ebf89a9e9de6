import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Creates the root logger of a component: JSON lines on stdout, level from the argument or
 * TRAINJOB_PROGRESS_LOG_LEVEL (default `info`). Pass it down and derive child loggers.
 */
export function createLogger(component: string, level?: string): Logger {
  const chosen = level ?? process.env.TRAINJOB_PROGRESS_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(chosen)) {
    throw new Error(
      `invalid log level ${JSON.stringify(chosen)}, expected one of ${LEVELS.join(', ')}`,
    );
  }
  return pino({
    level: chosen,
    base: { component },
    redact: {
      paths: ['token', '*.token', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  });
}
