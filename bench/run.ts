// Runs the webhook, fan-out and sidecar benchmarks one after another (about 75 s in all) and
// prints their figures, baselines and ratios as one Markdown table.

import { benchFanOut } from './fan-out.ts';
import { formatTable, type BenchRow } from './report.ts';
import { benchSidecarFootprint } from './sidecar-footprint.ts';
import { benchWebhookHandler } from './webhook-handler.ts';

const benchmarks: [string, () => Promise<BenchRow[]>][] = [
  ['webhook-handler', benchWebhookHandler],
  ['fan-out', benchFanOut],
  ['sidecar-footprint', benchSidecarFootprint],
];

const rows: BenchRow[] = [];
for (const [name, bench] of benchmarks) {
  console.error(`running ${name}…`);
  rows.push(...(await bench()));
}
console.log(formatTable(rows));
