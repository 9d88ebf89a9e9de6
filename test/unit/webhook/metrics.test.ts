import { expect } from 'chai';
import { Counter, Gauge, Histogram, MetricsRegistry } from '../../../webhook/metrics.ts';

describe('webhook/metrics', () => {
  it('renders counters with escaped labels', () => {
    const registry = new MetricsRegistry();
    const counter = registry.register(new Counter('requests_total', 'Requests.', ['reason']));
    counter.inc(['a"b\\c\nd']);
    counter.inc(['a"b\\c\nd'], 2);
    expect(registry.render()).to.equal(
      '# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{reason="a\\"b\\\\c\\nd"} 3\n',
    );
  });

  it('renders cumulative histogram buckets', () => {
    const registry = new MetricsRegistry();
    const histogram = registry.register(new Histogram('latency_seconds', 'Latency.', [0.1, 1]));
    histogram.observe(0.05);
    histogram.observe(0.5);
    histogram.observe(5);
    const text = registry.render();
    expect(text).to.contain('latency_seconds_bucket{le="0.1"} 1\n');
    expect(text).to.contain('latency_seconds_bucket{le="1"} 2\n');
    expect(text).to.contain('latency_seconds_bucket{le="+Inf"} 3\n');
    expect(text).to.contain('latency_seconds_sum 5.55\n');
    expect(text).to.contain('latency_seconds_count 3\n');
  });

  it('reads gauges when rendering', () => {
    const registry = new MetricsRegistry();
    let value = 1;
    registry.register(new Gauge('up', 'Up.', () => value));
    value = NaN;
    expect(registry.render()).to.contain('up NaN\n');
  });
});
