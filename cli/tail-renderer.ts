// Output of `tail`: a progress bar redrawn in place on a terminal, one line per change
// otherwise, or one JSON object per update with --json.

import type { JobProgress } from '../shared/stream-protocol.ts';
import { formatBarLine, formatPlainLine, formatReport, toJsonRecord } from './progress-view.ts';

export type TailMode = 'tty' | 'plain' | 'json';

export interface TailOutput {
  write(text: string): void;
  /** Terminal width in columns, for the tty mode. */
  columns?: number;
}

export class TailRenderer {
  readonly #mode: TailMode;
  readonly #output: TailOutput;
  #last: string | undefined;
  #lineOpen = false;

  constructor(mode: TailMode, output: TailOutput) {
    this.#mode = mode;
    this.#output = output;
  }

  /** Shows an update; an update that shows the same as the previous one prints nothing. */
  update(progress: JobProgress): void {
    const text = this.#mode === 'json' ? toJsonRecord(progress) : this.#line(progress);
    if (text === this.#last) return;
    this.#last = text;
    if (this.#mode === 'tty') {
      this.#output.write(`\r\x1b[2K${text}`);
      this.#lineOpen = true;
    } else {
      this.#output.write(`${text}\n`);
    }
  }

  /** Shows the last update and, outside --json, the full final report. */
  finish(progress: JobProgress): void {
    this.update(progress);
    this.closeLine();
    if (this.#mode !== 'json') this.#output.write(`${formatReport(progress)}\n`);
  }

  /** Ends the redrawn line so that later output starts on a new line. */
  closeLine(): void {
    if (!this.#lineOpen) return;
    this.#output.write('\n');
    this.#lineOpen = false;
  }

  #line(progress: JobProgress): string {
    if (this.#mode === 'plain') return formatPlainLine(progress);
    const line = formatBarLine(progress);
    const columns = this.#output.columns;
    return columns !== undefined && line.length > columns ? line.slice(0, columns - 1) : line;
  }
}
