// Decides from scrape outcomes whether the trainer process has exited, for container mode,
// where the sidecar is a regular container that must stop by itself so the Job can complete.
//
// Rule: the trainer counts as exited once the endpoint has responded at least once (any HTTP
// response, or a connection accepted but timed out) and then refused connections for at least
// `minRefusals` consecutive scrapes spanning at least `minAbsenceMs`. Any response or timeout
// resets the streak, because something still listens on the port. Other network errors
// neither count nor reset. Before the first response, refusals never count: the model may load
// for many minutes before the endpoint starts listening.

export const DEFAULT_MIN_REFUSALS = 3;

export interface TrainerPresenceOptions {
  minRefusals?: number;
  minAbsenceMs: number;
}

export class TrainerPresence {
  readonly #minRefusals: number;
  readonly #minAbsenceMs: number;
  #seen = false;
  #refusals = 0;
  #firstRefusalAtMs = 0;

  constructor(options: TrainerPresenceOptions) {
    this.#minRefusals = options.minRefusals ?? DEFAULT_MIN_REFUSALS;
    this.#minAbsenceMs = options.minAbsenceMs;
  }

  /** True once the endpoint has responded at least once. */
  get seen(): boolean {
    return this.#seen;
  }

  /** Records an HTTP response or an accepted connection. */
  recordPresent(): void {
    this.#seen = true;
    this.#refusals = 0;
  }

  /** Records a refused connection at `nowMs`. */
  recordRefused(nowMs: number): void {
    if (!this.#seen) return;
    if (this.#refusals === 0) this.#firstRefusalAtMs = nowMs;
    this.#refusals++;
  }

  /** Returns whether the refusal streak since the last response means the trainer exited. */
  hasExited(nowMs: number): boolean {
    return (
      this.#seen &&
      this.#refusals >= this.#minRefusals &&
      nowMs - this.#firstRefusalAtMs >= this.#minAbsenceMs
    );
  }
}
