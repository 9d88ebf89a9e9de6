import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { expect } from 'chai';
import { AdmissionregistrationV1Api, CustomObjectsApi } from '@kubernetes/client-node';

import { runDemo, type DemoOptions } from '../../demo/main.ts';
import type { ManagedProcess } from '../../demo/processes.ts';
import {
  TRAINER_STATUS_ANNOTATION,
  TRAINJOB_GROUP,
  TRAINJOB_PLURAL,
  TRAINJOB_VERSION,
} from '../../shared/annotations.ts';
import { getControlPlane, kubeConfigFor } from './cluster.ts';

const KEY_ORDER = [
  'progressPercentage',
  'estimatedRemainingSeconds',
  'estimatedRemainingTimeSummary',
  'currentStep',
  'totalSteps',
  'currentEpoch',
  'totalEpochs',
  'trainMetrics',
  'evalMetrics',
  'lastUpdatedTime',
];
const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

const OPTIONS: DemoOptions = {
  namespace: 'end-to-end',
  name: 'digits',
  systemNamespace: 'end-to-end-system',
  webhookConfigName: 'trainjob-progress-end-to-end',
  showProgress: false,
  steps: '80',
  stepDelay: '0.1',
  keepLogs: false,
};

/** Checks the documented shape: known keys in their fixed order, and the two required ones. */
function expectAnnotationShape(value: string): Record<string, unknown> {
  const status = JSON.parse(value) as Record<string, unknown>;
  const keys = Object.keys(status);
  const positions = keys.map((key) => KEY_ORDER.indexOf(key));
  expect(positions, `keys ${keys.join(',')}`).to.not.include(-1);
  expect(positions).to.deep.equal([...positions].sort((a, b) => a - b));
  expect(keys[0]).to.equal('progressPercentage');
  expect(keys.at(-1)).to.equal('lastUpdatedTime');
  expect(status.lastUpdatedTime).to.match(RFC3339_SECONDS);
  return status;
}

describe('end to end', function () {
  this.timeout(300_000);
  let workDir: string;
  const processes: ManagedProcess[] = [];
  const seen: string[] = [];
  let polling = true;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'trainjob-progress-e2e-'));
  });

  after(async () => {
    polling = false;
    for (const managed of processes.reverse()) await managed.stop();
    const admission = kubeConfigFor(getControlPlane()).makeApiClient(AdmissionregistrationV1Api);
    await admission
      .deleteMutatingWebhookConfiguration({ name: OPTIONS.webhookConfigName })
      .catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  });

  async function recordAnnotations(): Promise<void> {
    const custom = kubeConfigFor(getControlPlane()).makeApiClient(CustomObjectsApi);
    while (polling) {
      const trainJob = (await custom
        .getNamespacedCustomObject({
          group: TRAINJOB_GROUP,
          version: TRAINJOB_VERSION,
          namespace: OPTIONS.namespace,
          plural: TRAINJOB_PLURAL,
          name: OPTIONS.name,
        })
        .catch(() => undefined)) as
        { metadata?: { annotations?: Record<string, string> } } | undefined;
      const value = trainJob?.metadata?.annotations?.[TRAINER_STATUS_ANNOTATION];
      if (value !== undefined && seen.at(-1) !== value) seen.push(value);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  it('writes live and final status of a real run', async () => {
    const recording = recordAnnotations();
    const finalValue = await runDemo(getControlPlane(), OPTIONS, workDir, processes);
    polling = false;
    await recording;

    const live = seen.filter(
      (value) => !value.includes('"estimatedRemainingTimeSummary":"complete'),
    );
    expect(live, 'annotations seen while training').to.not.be.empty;
    for (const value of live) expectAnnotationShape(value);
    const firstLive = JSON.parse(live[0]!) as { progressPercentage: number | null };
    expect(firstLive.progressPercentage ?? 0).to.be.below(100);

    const final = expectAnnotationShape(finalValue);
    expect(final.progressPercentage).to.equal(100);
    expect(final.estimatedRemainingSeconds).to.equal(0);
    expect(final.estimatedRemainingTimeSummary).to.equal('complete');
    expect(final.totalSteps).to.equal(80);
    expect(final.currentStep).to.equal(final.totalSteps);
    const trainMetrics = final.trainMetrics as Record<string, unknown>;
    const evalMetrics = final.evalMetrics as Record<string, unknown>;
    expect(trainMetrics.loss).to.be.a('number').and.be.above(0);
    expect(evalMetrics.eval_accuracy).to.be.a('number').and.be.within(0, 1);
    expect(evalMetrics.eval_loss).to.be.a('number');
  });
});
