// The aggregator's Prometheus metrics and their text exposition (format 0.0.4).

type Labels = Readonly<Record<string, string>>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, number>;
  /** Computes the value at render time, for gauges read from live state. */
  collect?: () => number;
}

/** A labelled counter or gauge. */
export class Metric {
  readonly #family: Family;

  constructor(family: Family) {
    this.#family = family;
  }

  inc(labels: Labels = {}, amount = 1): void {
    const key = labelKey(labels);
    this.#family.values.set(key, (this.#family.values.get(key) ?? 0) + amount);
  }

  dec(labels: Labels = {}, amount = 1): void {
    this.inc(labels, -amount);
  }

  set(labels: Labels, value: number): void {
    this.#family.values.set(labelKey(labels), value);
  }

  get(labels: Labels = {}): number {
    return this.#family.values.get(labelKey(labels)) ?? 0;
  }
}

export class MetricsRegistry {
  readonly #families: Family[] = [];

  counter(name: string, help: string): Metric {
    return this.#add({ name, help, type: 'counter', values: new Map() });
  }

  gauge(name: string, help: string, collect?: () => number): Metric {
    const family: Family = { name, help, type: 'gauge', values: new Map() };
    if (collect !== undefined) family.collect = collect;
    return this.#add(family);
  }

  /** Renders every family in the Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    for (const family of this.#families) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
      if (family.collect !== undefined) lines.push(`${family.name} ${family.collect()}`);
      if (family.collect === undefined && family.values.size === 0 && family.type === 'gauge') {
        lines.push(`${family.name} 0`);
      }
      for (const [labels, value] of family.values) lines.push(`${family.name}${labels} ${value}`);
    }
    return lines.join('\n') + '\n';
  }

  #add(family: Family): Metric {
    this.#families.push(family);
    return new Metric(family);
  }
}

function labelKey(labels: Labels): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return '';
  const pairs = names.map((name) => `${name}="${escapeLabelValue(labels[name]!)}"`);
  return `{${pairs.join(',')}}`;
}

function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"');
}

/** Every metric that the aggregator exports. */
export interface AggregatorMetrics {
  registry: MetricsRegistry;
  ingestConnections: Metric;
  ingestRejected: Metric;
  samplesReceived: Metric;
  samplesRejected: Metric;
  writes: Metric;
  writeBudgetWaits: Metric;
  writeBudgetWaitSeconds: Metric;
  finalCaptures: Metric;
  viewers: Metric;
  viewersRejected: Metric;
  viewersClosedSlow: Metric;
  deliveries: Metric;
  deliveriesCoalesced: Metric;
  watchRestarts: Metric;
}

/** Creates the aggregator's metrics; `gauges` supplies values read from live state. */
export function createAggregatorMetrics(gauges: {
  trainJobs: () => number;
  writeQueueLength: () => number;
}): AggregatorMetrics {
  const registry = new MetricsRegistry();
  const p = 'trainjob_progress_aggregator_';
  registry.gauge(`${p}trainjobs`, 'TrainJobs tracked.', gauges.trainJobs);
  registry.gauge(
    `${p}write_queue_length`,
    'TrainJobs waiting for the write budget.',
    gauges.writeQueueLength,
  );
  return {
    registry,
    ingestConnections: registry.gauge(`${p}ingest_connections`, 'Open sidecar connections.'),
    ingestRejected: registry.counter(
      `${p}ingest_connections_rejected_total`,
      'Sidecar connections rejected, by reason.',
    ),
    samplesReceived: registry.counter(
      `${p}samples_received_total`,
      'Samples accepted from sidecars.',
    ),
    samplesRejected: registry.counter(
      `${p}samples_rejected_total`,
      'Ingest messages or samples not used, by reason.',
    ),
    writes: registry.counter(
      `${p}writes_total`,
      'TrainJob writes, by target (annotation or mirror) and result.',
    ),
    writeBudgetWaits: registry.counter(
      `${p}write_budget_waits_total`,
      'Writes that waited for the write budget.',
    ),
    writeBudgetWaitSeconds: registry.counter(
      `${p}write_budget_wait_seconds_total`,
      'Seconds writes spent waiting for the write budget.',
    ),
    finalCaptures: registry.counter(
      `${p}final_captures_total`,
      'Final statuses captured, by source.',
    ),
    viewers: registry.gauge(`${p}viewers`, 'Open viewer WebSockets.'),
    viewersRejected: registry.counter(
      `${p}viewers_rejected_total`,
      'Viewer requests rejected, by reason.',
    ),
    viewersClosedSlow: registry.counter(
      `${p}viewers_closed_slow_total`,
      'Viewers closed because they stayed congested.',
    ),
    deliveries: registry.counter(`${p}viewer_deliveries_total`, 'Messages sent to viewers.'),
    deliveriesCoalesced: registry.counter(
      `${p}viewer_deliveries_coalesced_total`,
      'Updates replaced by a newer one before a slow viewer could take them.',
    ),
    watchRestarts: registry.counter(
      `${p}watch_restarts_total`,
      'TrainJob watch restarts, by reason.',
    ),
  };
}
