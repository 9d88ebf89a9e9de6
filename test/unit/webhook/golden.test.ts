// Golden files: each `<case>.review.json` under test/golden/webhook is an AdmissionReview;
// `<case>.pod.json` is the pod after the returned patch, applied by fast-json-patch with
// validation. Run with UPDATE_GOLDEN=1 to rewrite the expected pods after a deliberate change.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import jsonPatch, { type Operation } from 'fast-json-patch';

const { applyPatch } = jsonPatch;
import {
  INJECTION_SCOPE_ANNOTATION,
  METRICS_PATH_ANNOTATION,
  METRICS_POLL_INTERVAL_ANNOTATION,
  METRICS_PORT_ANNOTATION,
  PROGRESSION_TRACKING_ANNOTATION,
  SIDECAR_CPU_ANNOTATION,
  SIDECAR_MEMORY_ANNOTATION,
  SIDECAR_MODE_ANNOTATION,
} from '../../../shared/annotations.ts';
import { createLogger } from '../../../shared/logger.ts';
import type { TrainJobObject } from '../../../shared/trainjob.ts';
import { AdmissionHandler } from '../../../webhook/admission-handler.ts';
import {
  parseAdmissionReview,
  type AdmissionRequest,
  type AdmissionResponse,
} from '../../../webhook/admission-review.ts';
import type { TrainJobLookup } from '../../../webhook/injection-decision.ts';
import { WebhookMetrics } from '../../../webhook/metrics.ts';
import type { InjectionDefaults } from '../../../webhook/pod-settings.ts';
import { DEFAULTS, optedIn, SIDECAR_OPTIONS, trainJob } from './fixtures.ts';

const GOLDEN_DIR = path.resolve(import.meta.dirname, '../../golden/webhook');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const TRAINJOBS: TrainJobObject[] = [
  optedIn('llama'),
  trainJob('bert', { [PROGRESSION_TRACKING_ANNOTATION]: 'Enabled' }),
  trainJob('plain', {}),
  optedIn('broken', {
    [METRICS_PORT_ANNOTATION]: '0',
    [METRICS_POLL_INTERVAL_ANNOTATION]: 'soon',
    [METRICS_PATH_ANNOTATION]: 'metrics with spaces',
    [SIDECAR_CPU_ANNOTATION]: 'lots',
    [SIDECAR_MEMORY_ANNOTATION]: '1Ti',
    [INJECTION_SCOPE_ANNOTATION]: 'everywhere',
    [SIDECAR_MODE_ANNOTATION]: 'sidecar',
  }),
  optedIn('tuned', {
    [METRICS_PORT_ANNOTATION]: '9090',
    [METRICS_POLL_INTERVAL_ANNOTATION]: '1m',
    [METRICS_PATH_ANNOTATION]: '/progress',
    [SIDECAR_CPU_ANNOTATION]: '200m',
    [SIDECAR_MEMORY_ANNOTATION]: '128Mi',
    [SIDECAR_MODE_ANNOTATION]: 'container',
  }),
  optedIn('ranks', { [INJECTION_SCOPE_ANNOTATION]: 'all-nodes' }),
];

interface GoldenCase {
  name: string;
  patched: boolean;
  warnings?: number;
  defaults?: Partial<InjectionDefaults>;
}

const CASES: GoldenCase[] = [
  { name: 'primary-native', patched: true },
  { name: 'enabled-opt-in', patched: true },
  { name: 'missing-maps', patched: true },
  { name: 'null-maps', patched: true },
  { name: 'escaped-keys', patched: true },
  { name: 'unknown-fields', patched: true },
  { name: 'partial-container-only', patched: true },
  { name: 'partial-annotation-only', patched: true },
  { name: 'partial-volume-only', patched: true },
  { name: 'partial-container-without-env', patched: true },
  { name: 'dry-run', patched: true },
  { name: 'generate-name-without-namespace', patched: true },
  { name: 'named-pod-with-namespace', patched: true },
  { name: 'host-network', patched: true },
  {
    name: 'container-mode',
    patched: true,
    defaults: { sidecarMode: 'container', nativeSidecarsSupported: false },
  },
  { name: 'invalid-overrides', patched: true, warnings: 7 },
  { name: 'valid-overrides', patched: true },
  { name: 'all-nodes-rank', patched: true },
  { name: 'skip-opted-out', patched: false },
  { name: 'skip-non-primary', patched: false },
  { name: 'skip-initializer', patched: false },
  { name: 'skip-no-jobset-label', patched: false },
  { name: 'skip-no-service-account', patched: false, warnings: 1 },
  { name: 'name-conflict', patched: false, warnings: 1 },
  { name: 'deprecated-service-account', patched: true },
];

function createHandler(defaults: Partial<InjectionDefaults> = {}): AdmissionHandler {
  const lookups = new Map<string, TrainJobLookup>(
    TRAINJOBS.map((job) => [job.metadata.name, { status: 'found', trainJob: job }]),
  );
  return new AdmissionHandler({
    defaults: { ...DEFAULTS, ...defaults },
    sidecar: SIDECAR_OPTIONS,
    trainJobs: { lookup: ({ name }) => lookups.get(name) ?? { status: 'not-found' } },
    metrics: new WebhookMetrics({
      ready: () => true,
      cacheSynced: () => true,
      cachedTrainJobs: () => TRAINJOBS.length,
      certificateNotAfterSeconds: () => NaN,
    }),
    logger: createLogger('webhook-test', 'silent'),
  });
}

function readRequest(name: string): AdmissionRequest {
  const parsed = parseAdmissionReview(
    readFileSync(path.join(GOLDEN_DIR, `${name}.review.json`), 'utf8'),
  );
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.request;
}

async function review(
  handler: AdmissionHandler,
  request: AdmissionRequest,
): Promise<AdmissionResponse> {
  return handler.review(request, 5000);
}

function decodePatch(response: AdmissionResponse): Operation[] {
  if (response.patch === undefined) return [];
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
}

/** Asserts that `after` keeps every member and element of `before` unchanged and in order. */
function expectPreserved(before: unknown, after: unknown, at = ''): void {
  if (Array.isArray(before)) {
    expect(after, at).to.be.an('array');
    before.forEach((item, i) => expectPreserved(item, (after as unknown[])[i], `${at}/${i}`));
  } else if (before !== null && typeof before === 'object') {
    expect(after, at).to.be.an('object');
    expect(Object.keys(after as object).slice(0, Object.keys(before).length), at).to.deep.equal(
      Object.keys(before),
    );
    for (const [key, value] of Object.entries(before)) {
      expectPreserved(value, (after as Record<string, unknown>)[key], `${at}/${key}`);
    }
  } else if (before !== null) {
    expect(after, at).to.equal(before);
  }
}

describe('webhook golden files', () => {
  for (const testCase of CASES) {
    describe(testCase.name, () => {
      const handler = createHandler(testCase.defaults);
      const request = readRequest(testCase.name);

      it('matches the expected pod', async () => {
        const response = await review(handler, request);
        expect(response.uid).to.equal(request.uid);
        expect(response.allowed).to.equal(true);
        expect(response.patch !== undefined).to.equal(testCase.patched);
        expect(response.warnings ?? []).to.have.length(testCase.warnings ?? 0);

        const operations = decodePatch(response);
        const patched = applyPatch(
          structuredClone(request.object),
          operations,
          true,
          false,
        ).newDocument;
        const text = `${JSON.stringify(patched, null, 2)}\n`;
        const expectedPath = path.join(GOLDEN_DIR, `${testCase.name}.pod.json`);
        if (UPDATE) writeFileSync(expectedPath, text);
        expect(text).to.equal(readFileSync(expectedPath, 'utf8'));
      });

      it('only adds', async () => {
        const operations = decodePatch(await review(handler, request));
        for (const operation of operations) expect(operation.op).to.equal('add');
        const patched = applyPatch(
          structuredClone(request.object),
          operations,
          true,
          false,
        ).newDocument;
        expectPreserved(request.object, patched);
      });

      it('returns no patch for its own output', async () => {
        const operations = decodePatch(await review(handler, request));
        const patched = applyPatch(
          structuredClone(request.object),
          operations,
          true,
          false,
        ).newDocument;
        const second = await review(handler, { ...request, object: patched });
        expect(second.patch).to.equal(undefined);
        expect(second.patchType).to.equal(undefined);
      });
    });
  }

  it('gives a dry run the same patch', async () => {
    const handler = createHandler();
    const dryRun = await review(handler, readRequest('dry-run'));
    const normal = await review(handler, { ...readRequest('dry-run'), dryRun: false });
    expect(dryRun.patch).to.be.a('string');
    expect(dryRun.patch).to.equal(normal.patch);
  });

  it('adds one sidecar, one volume and one annotation at most', async () => {
    for (const testCase of CASES.filter((c) => c.patched)) {
      const request = readRequest(testCase.name);
      const response = await review(createHandler(testCase.defaults), request);
      const pod = applyPatch(structuredClone(request.object), decodePatch(response), true, false)
        .newDocument as { spec: Record<string, { name: string }[] | null> };
      const names = [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])].map(
        (c) => c.name,
      );
      expect(
        names.filter((name) => name === 'trainjob-progress'),
        testCase.name,
      ).to.have.length(1);
      const volumes = (pod.spec.volumes ?? []).map((v) => v.name);
      expect(
        volumes.filter((name) => name === 'trainjob-progress-token'),
        testCase.name,
      ).to.have.length(1);
    }
  });
});
