// Samples waiting for the aggregator's acknowledgement, numbered with strictly increasing
// sequence numbers from 1. The buffer is bounded: when it is full, the oldest sample is
// dropped, never the newest, because the newest is the current state of the job.

import type { SampleMessage } from '../shared/stream-protocol.ts';
import type { MetricsSample } from '../shared/metrics-sample.ts';

export class SampleBuffer {
  readonly #capacity: number;
  #samples: SampleMessage[] = [];
  #lastSeq = 0;
  #dropped = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`invalid sample buffer capacity ${capacity}: expected an integer ≥ 1`);
    }
    this.#capacity = capacity;
  }

  /** Number of samples waiting for an acknowledgement. */
  get size(): number {
    return this.#samples.length;
  }

  /** Highest sequence number assigned so far, 0 before the first sample. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Number of samples dropped unacknowledged because the buffer was full. */
  get droppedCount(): number {
    return this.#dropped;
  }

  /** Appends a sample with the next sequence number, dropping the oldest one when full. */
  push(sample: MetricsSample, observedAt: Date): SampleMessage {
    const message: SampleMessage = {
      type: 'sample',
      seq: ++this.#lastSeq,
      observedAt: observedAt.toISOString(),
      sample,
    };
    this.#samples.push(message);
    if (this.#samples.length > this.#capacity) {
      this.#samples.shift();
      this.#dropped++;
    }
    return message;
  }

  /** Removes every sample up to and including `seq`: acknowledgements are cumulative. */
  acknowledge(seq: number): void {
    const firstKept = this.#samples.findIndex((message) => message.seq > seq);
    this.#samples = firstKept === -1 ? [] : this.#samples.slice(firstKept);
  }

  /**
   * Applies the `lastSeq` of a welcome. Normally it drops what the aggregator already has.
   * A lastSeq above every number assigned here means the aggregator still remembers an
   * earlier run of this sidecar in the same pod (a container restart): the buffered samples
   * are renumbered after it so that they are not mistaken for duplicates.
   */
  applyWelcome(lastSeq: number): void {
    if (lastSeq <= this.#lastSeq) {
      this.acknowledge(lastSeq);
      return;
    }
    // NOTE: a restarted sidecar whose count happens to equal the earlier run's lastSeq
    // cannot be distinguished and has its buffered samples dropped once.
    this.#lastSeq = lastSeq;
    for (const message of this.#samples) message.seq = ++this.#lastSeq;
  }

  /** Returns the buffered samples with a sequence number above `seq`, oldest first. */
  pendingAfter(seq: number): readonly SampleMessage[] {
    return this.#samples.filter((message) => message.seq > seq);
  }

  /** Returns the newest buffered sample, if any. */
  newest(): SampleMessage | undefined {
    return this.#samples.at(-1);
  }
}
