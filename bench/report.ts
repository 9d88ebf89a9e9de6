// Result rows that every benchmark returns, and the helpers that compute and print them.

/** One measured figure next to its baseline from the same run. */
export interface BenchRow {
  benchmark: string;
  metric: string;
  unit: string;
  measured: number;
  baseline: number;
  /** The target as text, e.g. `≤ 5 ms`, or empty when there is none. */
  target: string;
  /** Whether `measured` meets the target, or undefined when there is no target. */
  met: boolean | undefined;
}

/** Returns the p-th percentile (0–100) of `values` by the nearest-rank method. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? NaN;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(3);
}

/** Formats rows as a Markdown table: measured, baseline, measured/baseline ratio and target. */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['benchmark', 'metric', 'measured', 'baseline', 'ratio', 'target', 'met'];
  const metText = (met: boolean | undefined): string => {
    if (met === undefined) return '';
    return met ? 'yes' : 'no';
  };
  const lines = rows.map((row) => [
    row.benchmark,
    row.metric,
    `${formatNumber(row.measured)} ${row.unit}`,
    `${formatNumber(row.baseline)} ${row.unit}`,
    row.baseline > 0 ? `${(row.measured / row.baseline).toFixed(2)}×` : 'n/a (baseline 0)',
    row.target,
    metText(row.met),
  ]);
  const table = [header, header.map(() => '---'), ...lines];
  return table.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
