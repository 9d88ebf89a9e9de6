import { expect } from 'chai';

import { watchUrl } from '../../../cli/follow-aggregator.ts';
import {
  formatBarLine,
  formatPlainLine,
  formatReport,
  progressBar,
  progressFromTrainJob,
  readStatusAnnotation,
  toJsonRecord,
} from '../../../cli/progress-view.ts';
import { parseTailOptions } from '../../../cli/tail-command.ts';
import { TailRenderer } from '../../../cli/tail-renderer.ts';
import type { JobProgress } from '../../../shared/stream-protocol.ts';

const RUNNING: JobProgress = {
  namespace: 'team',
  name: 'llm',
  phase: 'Running',
  final: false,
  status: {
    progressPercentage: 45,
    estimatedRemainingSeconds: 9855,
    estimatedRemainingTimeSummary: '2 hours 44 minutes',
    currentStep: 4530,
    totalSteps: 10000,
    currentEpoch: 2.25,
    totalEpochs: 5,
    trainMetrics: { learning_rate: 0.00005, loss: 0.234 },
    evalMetrics: { eval_accuracy: 0.89, eval_f1_score: '0.87' },
    lastUpdatedTime: '2026-01-23T10:30:45Z',
  },
};

const FINAL: JobProgress = {
  ...RUNNING,
  phase: 'Complete',
  final: true,
  status: {
    progressPercentage: 100,
    estimatedRemainingSeconds: 0,
    estimatedRemainingTimeSummary: 'complete',
    lastUpdatedTime: '2026-01-23T11:00:00Z',
  },
};

describe('progress view', () => {
  it('draws a progress bar', () => {
    expect(progressBar(45, 20)).to.equal('[#########-----------]');
    expect(progressBar(null, 4)).to.equal('[----]');
    expect(progressBar(100, 4)).to.equal('[####]');
  });

  it('formats a terminal line', () => {
    expect(formatBarLine(RUNNING)).to.equal(
      'llm  Running  [###########-------------] 45%  step 4530/10000  epoch 2.25/5  ' +
        'ETA 2 hours 44 minutes  loss=0.234  eval_accuracy=0.89  eval_f1_score=0.87',
    );
  });

  it('formats a plain line', () => {
    expect(formatPlainLine(RUNNING)).to.equal(
      '2026-01-23T10:30:45Z team/llm Running progress=45% step=4530/10000 epoch=2.25/5 ' +
        'eta="2 hours 44 minutes" loss=0.234 eval_accuracy=0.89 eval_f1_score=0.87',
    );
  });

  it('labels the final summary as final', () => {
    expect(formatPlainLine(FINAL)).to.include('final="complete"');
  });

  it('formats a job without progress', () => {
    const waiting = { ...RUNNING, status: null };
    expect(formatBarLine(waiting)).to.equal('llm  Running  waiting for progress');
    expect(formatReport(waiting)).to.include('Progress  not reported yet');
  });

  it('formats a report', () => {
    expect(formatReport(RUNNING)).to.equal(
      [
        'TrainJob   team/llm',
        'Phase      Running',
        'Progress   45% [###########-------------]',
        'Step       4530 / 10000',
        'Epoch      2.25 / 5',
        'Remaining  2 hours 44 minutes (9855 s)',
        'Updated    2026-01-23T10:30:45Z',
        'Train metrics',
        '  learning_rate  0.00005',
        '  loss           0.234',
        'Eval metrics',
        '  eval_accuracy  0.89',
        '  eval_f1_score  0.87',
      ].join('\n'),
    );
  });

  it('formats a JSON record', () => {
    expect(JSON.parse(toJsonRecord(FINAL))).to.deep.equal({
      namespace: 'team',
      name: 'llm',
      phase: 'Complete',
      final: true,
      status: FINAL.status,
    });
  });

  it('reads a TrainJob object', () => {
    const progress = progressFromTrainJob({
      metadata: {
        name: 'llm',
        namespace: 'team',
        annotations: {
          'trainer.opendatahub.io/trainerStatus':
            '{"progressPercentage":37,"estimatedRemainingTimeSummary":"failed at 37%",' +
            '"lastUpdatedTime":"2026-01-23T10:30:45Z"}',
        },
      },
      status: { conditions: [{ type: 'Failed', status: 'True' }] },
    });
    expect(progress.phase).to.equal('Failed');
    expect(progress.final).to.equal(true);
    expect(progress.status?.progressPercentage).to.equal(37);
  });

  it('treats an unreadable annotation as no progress', () => {
    expect(readStatusAnnotation('{broken')).to.equal(null);
    expect(readStatusAnnotation('[1]')).to.equal(null);
    expect(readStatusAnnotation(undefined)).to.equal(null);
  });
});

describe('tail renderer', () => {
  function capture(mode: 'tty' | 'plain' | 'json', columns?: number) {
    const chunks: string[] = [];
    const output = { write: (text: string) => chunks.push(text), columns };
    return { renderer: new TailRenderer(mode, output), chunks };
  }

  it('redraws one line on a terminal', () => {
    const { renderer, chunks } = capture('tty');
    renderer.update(RUNNING);
    renderer.update({ ...RUNNING, status: { ...RUNNING.status!, progressPercentage: 46 } });
    expect(chunks).to.have.length(2);
    expect(chunks.every((chunk) => chunk.startsWith('\r\x1b[2K'))).to.equal(true);
  });

  it('fits the terminal width', () => {
    const { renderer, chunks } = capture('tty', 40);
    renderer.update(RUNNING);
    expect(chunks[0]!.length).to.equal('\r\x1b[2K'.length + 39);
  });

  it('prints one line per change when not a terminal', () => {
    const { renderer, chunks } = capture('plain');
    renderer.update(RUNNING);
    renderer.update(RUNNING);
    renderer.update(FINAL);
    expect(chunks).to.have.length(2);
    expect(chunks.every((chunk) => chunk.endsWith('\n'))).to.equal(true);
  });

  it('ends with the final report', () => {
    const { renderer, chunks } = capture('tty');
    renderer.update(RUNNING);
    renderer.finish(FINAL);
    expect(chunks.at(-2)).to.equal('\n');
    expect(chunks.at(-1)).to.match(/^Result {4}complete$/m);
    expect(chunks.at(-1)).to.not.include('(0 s)');
  });

  it('prints JSON records only with --json', () => {
    const { renderer, chunks } = capture('json');
    renderer.update(RUNNING);
    renderer.finish(FINAL);
    expect(chunks.map((chunk) => JSON.parse(chunk) as { final: boolean })).to.have.length(2);
  });
});

describe('tail options', () => {
  it('reads flags and environment variables', () => {
    const options = parseTailOptions(['llm', '-n', 'team', '--json'], {
      TRAINJOB_PROGRESS_AGGREGATOR_URL: 'http://127.0.0.1:8080',
    });
    expect(options).to.deep.include({
      name: 'llm',
      namespace: 'team',
      json: true,
      aggregatorUrl: 'http://127.0.0.1:8080',
      finalWaitMs: 15_000,
    });
  });

  it('returns undefined for --help', () => {
    expect(parseTailOptions(['--help'], {})).to.equal(undefined);
  });

  it('requires exactly one name', () => {
    expect(() => parseTailOptions([], {})).to.throw(/expected one TrainJob name, got 0/);
    expect(() => parseTailOptions(['a', 'b'], {})).to.throw(/got 2/);
  });

  it('rejects an invalid final wait', () => {
    expect(() => parseTailOptions(['llm', '--final-wait-seconds', 'soon'], {})).to.throw(
      /invalid --final-wait-seconds "soon"/,
    );
  });

  it('builds the viewer URL from a base URL', () => {
    expect(watchUrl('http://127.0.0.1:8080', 'team', 'llm')).to.equal(
      'ws://127.0.0.1:8080/v1/watch?namespace=team&name=llm',
    );
    expect(watchUrl('https://progress.example.com/', 'team', 'llm')).to.equal(
      'wss://progress.example.com/v1/watch?namespace=team&name=llm',
    );
    expect(() => watchUrl('ftp://x', 'team', 'llm')).to.throw(/invalid aggregator URL/);
  });
});

describe('progress view of hostile annotations', () => {
  const hostile = JSON.stringify({
    progressPercentage: '<b>x',
    currentStep: [1],
    trainMetrics: { '\u001b[31mred': '\u001b[2J' },
  });

  it('escapes control characters in the report', () => {
    const report = formatReport({
      namespace: 'ns',
      name: 'job',
      phase: 'Running',
      status: readStatusAnnotation(hostile),
      final: false,
    });
    expect(report).to.not.include('\u001b');
    expect(report).to.include('\\u001b[31mred');
  });

  it('drops fields of the wrong type', () => {
    const status = readStatusAnnotation(hostile);
    expect(status?.progressPercentage).to.equal(null);
    expect(status?.currentStep).to.equal(undefined);
  });

  it('shows a missing update time as unknown', () => {
    const report = formatReport({
      namespace: 'ns',
      name: 'job',
      phase: 'Running',
      status: readStatusAnnotation('{"progressPercentage":5}'),
      final: false,
    });
    expect(report).to.match(/Updated\s+unknown/);
    expect(report).to.not.include('undefined');
  });
});
