import { expect } from 'chai';
import {
  INJECTION_SCOPE_ANNOTATION,
  METRICS_PORT_ANNOTATION,
  PROGRESSION_TRACKING_ANNOTATION,
} from '../../../shared/annotations.ts';
import {
  decideInjection,
  trainJobReference,
  type Decision,
  type TrainJobLookup,
} from '../../../webhook/injection-decision.ts';
import { DEFAULTS, NAMESPACE, jobSetPod, optedIn, trainJob, type PodShape } from './fixtures.ts';

interface Row {
  title: string;
  pod?: PodShape;
  rawPod?: unknown;
  requestNamespace?: string | undefined;
  lookup?: TrainJobLookup | undefined;
  scope?: 'primary' | 'all-nodes';
  expected: Decision['action'];
  reason?: string;
  warnings?: number;
}

const found = (job = optedIn('llama')): TrainJobLookup => ({ status: 'found', trainJob: job });
const withTracking = (value: string): TrainJobLookup =>
  found(trainJob('llama', { [PROGRESSION_TRACKING_ANNOTATION]: value }));

const ROWS: Row[] = [
  { title: 'injects the primary pod of an opted-in job', lookup: found(), expected: 'inject' },
  { title: 'accepts enabled as opt-in', lookup: withTracking('enabled'), expected: 'inject' },
  { title: 'accepts padded mixed-case TRUE', lookup: withTracking('  TRUE '), expected: 'inject' },
  { title: 'accepts padded Enabled', lookup: withTracking(' Enabled\n'), expected: 'inject' },
  {
    title: 'skips opt-in false',
    lookup: withTracking('false'),
    expected: 'skip',
    reason: 'not-opted-in',
  },
  {
    title: 'skips opt-in yes',
    lookup: withTracking('yes'),
    expected: 'skip',
    reason: 'not-opted-in',
  },
  {
    title: 'skips an empty opt-in',
    lookup: withTracking(''),
    expected: 'skip',
    reason: 'not-opted-in',
  },
  {
    title: 'skips a job without annotations',
    lookup: found(trainJob('llama')),
    expected: 'skip',
    reason: 'not-opted-in',
  },
  {
    title: 'skips null annotations',
    lookup: found({ metadata: { name: 'llama', namespace: NAMESPACE, annotations: null } }),
    expected: 'skip',
    reason: 'not-opted-in',
  },
  {
    title: 'skips a missing TrainJob',
    lookup: { status: 'not-found' },
    expected: 'skip',
    reason: 'trainjob-not-found',
  },
  {
    title: 'reports a failed lookup as error',
    lookup: { status: 'failed', message: 'boom' },
    expected: 'error',
    reason: 'lookup-failed',
  },
  {
    title: 'reports a missing lookup as error',
    lookup: undefined,
    expected: 'error',
    reason: 'lookup-failed',
  },
  {
    title: 'skips a pod without labels',
    rawPod: { metadata: {}, spec: {} },
    lookup: found(),
    expected: 'skip',
    reason: 'no-jobset-label',
  },
  {
    title: 'skips a pod with null labels',
    rawPod: { metadata: { labels: null }, spec: {} },
    lookup: found(),
    expected: 'skip',
    reason: 'no-jobset-label',
  },
  {
    title: 'skips an empty jobset name',
    pod: { job: '' },
    lookup: found(),
    expected: 'skip',
    reason: 'no-jobset-label',
  },
  {
    title: 'skips dataset-initializer',
    pod: { replicatedJob: 'dataset-initializer' },
    lookup: found(),
    expected: 'skip',
    reason: 'initializer',
  },
  {
    title: 'skips model-initializer',
    pod: { replicatedJob: 'model-initializer' },
    lookup: found(),
    expected: 'skip',
    reason: 'initializer',
  },
  {
    title: 'skips launcher',
    pod: { replicatedJob: 'launcher' },
    lookup: found(),
    expected: 'skip',
    reason: 'launcher',
  },
  {
    title: 'skips an unknown replicated job',
    pod: { replicatedJob: 'evaluator' },
    lookup: found(),
    expected: 'skip',
    reason: 'not-trainer',
  },
  {
    title: 'skips a pod without replicated job',
    pod: { replicatedJob: undefined },
    lookup: found(),
    expected: 'skip',
    reason: 'not-trainer',
  },
  {
    title: 'skips initializers under all-nodes',
    pod: { replicatedJob: 'dataset-initializer' },
    scope: 'all-nodes',
    lookup: found(),
    expected: 'skip',
    reason: 'initializer',
  },
  {
    title: 'skips job index 1',
    pod: { jobIndex: '1' },
    lookup: found(),
    expected: 'skip',
    reason: 'not-primary',
  },
  {
    title: 'skips completion index 1',
    pod: { completionIndex: '1' },
    lookup: found(),
    expected: 'skip',
    reason: 'not-primary',
  },
  {
    title: 'skips a missing job index',
    pod: { jobIndex: undefined },
    lookup: found(),
    expected: 'skip',
    reason: 'not-primary',
  },
  {
    title: 'reads the completion index label',
    pod: { completionIndex: undefined, completionIndexLabel: '3' },
    lookup: found(),
    expected: 'skip',
    reason: 'not-primary',
  },
  {
    title: 'prefers the completion index annotation',
    pod: { completionIndex: '0', completionIndexLabel: '3' },
    lookup: found(),
    expected: 'inject',
  },
  {
    title: 'treats no completion index as 0',
    pod: { completionIndex: undefined },
    lookup: found(),
    expected: 'inject',
  },
  {
    title: 'injects rank 5 under chart scope all-nodes',
    pod: { jobIndex: '0', completionIndex: '5' },
    scope: 'all-nodes',
    lookup: found(),
    expected: 'inject',
  },
  {
    title: 'injects job index 2 under all-nodes',
    pod: { jobIndex: '2' },
    scope: 'all-nodes',
    lookup: found(),
    expected: 'inject',
  },
  {
    title: 'honors a TrainJob scope all-nodes',
    pod: { completionIndex: '7' },
    lookup: found(optedIn('llama', { [INJECTION_SCOPE_ANNOTATION]: 'all-nodes' })),
    expected: 'inject',
  },
  {
    title: 'honors a TrainJob scope primary',
    pod: { completionIndex: '7' },
    scope: 'all-nodes',
    lookup: found(optedIn('llama', { [INJECTION_SCOPE_ANNOTATION]: 'Primary' })),
    expected: 'skip',
    reason: 'not-primary',
  },
  {
    title: 'warns on an invalid scope and uses the chart scope',
    pod: { completionIndex: '7' },
    lookup: found(optedIn('llama', { [INJECTION_SCOPE_ANNOTATION]: 'everything' })),
    expected: 'skip',
    reason: 'not-primary',
    warnings: 1,
  },
  {
    title: 'warns on an invalid port while injecting',
    lookup: found(optedIn('llama', { [METRICS_PORT_ANNOTATION]: '99999' })),
    expected: 'inject',
    warnings: 1,
  },
  {
    title: 'uses the pod namespace without a request namespace',
    pod: { namespace: NAMESPACE },
    requestNamespace: undefined,
    lookup: found(),
    expected: 'inject',
  },
  {
    title: 'reports a pod without any namespace',
    requestNamespace: undefined,
    lookup: found(),
    expected: 'error',
    reason: 'invalid-pod',
  },
  {
    title: 'skips a pod without service account',
    rawPod: { ...jobSetPod(), spec: { containers: [] } },
    lookup: found(),
    expected: 'skip',
    reason: 'no-service-account',
  },
  {
    title: 'accepts the deprecated serviceAccount',
    rawPod: { ...jobSetPod(), spec: { serviceAccount: 'trainer', containers: [] } },
    lookup: found(),
    expected: 'inject',
  },
  {
    title: 'reports a non-object pod',
    rawPod: 'pod',
    lookup: found(),
    expected: 'error',
    reason: 'invalid-pod',
  },
  {
    title: 'reports a pod without spec',
    rawPod: { metadata: { labels: {} } },
    lookup: found(),
    expected: 'error',
    reason: 'invalid-pod',
  },
];

describe('webhook/injection-decision', () => {
  describe('decideInjection', () => {
    for (const row of ROWS) {
      it(row.title, () => {
        const decision = decideInjection({
          pod: 'rawPod' in row ? row.rawPod : jobSetPod(row.pod),
          requestNamespace: 'requestNamespace' in row ? row.requestNamespace : NAMESPACE,
          lookup: row.lookup,
          defaults: { ...DEFAULTS, scope: row.scope ?? 'primary' },
        });
        expect(decision.action).to.equal(row.expected);
        if (row.reason !== undefined) expect(decision).to.have.property('reason', row.reason);
        if (decision.action !== 'error')
          expect(decision.warnings).to.have.length(row.warnings ?? 0);
      });
    }

    it('names the TrainJob in an inject decision', () => {
      const decision = decideInjection({
        pod: jobSetPod(),
        requestNamespace: NAMESPACE,
        lookup: found(),
        defaults: DEFAULTS,
      });
      expect(decision).to.deep.include({
        action: 'inject',
        trainJob: { namespace: NAMESPACE, name: 'llama' },
      });
    });

    it('prefers the request namespace over the pod namespace', () => {
      const decision = decideInjection({
        pod: jobSetPod({ namespace: 'other' }),
        requestNamespace: NAMESPACE,
        lookup: found(),
        defaults: DEFAULTS,
      });
      expect(decision).to.have.nested.property('trainJob.namespace', NAMESPACE);
    });
  });

  describe('trainJobReference', () => {
    it('returns the TrainJob of a node pod', () => {
      expect(trainJobReference(jobSetPod(), NAMESPACE)).to.deep.equal({
        namespace: NAMESPACE,
        name: 'llama',
      });
    });

    it('returns undefined for initializer pods', () => {
      expect(
        trainJobReference(jobSetPod({ replicatedJob: 'model-initializer' }), NAMESPACE),
      ).to.equal(undefined);
    });

    it('returns undefined without a namespace', () => {
      expect(trainJobReference(jobSetPod(), undefined)).to.equal(undefined);
    });

    it('returns undefined for pods without labels', () => {
      expect(trainJobReference({ metadata: {} }, NAMESPACE)).to.equal(undefined);
    });
  });
});
