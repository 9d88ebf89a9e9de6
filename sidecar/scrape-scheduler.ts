// The scrape loop: when to scrape the trainer's endpoint next, and what each outcome means.
//
// Scrapes start every live interval. While the endpoint refuses connections, the delay starts
// at refusedInitialDelayMs and doubles up to the live interval, logging only at debug level,
// because the model may load for minutes before the trainer listens. When a sample reports
// progress below 100 % and less than two live intervals remaining, scrapes start every
// fastIntervalMs so that the last sample lies close to the real end. Scraping goes on after
// 100 %. In container mode, the loop ends once TrainerPresence decides that the trainer exited.

import type { Logger } from '../shared/logger.ts';
import { MAX_BODY_BYTES, parseMetricsBody, type MetricsSample } from '../shared/metrics-sample.ts';
import { LogThrottle } from './log-throttle.ts';
import { scrapeMetrics, SCRAPE_TIMEOUT_MS, type ScrapeResult } from './scraper.ts';
import type { TrainerPresence } from './trainer-presence.ts';

export const FAST_SCRAPE_INTERVAL_MS = 1000;
export const REFUSED_INITIAL_DELAY_MS = 1000;
const WARNING_INTERVAL_MS = 60_000;

export interface ScrapeSchedulerOptions {
  url: URL;
  liveIntervalMs: number;
  fastIntervalMs?: number;
  refusedInitialDelayMs?: number;
  timeoutMs?: number;
  presence: TrainerPresence;
  /** Container mode: end the loop and call onTrainerExited once the trainer is gone. */
  exitWhenTrainerGone: boolean;
  logger: Logger;
  onSample: (sample: MetricsSample, observedAt: Date) => void;
  onTrainerExited: () => void;
}

/** Returns whether a sample reports that the run ends within two live intervals, short of 100 %. */
export function isNearEnd(sample: MetricsSample, liveIntervalMs: number): boolean {
  const remaining = sample.estimatedRemainingSeconds;
  if (remaining === null || sample.progressPercentage === 100) return false;
  return remaining * 1000 < 2 * liveIntervalMs;
}

export class ScrapeScheduler {
  readonly #options: ScrapeSchedulerOptions;
  readonly #log: Logger;
  readonly #throttle = new LogThrottle(WARNING_INTERVAL_MS);
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<unknown> | undefined;
  #stopped = false;
  #refusals = 0;
  #responding = false;

  constructor(options: ScrapeSchedulerOptions) {
    this.#options = options;
    this.#log = options.logger;
  }

  start(): void {
    void this.#tick();
  }

  /** Stops the loop and waits for a scrape in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
  }

  /** Scrapes once outside the loop and handles the outcome, as for the last scrape on SIGTERM. */
  async scrapeOnce(): Promise<ScrapeResult> {
    const result = await scrapeMetrics(this.#options.url, { timeoutMs: this.#timeoutMs() });
    this.#handle(result, new Date());
    return result;
  }

  async #tick(): Promise<void> {
    this.#timer = undefined;
    const startedAtMs = Date.now();
    const scrape = scrapeMetrics(this.#options.url, { timeoutMs: this.#timeoutMs() });
    this.#inFlight = scrape;
    const result = await scrape;
    this.#inFlight = undefined;
    if (this.#stopped) return;

    const delayMs = this.#handle(result, new Date(startedAtMs));
    if (this.#options.exitWhenTrainerGone && this.#options.presence.hasExited(Date.now())) {
      this.#stopped = true;
      this.#log.info(
        { refusedScrapes: this.#refusals },
        'metrics endpoint gone for good: the trainer has exited',
      );
      this.#options.onTrainerExited();
      return;
    }
    const elapsedMs = Date.now() - startedAtMs;
    this.#timer = setTimeout(() => void this.#tick(), Math.max(0, delayMs - elapsedMs));
  }

  #timeoutMs(): number {
    return this.#options.timeoutMs ?? SCRAPE_TIMEOUT_MS;
  }

  /** Records the outcome and returns the delay from this scrape's start to the next one. */
  #handle(result: ScrapeResult, observedAt: Date): number {
    const { liveIntervalMs, presence } = this.#options;
    if (result.kind === 'refused') {
      presence.recordRefused(Date.now());
      return this.#onRefused();
    }

    if (result.kind !== 'failed') presence.recordPresent();
    if (result.kind !== 'failed' && result.kind !== 'timeout') this.#onAnswered();
    if (result.kind !== 'ok') {
      this.#warn(result.kind, describeFailure(result));
      return liveIntervalMs;
    }

    const parsed = parseMetricsBody(result.body);
    if (!parsed.ok) {
      this.#warn('invalid-body', `skipping a metrics body: ${parsed.reason}`);
      return liveIntervalMs;
    }
    this.#options.onSample(parsed.sample, observedAt);
    if (!isNearEnd(parsed.sample, liveIntervalMs)) return liveIntervalMs;
    return Math.min(liveIntervalMs, this.#options.fastIntervalMs ?? FAST_SCRAPE_INTERVAL_MS);
  }

  #onRefused(): number {
    this.#refusals++;
    if (this.#responding) {
      this.#responding = false;
      this.#log.info('metrics endpoint stopped accepting connections');
    }
    const initialMs = this.#options.refusedInitialDelayMs ?? REFUSED_INITIAL_DELAY_MS;
    const delayMs = Math.min(this.#options.liveIntervalMs, initialMs * 2 ** (this.#refusals - 1));
    this.#log.debug(
      { refusedScrapes: this.#refusals, retryInMs: delayMs },
      'metrics endpoint not listening yet',
    );
    return delayMs;
  }

  #onAnswered(): void {
    this.#refusals = 0;
    if (this.#responding) return;
    this.#responding = true;
    this.#log.info({ url: this.#options.url.href }, 'metrics endpoint is responding');
  }

  #warn(key: string, message: string): void {
    const suppressed = this.#throttle.admit(key);
    if (suppressed === undefined) return;
    this.#log.warn({ url: this.#options.url.href, suppressedRepeats: suppressed }, message);
  }
}

function describeFailure(
  result: Exclude<ScrapeResult, { kind: 'ok' } | { kind: 'refused' }>,
): string {
  switch (result.kind) {
    case 'http-error':
      return `metrics endpoint returned HTTP ${result.status}`;
    case 'too-large':
      return `skipping a metrics body of at least ${result.bytes} bytes: over the ${MAX_BODY_BYTES}-byte limit`;
    case 'timeout':
      return 'metrics scrape timed out';
    case 'failed':
      return `metrics scrape failed: ${result.error.message}`;
  }
}
