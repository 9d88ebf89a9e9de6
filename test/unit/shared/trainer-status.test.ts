import { expect } from 'chai';

import { EMPTY_SAMPLE, type MetricsSample } from '../../../shared/metrics-sample.ts';
import {
  finalStatus,
  formatTimestamp,
  formatTrainerStatus,
  isFinalSummary,
  parseTrainerStatus,
  runningStatus,
  summarizeRemainingTime,
} from '../../../shared/trainer-status.ts';

const AT = new Date('2026-01-23T10:30:45.678Z');

function sample(fields: Partial<MetricsSample>): MetricsSample {
  return { ...EMPTY_SAMPLE, ...fields };
}

describe('remaining time summary', () => {
  const vectors: [number | null, string][] = [
    [30, 'less than a minute'],
    [90, '1 minute'],
    [3600, '1 hour'],
    [3665, '1 hour 1 minute'],
    [86400, '1 day'],
    [90000, '1 day 1 hour'],
    [90060, '1 day 1 hour'],
    [9855, '2 hours 44 minutes'],
    [172800 + 120, '2 days'],
    [7200, '2 hours'],
    [120, '2 minutes'],
    [0, ''],
    [-5, ''],
    [null, ''],
  ];
  for (const [seconds, summary] of vectors) {
    it(`summarizes ${seconds} s as ${JSON.stringify(summary)}`, () => {
      expect(summarizeRemainingTime(seconds)).to.equal(summary);
    });
  }
});

describe('trainerStatus formatting', () => {
  it('writes the documented running example byte for byte', () => {
    const running = sample({
      progressPercentage: 45,
      estimatedRemainingSeconds: 9855,
      currentStep: 4530,
      totalSteps: 10000,
      currentEpoch: 2,
      totalEpochs: 5,
      trainMetrics: { throughput_samples_sec: 128.5, loss: 0.234, learning_rate: 0.00005 },
      evalMetrics: { eval_f1_score: 0.87, eval_accuracy: 0.89 },
    });
    expect(formatTrainerStatus(runningStatus(running), AT)).to.equal(
      '{"progressPercentage":45,"estimatedRemainingSeconds":9855,' +
        '"estimatedRemainingTimeSummary":"2 hours 44 minutes","currentStep":4530,' +
        '"totalSteps":10000,"currentEpoch":2,"totalEpochs":5,"trainMetrics":' +
        '{"learning_rate":0.00005,"loss":0.234,"throughput_samples_sec":128.5},' +
        '"evalMetrics":{"eval_accuracy":0.89,"eval_f1_score":0.87},' +
        '"lastUpdatedTime":"2026-01-23T10:30:45Z"}',
    );
  });

  it('always writes progressPercentage, even null', () => {
    expect(formatTrainerStatus(runningStatus(EMPTY_SAMPLE), AT)).to.equal(
      '{"progressPercentage":null,"lastUpdatedTime":"2026-01-23T10:30:45Z"}',
    );
  });

  it('writes zero remaining seconds without a summary', () => {
    const value = formatTrainerStatus(
      runningStatus(sample({ progressPercentage: 99, estimatedRemainingSeconds: 0 })),
      AT,
    );
    expect(value).to.equal(
      '{"progressPercentage":99,"estimatedRemainingSeconds":0,' +
        '"lastUpdatedTime":"2026-01-23T10:30:45Z"}',
    );
  });

  it('omits empty metric maps', () => {
    const value = formatTrainerStatus(
      runningStatus(sample({ progressPercentage: 1, trainMetrics: {}, evalMetrics: {} })),
      AT,
    );
    expect(value).to.not.include('Metrics');
  });

  it('sorts metric names by code point', () => {
    const value = formatTrainerStatus(
      runningStatus(sample({ trainMetrics: { b: 1, B: 2, a: 3, '\u{1F600}': 4, '\uFF5E': 5 } })),
      AT,
    );
    const names = Object.keys((JSON.parse(value) as { trainMetrics: object }).trainMetrics);
    expect(names).to.deep.equal(['B', 'a', 'b', '\uFF5E', '\u{1F600}']);
  });

  it('truncates timestamps to whole seconds in UTC', () => {
    expect(formatTimestamp(new Date('2026-12-31T23:59:59.999Z'))).to.equal('2026-12-31T23:59:59Z');
  });
});

describe('final markers', () => {
  it('marks a normal completion as complete at 100 %', () => {
    const status = finalStatus(
      sample({ progressPercentage: 98, currentStep: 100, totalSteps: 100 }),
      'Complete',
    );
    expect(status.summary).to.equal('complete');
    expect(status.sample.progressPercentage).to.equal(100);
    expect(status.sample.estimatedRemainingSeconds).to.equal(0);
  });

  it('marks an early stop', () => {
    const status = finalStatus(
      sample({ progressPercentage: 60, currentStep: 600, totalSteps: 1000 }),
      'Complete',
    );
    expect(status.summary).to.equal('complete (early stopped)');
    expect(status.sample.progressPercentage).to.equal(60);
    expect(status.sample.estimatedRemainingSeconds).to.equal(0);
  });

  it('treats 100 % with a lagging step count as complete', () => {
    const status = finalStatus(
      sample({ progressPercentage: 100, currentStep: 990, totalSteps: 1000 }),
      'Complete',
    );
    expect(status.summary).to.equal('complete');
  });

  it('treats unknown totals as complete', () => {
    expect(finalStatus(sample({ currentStep: 5 }), 'Complete').summary).to.equal('complete');
    const zeroTotal = sample({ currentStep: 5, totalSteps: 0, progressPercentage: 10 });
    expect(finalStatus(zeroTotal, 'Complete').summary).to.equal('complete');
  });

  it('marks a failure with the last progress', () => {
    const last = sample({ progressPercentage: 37, estimatedRemainingSeconds: 120, currentStep: 5 });
    const status = finalStatus(last, 'Failed');
    expect(status.summary).to.equal('failed at 37%');
    expect(status.sample).to.deep.equal(last);
  });

  it('marks a failure without progress as 0 %', () => {
    expect(finalStatus(EMPTY_SAMPLE, 'Failed').summary).to.equal('failed at 0%');
  });

  it('recognizes final summaries', () => {
    expect(isFinalSummary('complete')).to.equal(true);
    expect(isFinalSummary('complete (early stopped)')).to.equal(true);
    expect(isFinalSummary('failed at 12%')).to.equal(true);
    expect(isFinalSummary('1 hour')).to.equal(false);
    expect(isFinalSummary('')).to.equal(false);
  });
});

describe('trainerStatus parsing', () => {
  it('reads back what it wrote', () => {
    const written = runningStatus(
      sample({ progressPercentage: 45, currentStep: 4530, trainMetrics: { loss: 0.2 } }),
    );
    const value = formatTrainerStatus(written, AT);
    const parsed = parseTrainerStatus(value);
    expect(parsed?.lastUpdatedTime).to.equal('2026-01-23T10:30:45Z');
    expect(formatTrainerStatus(parsed!.status, AT)).to.equal(value);
  });

  it('keeps the final summary', () => {
    const value = formatTrainerStatus(finalStatus(sample({ progressPercentage: 3 }), 'Failed'), AT);
    expect(parseTrainerStatus(value)?.status.summary).to.equal('failed at 3%');
  });

  it('returns undefined for missing or unreadable values', () => {
    expect(parseTrainerStatus(undefined)).to.equal(undefined);
    expect(parseTrainerStatus('not json')).to.equal(undefined);
    expect(parseTrainerStatus('[]')).to.equal(undefined);
  });
});

describe('trainerStatus metric order', () => {
  it('writes integer-like names in code-point order', () => {
    const metrics = { a: 3, '2': 2, B: 4, '10': 1, _: 5, é: 8, '\uFFFF': 7, '\u{1F600}': 6 };
    const value = formatTrainerStatus(runningStatus(sample({ evalMetrics: metrics })), AT);
    expect(value).to.include(
      '"evalMetrics":{"10":1,"2":2,"B":4,"_":5,"a":3,"é":8,"\uFFFF":7,"\u{1F600}":6}',
    );
  });

  it('writes a metric named __proto__', () => {
    const value = formatTrainerStatus(
      runningStatus(
        sample({ trainMetrics: JSON.parse('{"__proto__": 1}') as MetricsSample['trainMetrics'] }),
      ),
      AT,
    );
    expect(value).to.include('"trainMetrics":{"__proto__":1}');
  });
});
