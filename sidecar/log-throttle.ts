// Rate limit for log lines that can repeat on every scrape, such as a malformed body.

export class LogThrottle {
  readonly #intervalMs: number;
  readonly #state = new Map<string, { lastLoggedAtMs: number; suppressed: number }>();

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /**
   * Returns the number of repeats suppressed since the last logged one when a line with this
   * key may be logged now, or undefined when it is to be suppressed (and counted).
   */
  admit(key: string, nowMs: number = Date.now()): number | undefined {
    const state = this.#state.get(key);
    if (state === undefined) {
      this.#state.set(key, { lastLoggedAtMs: nowMs, suppressed: 0 });
      return 0;
    }
    if (nowMs - state.lastLoggedAtMs < this.#intervalMs) {
      state.suppressed++;
      return undefined;
    }
    const suppressed = state.suppressed;
    state.lastLoggedAtMs = nowMs;
    state.suppressed = 0;
    return suppressed;
  }
}
