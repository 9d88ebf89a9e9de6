import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';

import {
  chooseFinalSample,
  primaryPodSelector,
  selectPrimaryPod,
  terminationMessageOf,
} from '../../../aggregator/final-capture.ts';
import { EMPTY_SAMPLE, type MetricsSample } from '../../../shared/metrics-sample.ts';

function sample(fields: Partial<MetricsSample>): MetricsSample {
  return { ...EMPTY_SAMPLE, ...fields };
}

const message = JSON.stringify({ progressPercentage: 100, currentStep: 500, totalSteps: 500 });

describe('final sample choice', () => {
  it('prefers the termination message', () => {
    const choice = chooseFinalSample({
      terminationMessage: message,
      lastSample: sample({ progressPercentage: 98 }),
      annotationSample: sample({ progressPercentage: 90 }),
    });
    expect(choice.source).to.equal('termination-message');
    expect(choice.sample.currentStep).to.equal(500);
  });

  it('falls back to the last sample', () => {
    const choice = chooseFinalSample({
      terminationMessage: undefined,
      lastSample: sample({ progressPercentage: 98 }),
      annotationSample: sample({ progressPercentage: 90 }),
    });
    expect(choice).to.deep.equal({
      sample: sample({ progressPercentage: 98 }),
      source: 'last-sample',
    });
  });

  it('falls back to the annotation', () => {
    const choice = chooseFinalSample({
      terminationMessage: undefined,
      lastSample: undefined,
      annotationSample: sample({ progressPercentage: 90 }),
    });
    expect(choice.source).to.equal('annotation');
    expect(choice.sample.progressPercentage).to.equal(90);
  });

  it('uses an empty sample when nothing is known', () => {
    const choice = chooseFinalSample({
      terminationMessage: undefined,
      lastSample: undefined,
      annotationSample: undefined,
    });
    expect(choice).to.deep.equal({ sample: EMPTY_SAMPLE, source: 'none' });
  });

  it('skips a truncated termination message', () => {
    const choice = chooseFinalSample({
      terminationMessage: message.slice(0, 30),
      lastSample: sample({ progressPercentage: 98 }),
      annotationSample: undefined,
    });
    expect(choice.source).to.equal('last-sample');
    expect(choice.skippedMessage).to.match(/not valid JSON/);
  });

  it('skips a plain-text termination message', () => {
    const choice = chooseFinalSample({
      terminationMessage: 'Traceback (most recent call last):',
      lastSample: undefined,
      annotationSample: sample({ progressPercentage: 3 }),
    });
    expect(choice.source).to.equal('annotation');
  });

  it('skips a message without known keys', () => {
    const choice = chooseFinalSample({
      terminationMessage: '{"status":"done"}',
      lastSample: sample({ progressPercentage: 98 }),
      annotationSample: undefined,
    });
    expect(choice.source).to.equal('last-sample');
    expect(choice.skippedMessage).to.equal('the message carries no known key');
  });

  it('reads Python NaN in a termination message as null', () => {
    const choice = chooseFinalSample({
      terminationMessage: '{"progressPercentage": 100, "trainMetrics": {"loss": NaN}}',
      lastSample: undefined,
      annotationSample: undefined,
    });
    expect(choice.source).to.equal('termination-message');
    expect(choice.sample.trainMetrics).to.deep.equal({ loss: null });
  });
});

function pod(fields: {
  name: string;
  created: string;
  completionIndex?: string;
  node?: { message?: string; terminated?: boolean; lastMessage?: string };
}): V1Pod {
  const labels: Record<string, string> = {};
  if (fields.completionIndex !== undefined) {
    labels['batch.kubernetes.io/job-completion-index'] = fields.completionIndex;
  }
  const node = fields.node;
  return {
    metadata: { name: fields.name, creationTimestamp: new Date(fields.created), labels },
    status: {
      containerStatuses:
        node === undefined
          ? []
          : [
              {
                name: 'node',
                image: 'trainer',
                imageID: '',
                ready: false,
                restartCount: 0,
                state:
                  node.terminated === false
                    ? { running: {} }
                    : { terminated: { exitCode: 0, message: node.message } },
                lastState:
                  node.lastMessage === undefined
                    ? {}
                    : { terminated: { exitCode: 1, message: node.lastMessage } },
              },
            ],
    },
  };
}

describe('primary pod', () => {
  it('selects the newest pod with completion index 0', () => {
    const pods = [
      pod({ name: 'old', created: '2026-01-01T00:00:00Z', completionIndex: '0' }),
      pod({ name: 'other-index', created: '2026-01-03T00:00:00Z', completionIndex: '1' }),
      pod({ name: 'new', created: '2026-01-02T00:00:00Z', completionIndex: '0' }),
    ];
    expect(selectPrimaryPod(pods)?.metadata?.name).to.equal('new');
  });

  it('accepts a pod without a completion index', () => {
    const pods = [pod({ name: 'only', created: '2026-01-01T00:00:00Z' })];
    expect(selectPrimaryPod(pods)?.metadata?.name).to.equal('only');
  });

  it('returns undefined without pods', () => {
    expect(selectPrimaryPod([])).to.equal(undefined);
  });

  it('reads the message of the current state', () => {
    const primary = pod({ name: 'p', created: '2026-01-01T00:00:00Z', node: { message } });
    expect(terminationMessageOf(primary)).to.equal(message);
  });

  it('ignores the message of an earlier attempt', () => {
    const primary = pod({
      name: 'p',
      created: '2026-01-01T00:00:00Z',
      node: { terminated: false, lastMessage: message },
    });
    expect(terminationMessageOf(primary)).to.equal(undefined);
  });

  it('ignores an empty message', () => {
    const primary = pod({ name: 'p', created: '2026-01-01T00:00:00Z', node: { message: '' } });
    expect(terminationMessageOf(primary)).to.equal(undefined);
  });

  it('selects pods by JobSet name, node and job index 0', () => {
    expect(primaryPodSelector('llm')).to.equal(
      'jobset.sigs.k8s.io/jobset-name=llm,' +
        'jobset.sigs.k8s.io/replicatedjob-name=node,jobset.sigs.k8s.io/job-index=0',
    );
  });
});
