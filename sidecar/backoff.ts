// Reconnect delays for the aggregator stream.
//
// Ordinary failures use capped exponential backoff with full jitter: attempt n (from 0) waits
// a uniform random time in [0, min(maxMs, initialMs · 2^n)], so that many sidecars cut off at
// once do not reconnect in step. A rejected token (close code 4401/4403 or HTTP 401/403)
// waits much longer, in [authMinMs, 2 · authMinMs] doubling per rejection up to authMaxMs,
// because only a token the kubelet has rotated can succeed.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  authMinMs: number;
  authMaxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 1000,
  maxMs: 30_000,
  authMinMs: 30_000,
  authMaxMs: 300_000,
});

export class ReconnectBackoff {
  readonly #options: BackoffOptions;
  readonly #random: () => number;
  #attempts = 0;
  #authRejections = 0;

  constructor(options: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    this.#options = { ...DEFAULT_BACKOFF, ...options };
    this.#random = random;
  }

  /** Returns the delay before the next attempt after an ordinary failure. */
  nextDelayMs(): number {
    const ceiling = Math.min(this.#options.maxMs, this.#options.initialMs * 2 ** this.#attempts);
    this.#attempts = Math.min(this.#attempts + 1, 30);
    return Math.round(this.#random() * ceiling);
  }

  /** Returns the delay before the next attempt after the aggregator rejected the token. */
  nextAuthDelayMs(): number {
    const base = Math.min(
      this.#options.authMaxMs,
      this.#options.authMinMs * 2 ** this.#authRejections,
    );
    this.#authRejections = Math.min(this.#authRejections + 1, 30);
    return Math.round(Math.min(this.#options.authMaxMs, base * (1 + this.#random())));
  }

  /** Starts over after a connection has stayed healthy for a while. */
  reset(): void {
    this.#attempts = 0;
    this.#authRejections = 0;
  }
}
