// A token bucket: tokens accrue continuously at `ratePerSecond` up to `burst`, and each
// operation takes one or more. Callers pass the current time in milliseconds, so the
// arithmetic is deterministic under test.

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #updatedAt: number;

  /** Starts full, so a burst of `burst` operations passes at once. */
  constructor(ratePerSecond: number, burst: number, nowMs: number) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) {
      throw new RangeError(
        `invalid token bucket: rate ${ratePerSecond}/s and burst ${burst}, expected rate > 0 and burst ≥ 1`,
      );
    }
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#updatedAt = nowMs;
  }

  /** Takes `cost` tokens and returns true when the bucket contains them; otherwise takes none. */
  tryTake(nowMs: number, cost = 1): boolean {
    this.#refill(nowMs);
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /** Takes `cost` tokens even into debt, which delays the operations that follow. */
  charge(nowMs: number, cost: number): void {
    this.#refill(nowMs);
    this.#tokens -= cost;
  }

  /** Milliseconds until `cost` tokens are available; 0 when they are available now. */
  waitMs(nowMs: number, cost = 1): number {
    this.#refill(nowMs);
    const missing = cost - this.#tokens;
    return missing <= 0 ? 0 : Math.ceil(missing / this.#ratePerMs);
  }

  #refill(nowMs: number): void {
    if (nowMs <= this.#updatedAt) return;
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + (nowMs - this.#updatedAt) * this.#ratePerMs,
    );
    this.#updatedAt = nowMs;
  }
}
