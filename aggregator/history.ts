// The bounded history of one TrainJob's statuses, for the JSON API and the web page charts.
//
// It keeps at most `limit` entries, and at most `maxBytes` of entries serialized as JSON, in
// time order. When either bound would be exceeded, every second entry of the older half is
// removed, so the newest samples keep their full resolution while the whole run stays
// visible at a coarser one. An entry whose content equals the previous entry's is not added.
//
// An entry larger than MAX_ENTRY_BYTES keeps only the numeric and null values of its metric
// maps; if it is still too large, it keeps no metrics at all. Either way it is marked
// `trimmed`, and the job's live status still carries every metric.

import { setOwnProperty, type MetricMap } from '../shared/metrics-sample.ts';
import type { TrainerStatusObject } from '../shared/trainer-status.ts';

export interface HistoryEntry {
  /** When the sidecar observed the sample, RFC 3339. */
  time: string;
  status: TrainerStatusObject;
  /** Set when metrics were removed to fit MAX_ENTRY_BYTES. */
  trimmed?: true;
}

export const MIN_HISTORY_LIMIT = 4;
/** Largest entry stored as it is, serialized as JSON. */
export const MAX_ENTRY_BYTES = 16 * 1024;
/** Smallest byte budget: room for MIN_HISTORY_LIMIT entries of the largest size. */
export const MIN_HISTORY_BYTES = MIN_HISTORY_LIMIT * MAX_ENTRY_BYTES;
export const DEFAULT_HISTORY_BYTES = 4 * 1024 * 1024;

export class History {
  readonly #limit: number;
  readonly #maxBytes: number;
  #entries: HistoryEntry[] = [];
  /** Serialized size of each entry, in the order of #entries. */
  #sizes: number[] = [];
  #bytes = 0;
  #lastContent: string | undefined;

  constructor(limit: number, maxBytes = DEFAULT_HISTORY_BYTES) {
    if (!Number.isInteger(limit) || limit < MIN_HISTORY_LIMIT) {
      throw new RangeError(
        `invalid history limit ${limit}: expected an integer ≥ ${MIN_HISTORY_LIMIT}`,
      );
    }
    if (!Number.isInteger(maxBytes) || maxBytes < MIN_HISTORY_BYTES) {
      throw new RangeError(
        `invalid history byte budget ${maxBytes}: expected an integer ≥ ${MIN_HISTORY_BYTES}`,
      );
    }
    this.#limit = limit;
    this.#maxBytes = maxBytes;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Total serialized size of the entries, in bytes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends an entry unless its content (compared as a string) equals the previous one. */
  add(entry: HistoryEntry, content: string): void {
    if (content === this.#lastContent) return;
    this.#lastContent = content;
    const { stored, bytes } = fitEntry(entry);
    while (
      this.#entries.length > 0 &&
      (this.#entries.length >= this.#limit || this.#bytes + bytes > this.#maxBytes)
    ) {
      if (!this.#thin()) this.#dropOldest();
    }
    this.#entries.push(stored);
    this.#sizes.push(bytes);
    this.#bytes += bytes;
  }

  /** Returns the entries, oldest first. */
  entries(): readonly HistoryEntry[] {
    return this.#entries;
  }

  // Removes every second entry of the older half; returns false when that removes nothing,
  // which happens with fewer than four entries.
  #thin(): boolean {
    const half = Math.floor(this.#entries.length / 2);
    const keep = (_: unknown, index: number): boolean => index >= half || index % 2 === 0;
    const entries = this.#entries.filter(keep);
    if (entries.length === this.#entries.length) return false;
    this.#entries = entries;
    this.#sizes = this.#sizes.filter(keep);
    this.#bytes = this.#sizes.reduce((total, size) => total + size, 0);
    return true;
  }

  #dropOldest(): void {
    this.#entries.shift();
    this.#bytes -= this.#sizes.shift() ?? 0;
  }
}

/** Returns the entry trimmed to MAX_ENTRY_BYTES when needed, and its serialized size. */
function fitEntry(entry: HistoryEntry): { stored: HistoryEntry; bytes: number } {
  const bytes = serializedBytes(entry);
  if (bytes <= MAX_ENTRY_BYTES) return { stored: entry, bytes };
  const { trainMetrics, evalMetrics, ...rest } = entry.status;
  const numeric: HistoryEntry = {
    time: entry.time,
    status: {
      ...rest,
      ...(trainMetrics === undefined ? {} : { trainMetrics: numericMetrics(trainMetrics) }),
      ...(evalMetrics === undefined ? {} : { evalMetrics: numericMetrics(evalMetrics) }),
    },
    trimmed: true,
  };
  const numericBytes = serializedBytes(numeric);
  if (numericBytes <= MAX_ENTRY_BYTES) return { stored: numeric, bytes: numericBytes };
  const bare: HistoryEntry = { time: entry.time, status: rest, trimmed: true };
  return { stored: bare, bytes: serializedBytes(bare) };
}

function numericMetrics(metrics: MetricMap): MetricMap {
  const kept: MetricMap = {};
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== 'string') setOwnProperty(kept, name, value);
  }
  return kept;
}

function serializedBytes(entry: HistoryEntry): number {
  return Buffer.byteLength(JSON.stringify(entry));
}
