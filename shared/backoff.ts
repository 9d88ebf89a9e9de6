// Capped exponential backoff with jitter for retries of API calls and watches.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/**
 * Returns the delay before retry number `attempt` (1 for the first retry): a random value
 * between half and all of min(maxMs, initialMs × 2^(attempt − 1)). Keeping half of the
 * step fixed means a retry never fires at once, and the random half spreads the retries of
 * many jobs apart.
 */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const step = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.round(step / 2 + random() * (step / 2));
}

/** Resolves after `ms` milliseconds, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
