import { expect } from 'chai';

import {
  MAX_BODY_BYTES,
  parseMetricsBody,
  parseTolerantJson,
  type MetricsSample,
} from '../../../shared/metrics-sample.ts';

function parseSample(body: string): MetricsSample {
  const result = parseMetricsBody(body);
  if (!result.ok) throw new Error(`expected a sample, got: ${result.reason}`);
  return result.sample;
}

describe('metrics body parser', () => {
  it('reads a full ODH body', () => {
    const sample = parseSample(
      JSON.stringify({
        progressPercentage: 45,
        estimatedRemainingSeconds: 9855,
        currentStep: 4530,
        totalSteps: 10000,
        currentEpoch: 2,
        totalEpochs: 5,
        trainMetrics: { loss: 0.234, learning_rate: 0.00005 },
        evalMetrics: { eval_accuracy: 0.89 },
        lastUpdatedTime: '2026-01-23T10:30:45Z',
      }),
    );
    expect(sample).to.deep.equal({
      progressPercentage: 45,
      estimatedRemainingSeconds: 9855,
      currentStep: 4530,
      totalSteps: 10000,
      currentEpoch: 2,
      totalEpochs: 5,
      trainMetrics: { loss: 0.234, learning_rate: 0.00005 },
      evalMetrics: { eval_accuracy: 0.89 },
    });
  });

  it('reads NaN and Infinity tokens as null', () => {
    const sample = parseSample(
      '{"progressPercentage": NaN, "currentStep": Infinity, "totalSteps": -Infinity,' +
        ' "trainMetrics": {"loss": NaN, "grad_norm": Infinity, "note": "NaN Infinity"}}',
    );
    expect(sample.progressPercentage).to.equal(null);
    expect(sample.currentStep).to.equal(null);
    expect(sample.totalSteps).to.equal(null);
    expect(sample.trainMetrics).to.deep.equal({
      grad_norm: null,
      loss: null,
      note: 'NaN Infinity',
    });
  });

  it('keeps tokens inside strings with escaped quotes', () => {
    expect(parseTolerantJson('{"a": "x\\"NaN", "b": NaN}')).to.deep.equal({ a: 'x"NaN', b: null });
  });

  it('accepts integer-valued floats and numeric strings', () => {
    const sample = parseSample(
      '{"progressPercentage": 45.0, "currentStep": " 12 ", "totalSteps": "100", ' +
        '"estimatedRemainingSeconds": "9.9e1", "totalEpochs": 3.0}',
    );
    expect(sample.progressPercentage).to.equal(45);
    expect(sample.currentStep).to.equal(12);
    expect(sample.totalSteps).to.equal(100);
    expect(sample.estimatedRemainingSeconds).to.equal(99);
    expect(sample.totalEpochs).to.equal(3);
  });

  it('floors non-integral values before range rules', () => {
    const sample = parseSample(
      '{"progressPercentage": 99.9, "currentStep": 7.8, "estimatedRemainingSeconds": 0.5}',
    );
    expect(sample.progressPercentage).to.equal(99);
    expect(sample.currentStep).to.equal(7);
    expect(sample.estimatedRemainingSeconds).to.equal(0);
  });

  it('keeps fractional epochs', () => {
    expect(parseSample('{"currentEpoch": 1.98}').currentEpoch).to.equal(1.98);
  });

  it('applies the range rules per key', () => {
    const sample = parseSample(
      '{"progressPercentage": 101, "estimatedRemainingSeconds": -1, "currentStep": -5,' +
        ' "totalSteps": -1, "currentEpoch": -0.5, "totalEpochs": -2}',
    );
    expect(sample.progressPercentage).to.equal(null);
    expect(sample.estimatedRemainingSeconds).to.equal(null);
    expect(sample.currentStep).to.equal(0);
    expect(sample.totalSteps).to.equal(null);
    expect(sample.currentEpoch).to.equal(0);
    expect(sample.totalEpochs).to.equal(null);
    expect(parseSample('{"progressPercentage": -1}').progressPercentage).to.equal(null);
  });

  it('nulls keys of the wrong type and keeps the rest', () => {
    const sample = parseSample(
      '{"progressPercentage": true, "currentStep": [1], "totalSteps": {"a": 1},' +
        ' "currentEpoch": "one", "totalEpochs": 4, "trainMetrics": [1, 2], "evalMetrics": "x"}',
    );
    expect(sample.progressPercentage).to.equal(null);
    expect(sample.currentStep).to.equal(null);
    expect(sample.totalSteps).to.equal(null);
    expect(sample.currentEpoch).to.equal(null);
    expect(sample.totalEpochs).to.equal(4);
    expect(sample.trainMetrics).to.equal(null);
    expect(sample.evalMetrics).to.equal(null);
  });

  it('keeps metric values as they arrive', () => {
    const sample = parseSample(
      '{"trainMetrics": {"loss": "0.4321", "epoch_label": "1", "lr": 1e-5, "gone": null,' +
        ' "flag": true, "nested": {"a": 1}}}',
    );
    expect(sample.trainMetrics).to.deep.equal({
      epoch_label: '1',
      gone: null,
      loss: '0.4321',
      lr: 1e-5,
    });
  });

  it('ignores unknown keys and matches case-sensitively', () => {
    const sample = parseSample('{"ProgressPercentage": 50, "extra": 1, "currentstep": 3}');
    expect(sample.progressPercentage).to.equal(null);
    expect(sample.currentStep).to.equal(null);
  });

  it('drops metric names over 64 characters', () => {
    const longName = 'm'.repeat(65);
    const exactName = 'n'.repeat(64);
    const sample = parseSample(JSON.stringify({ trainMetrics: { [longName]: 1, [exactName]: 2 } }));
    expect(sample.trainMetrics).to.deep.equal({ [exactName]: 2 });
  });

  it('keeps the first 256 metric names in sorted order', () => {
    const metrics: Record<string, number> = {};
    for (let i = 299; i >= 0; i--) metrics[`m${String(i).padStart(3, '0')}`] = i;
    const kept = Object.keys(parseSample(JSON.stringify({ evalMetrics: metrics })).evalMetrics!);
    expect(kept).to.have.length(256);
    expect(kept[0]).to.equal('m000');
    expect(kept[255]).to.equal('m255');
  });

  it('skips a body over 64 KiB whole', () => {
    const body = JSON.stringify({ progressPercentage: 5, pad: 'x'.repeat(MAX_BODY_BYTES) });
    const result = parseMetricsBody(body);
    expect(result.ok).to.equal(false);
  });

  it('rejects non-JSON and non-object bodies', () => {
    expect(parseMetricsBody('<html>').ok).to.equal(false);
    expect(parseMetricsBody('[1,2]').ok).to.equal(false);
    expect(parseMetricsBody('null').ok).to.equal(false);
    expect(parseMetricsBody('42').ok).to.equal(false);
    expect(parseMetricsBody('').ok).to.equal(false);
  });

  it('reads an empty object as an all-null sample', () => {
    expect(parseSample('{}')).to.deep.equal({
      progressPercentage: null,
      estimatedRemainingSeconds: null,
      currentStep: null,
      totalSteps: null,
      currentEpoch: null,
      totalEpochs: null,
      trainMetrics: null,
      evalMetrics: null,
    });
  });
});

describe('metrics body parser bounds', () => {
  it('drops integers beyond 2^53 - 1', () => {
    const sample = parseSample(
      '{"estimatedRemainingSeconds": 1e300, "currentStep": 1e21, "totalSteps": 9007199254740993,' +
        ' "totalEpochs": "12345678901234567890", "progressPercentage": 50}',
    );
    expect(sample.estimatedRemainingSeconds).to.equal(null);
    expect(sample.currentStep).to.equal(null);
    expect(sample.totalSteps).to.equal(null);
    expect(sample.totalEpochs).to.equal(null);
    expect(sample.progressPercentage).to.equal(50);
  });

  it('keeps the largest safe integer', () => {
    const sample = parseSample(`{"totalSteps": ${Number.MAX_SAFE_INTEGER}}`);
    expect(sample.totalSteps).to.equal(Number.MAX_SAFE_INTEGER);
  });

  it('reads a huge negative step as 0', () => {
    expect(parseSample('{"currentStep": -1e300}').currentStep).to.equal(0);
  });

  it('stores a metric named __proto__ as a name', () => {
    const sample = parseSample('{"trainMetrics": {"__proto__": 1, "loss": 2}}');
    expect(Object.keys(sample.trainMetrics!)).to.deep.equal(['__proto__', 'loss']);
    expect(Object.getPrototypeOf(sample.trainMetrics)).to.equal(Object.prototype);
  });
});
