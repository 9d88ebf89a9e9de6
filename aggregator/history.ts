// The bounded history of one TrainJob's statuses, for the JSON API and the web page charts.
//
// It keeps at most `limit` entries in time order. When it is full, every second entry of
// the older half is removed, so the newest samples keep their full resolution while the
// whole run stays visible at a coarser one. An entry whose content equals the previous
// entry's is not added.

import type { TrainerStatusObject } from '../shared/trainer-status.ts';

export interface HistoryEntry {
  /** When the sidecar observed the sample, RFC 3339. */
  time: string;
  status: TrainerStatusObject;
}

export const MIN_HISTORY_LIMIT = 4;

export class History {
  readonly #limit: number;
  #entries: HistoryEntry[] = [];
  #lastContent: string | undefined;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < MIN_HISTORY_LIMIT) {
      throw new RangeError(
        `invalid history limit ${limit}: expected an integer ≥ ${MIN_HISTORY_LIMIT}`,
      );
    }
    this.#limit = limit;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Appends an entry unless its content (compared as a string) equals the previous one. */
  add(entry: HistoryEntry, content: string): void {
    if (content === this.#lastContent) return;
    this.#lastContent = content;
    if (this.#entries.length >= this.#limit) this.#thin();
    this.#entries.push(entry);
  }

  /** Returns the entries, oldest first. */
  entries(): readonly HistoryEntry[] {
    return this.#entries;
  }

  #thin(): void {
    const half = Math.floor(this.#entries.length / 2);
    const older = this.#entries.slice(0, half).filter((_, index) => index % 2 === 0);
    this.#entries = older.concat(this.#entries.slice(half));
  }
}
