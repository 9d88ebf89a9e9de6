import { ApiException } from '@kubernetes/client-node';
import { expect } from 'chai';

import { toMirroredStatus } from '../../../aggregator/status-mirror.ts';
import { classifyWriteError } from '../../../aggregator/status-writer.ts';

describe('status mirror', () => {
  it('converts the annotation object', () => {
    const mirrored = toMirroredStatus({
      progressPercentage: 45,
      estimatedRemainingSeconds: 9855,
      trainMetrics: { learning_rate: 0.00005, loss: 0.234 },
      evalMetrics: { eval_accuracy: '0.89' },
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored).to.deep.equal({
      lastUpdatedTime: '2026-01-23T10:30:45Z',
      progressPercentage: 45,
      estimatedRemainingSeconds: 9855,
      metrics: [
        { name: 'learning_rate', value: '0.00005' },
        { name: 'loss', value: '0.234' },
        { name: 'eval_accuracy', value: '0.89' },
      ],
    });
  });

  it('leaves out nulls and values that do not fit', () => {
    const mirrored = toMirroredStatus({
      progressPercentage: null,
      estimatedRemainingSeconds: 2 ** 31,
      trainMetrics: { empty: '', gone: null, long: 'x'.repeat(65), ok: 1 },
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored).to.deep.equal({
      lastUpdatedTime: '2026-01-23T10:30:45Z',
      metrics: [{ name: 'ok', value: '1' }],
    });
  });

  it('keeps a training metric over an evaluation metric of the same name', () => {
    const mirrored = toMirroredStatus({
      progressPercentage: 1,
      trainMetrics: { loss: 1 },
      evalMetrics: { loss: 2 },
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored.metrics).to.deep.equal([{ name: 'loss', value: '1' }]);
  });

  it('keeps at most 256 metrics', () => {
    const trainMetrics = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`m${i}`, i]));
    const evalMetrics = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`e${i}`, i]));
    const mirrored = toMirroredStatus({
      progressPercentage: 1,
      trainMetrics,
      evalMetrics,
      lastUpdatedTime: '2026-01-23T10:30:45Z',
    });
    expect(mirrored.metrics).to.have.length(256);
  });
});

describe('write error classification', () => {
  const cases: [number | undefined, string][] = [
    [404, 'gone'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
    [408, 'retry'],
    [401, 'retry'],
    [403, 'retry'],
    [undefined, 'retry'],
    [400, 'rejected'],
    [415, 'rejected'],
    [422, 'rejected'],
  ];
  for (const [code, result] of cases) {
    it(`classifies ${code ?? 'a network failure'} as ${result}`, () => {
      const error =
        code === undefined ? new Error('ECONNREFUSED') : new ApiException(code, 'x', {}, {});
      expect(classifyWriteError(error).result).to.equal(result);
    });
  }

  it('honors Retry-After', () => {
    const outcome = classifyWriteError(new ApiException(429, 'x', {}, { 'retry-after': '3' }));
    expect(outcome).to.include({ result: 'retry', retryAfterMs: 3000 });
  });
});
