import { expect } from 'chai';
import { pino } from 'pino';
import { PROGRESSION_TRACKING_ANNOTATION } from '../../../shared/annotations.ts';
import { AdmissionHandler } from '../../../webhook/admission-handler.ts';
import type { AdmissionResponse } from '../../../webhook/admission-review.ts';
import type { TrainJobLookup } from '../../../webhook/injection-decision.ts';
import { WebhookMetrics } from '../../../webhook/metrics.ts';
import {
  admissionRequest,
  DEFAULTS,
  jobSetPod,
  NAMESPACE,
  optedIn,
  SIDECAR_OPTIONS,
  trainJob,
} from './fixtures.ts';

interface LogLine {
  level: number;
  msg: string;
  uid?: string;
  object?: string;
  result?: string;
  reason?: string;
  mode?: string;
}

const DEBUG = 20;

/** Returns a handler whose pino logger writes JSON lines at `level` into `lines`. */
function handlerWithLog(lines: LogLine[], level = 'debug'): AdmissionHandler {
  const stream = { write: (line: string) => lines.push(JSON.parse(line) as LogLine) };
  const lookups = new Map<string, TrainJobLookup>([
    ['llama', { status: 'found', trainJob: optedIn('llama') }],
    [
      'plain',
      {
        status: 'found',
        trainJob: trainJob('plain', { [PROGRESSION_TRACKING_ANNOTATION]: 'false' }),
      },
    ],
  ]);
  return new AdmissionHandler({
    defaults: DEFAULTS,
    sidecar: SIDECAR_OPTIONS,
    trainJobs: { lookup: ({ name }) => lookups.get(name) ?? { status: 'not-found' } },
    metrics: new WebhookMetrics({
      ready: () => true,
      cacheSynced: () => true,
      cachedTrainJobs: () => lookups.size,
      certificateNotAfterSeconds: () => NaN,
    }),
    logger: pino({ level }, stream),
  });
}

describe('webhook/admission-handler', () => {
  describe('decision log', () => {
    it('logs one debug line per admission', async () => {
      const lines: LogLine[] = [];
      const handler = handlerWithLog(lines);
      const named = jobSetPod({ job: 'plain' }) as { metadata: Record<string, unknown> };
      named.metadata.name = 'plain-node-0-0-abcde';
      const requests = [
        admissionRequest(jobSetPod({ job: 'llama' }), { uid: 'uid-injected' }),
        admissionRequest(named, { uid: 'uid-opted-out' }),
        admissionRequest(jobSetPod({ job: 'llama', jobIndex: '1' }), { uid: 'uid-rank' }),
      ];

      const responses: AdmissionResponse[] = [];
      for (const request of requests) responses.push(await handler.review(request, 1000));
      expect(responses.map((response) => response.allowed)).to.deep.equal([true, true, true]);

      expect(lines).to.have.length(3);
      for (const line of lines) expect(line.level, line.msg).to.equal(DEBUG);
      expect(lines[0]).to.deep.include({
        uid: 'uid-injected',
        object: `${NAMESPACE}/llama-node-0-0-*`,
        result: 'injected',
        reason: 'injected',
        mode: 'native',
        msg: 'admission injected: injected',
      });
      expect(lines[1]).to.deep.include({
        uid: 'uid-opted-out',
        object: `${NAMESPACE}/plain-node-0-0-abcde`,
        result: 'skipped',
        reason: 'not-opted-in',
        msg: 'admission skipped: not-opted-in',
      });
      expect(lines[2]).to.deep.include({
        uid: 'uid-rank',
        object: `${NAMESPACE}/llama-node-1-0-*`,
        result: 'skipped',
        reason: 'not-primary',
        msg: 'admission skipped: not-primary',
      });
    });

    it('logs no decision at level info', async () => {
      const lines: LogLine[] = [];
      const handler = handlerWithLog(lines, 'info');
      await handler.review(admissionRequest(jobSetPod({ job: 'llama' })), 1000);
      expect(lines).to.deep.equal([]);
    });
  });
});
