// Prometheus metrics of the webhook in the text exposition format (version 0.0.4), from a
// registry small enough that recording a sample is a Map lookup and an addition.

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface Metric {
  render(lines: string[]): void;
}

/** A counter with a fixed list of label names; values are given in the same order. */
export class Counter implements Metric {
  readonly #name: string;
  readonly #help: string;
  readonly #labelNames: readonly string[];
  readonly #values = new Map<string, { labels: readonly string[]; value: number }>();

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    this.#name = name;
    this.#help = help;
    this.#labelNames = labelNames;
  }

  inc(labels: readonly string[] = [], amount = 1): void {
    const key = labels.join('\u0000');
    const entry = this.#values.get(key);
    if (entry === undefined) this.#values.set(key, { labels: [...labels], value: amount });
    else entry.value += amount;
  }

  /** Returns the current value for `labels`, 0 when never incremented. */
  value(labels: readonly string[] = []): number {
    return this.#values.get(labels.join('\u0000'))?.value ?? 0;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.#name} ${this.#help}`, `# TYPE ${this.#name} counter`);
    for (const { labels, value } of this.#values.values()) {
      lines.push(`${this.#name}${formatLabels(this.#labelNames, labels)} ${value}`);
    }
  }
}

/** A gauge whose value is read from a callback when metrics are scraped. */
export class Gauge implements Metric {
  readonly #name: string;
  readonly #help: string;
  readonly #read: () => number;

  constructor(name: string, help: string, read: () => number) {
    this.#name = name;
    this.#help = help;
    this.#read = read;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.#name} ${this.#help}`, `# TYPE ${this.#name} gauge`);
    lines.push(`${this.#name} ${formatNumber(this.#read())}`);
  }
}

/** A histogram of seconds with fixed upper bounds. */
export class Histogram implements Metric {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.#name = name;
    this.#help = help;
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (value <= this.#bounds[i]!) {
        this.#counts[i]!++;
        return;
      }
    }
  }

  get count(): number {
    return this.#count;
  }

  render(lines: string[]): void {
    lines.push(`# HELP ${this.#name} ${this.#help}`, `# TYPE ${this.#name} histogram`);
    let cumulative = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      cumulative += this.#counts[i]!;
      lines.push(`${this.#name}_bucket{le="${this.#bounds[i]}"} ${cumulative}`);
    }
    lines.push(`${this.#name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.#name}_sum ${this.#sum}`, `${this.#name}_count ${this.#count}`);
  }
}

/** Renders a set of metrics in registration order. */
export class MetricsRegistry {
  readonly #metrics: Metric[] = [];

  register<T extends Metric>(metric: T): T {
    this.#metrics.push(metric);
    return metric;
  }

  render(): string {
    const lines: string[] = [];
    for (const metric of this.#metrics) metric.render(lines);
    return `${lines.join('\n')}\n`;
  }
}

function formatLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return '';
  const pairs = names.map((name, i) => `${name}="${escapeLabelValue(values[i] ?? '')}"`);
  return `{${pairs.join(',')}}`;
}

function escapeLabelValue(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const PREFIX = 'trainjob_progress_webhook_';
const LATENCY_BOUNDS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Values that the webhook's gauges read when metrics are scraped. */
export interface WebhookGaugeSources {
  ready: () => boolean;
  cacheSynced: () => boolean;
  cachedTrainJobs: () => number;
  /** Unix time in seconds when the serving certificate expires, NaN before one is loaded. */
  certificateNotAfterSeconds: () => number;
}

/** The webhook's metrics. */
export class WebhookMetrics {
  readonly registry = new MetricsRegistry();
  readonly admissions = this.registry.register(
    new Counter(
      `${PREFIX}admissions_total`,
      'Admission requests answered, by result (injected, skipped, error) and reason.',
      ['result', 'reason'],
    ),
  );
  readonly admissionDuration = this.registry.register(
    new Histogram(
      `${PREFIX}admission_duration_seconds`,
      'Time from reading an admission request to writing its answer.',
      LATENCY_BOUNDS_SECONDS,
    ),
  );
  readonly rejectedRequests = this.registry.register(
    new Counter(
      `${PREFIX}rejected_requests_total`,
      'HTTP requests to /mutate answered with an error status, by status code.',
      ['code'],
    ),
  );
  readonly settingFallbacks = this.registry.register(
    new Counter(
      `${PREFIX}setting_fallbacks_total`,
      'Invalid TrainJob annotations replaced by the chart default, by setting.',
      ['setting'],
    ),
  );
  readonly trainJobLookups = this.registry.register(
    new Counter(
      `${PREFIX}trainjob_lookups_total`,
      'TrainJob lookups, by source (cache, live) and outcome (found, not-found, failed).',
      ['source', 'outcome'],
    ),
  );
  readonly caBundleRepairs = this.registry.register(
    new Counter(
      `${PREFIX}ca_bundle_repairs_total`,
      'Writes of the caBundle of the MutatingWebhookConfiguration.',
    ),
  );
  readonly certificateRotations = this.registry.register(
    new Counter(
      `${PREFIX}certificate_rotations_total`,
      'Serving certificates loaded into the HTTPS server after the first one.',
    ),
  );

  constructor(gauges: WebhookGaugeSources) {
    const flag = (read: () => boolean) => () => (read() ? 1 : 0);
    this.registry.register(
      new Gauge(`${PREFIX}ready`, '1 when the webhook reports ready.', flag(gauges.ready)),
    );
    this.registry.register(
      new Gauge(
        `${PREFIX}trainjob_cache_synced`,
        '1 when the TrainJob cache holds a complete list.',
        flag(gauges.cacheSynced),
      ),
    );
    this.registry.register(
      new Gauge(
        `${PREFIX}trainjob_cache_objects`,
        'TrainJobs in the cache.',
        gauges.cachedTrainJobs,
      ),
    );
    this.registry.register(
      new Gauge(
        `${PREFIX}certificate_expiry_timestamp_seconds`,
        'Unix time when the serving certificate expires.',
        gauges.certificateNotAfterSeconds,
      ),
    );
  }
}
