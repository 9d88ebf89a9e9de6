import { expect } from 'chai';

import { EMPTY_SAMPLE, type MetricsSample } from '../../../shared/metrics-sample.ts';
import {
  isNearEnd,
  ScrapeScheduler,
  type ScrapeSchedulerOptions,
} from '../../../sidecar/scrape-scheduler.ts';
import { TrainerPresence } from '../../../sidecar/trainer-presence.ts';
import {
  captureLogger,
  closedPort,
  jsonHandler,
  PINO_LEVELS,
  sleep,
  startTrainerEndpoint,
  waitFor,
  type CapturedLogger,
  type TrainerEndpoint,
} from './helpers.ts';

function gaps(times: number[]): number[] {
  return times.slice(1).map((time, i) => time - times[i]!);
}

describe('ScrapeScheduler', () => {
  let scheduler: ScrapeScheduler | undefined;
  let endpoint: TrainerEndpoint | undefined;
  let captured: CapturedLogger;
  let samples: MetricsSample[];
  let exited: boolean;

  beforeEach(() => {
    captured = captureLogger();
    samples = [];
    exited = false;
  });

  afterEach(async () => {
    await scheduler?.stop();
    await endpoint?.close();
    scheduler = undefined;
    endpoint = undefined;
  });

  function startScheduler(url: URL, overrides: Partial<ScrapeSchedulerOptions> = {}): void {
    scheduler = new ScrapeScheduler({
      url,
      liveIntervalMs: 400,
      fastIntervalMs: 100,
      refusedInitialDelayMs: 50,
      timeoutMs: 300,
      presence: new TrainerPresence({ minAbsenceMs: 300 }),
      exitWhenTrainerGone: false,
      logger: captured.logger,
      onSample: (sample) => samples.push(sample),
      onTrainerExited: () => {
        exited = true;
      },
      ...overrides,
    });
    scheduler.start();
  }

  function linesAtOrAbove(level: number): CapturedLogger['lines'] {
    return captured.lines.filter((line) => line.level >= level);
  }

  it('waits quietly with capped backoff while the port refuses', async () => {
    const port = await closedPort();
    startScheduler(new URL(`http://127.0.0.1:${port}/metrics`));
    await sleep(1500);
    const retries = captured.lines
      .filter((line) => line.msg === 'metrics endpoint not listening yet')
      .map((line) => line.retryInMs);
    expect(retries.slice(0, 5)).to.deep.equal([50, 100, 200, 400, 400]);
    expect(linesAtOrAbove(PINO_LEVELS.info)).to.deep.equal([]);
  });

  it('picks up the endpoint once it starts listening', async () => {
    const port = await closedPort();
    startScheduler(new URL(`http://127.0.0.1:${port}/metrics`));
    await sleep(300);
    endpoint = await startTrainerEndpoint(
      jsonHandler(() => ({ currentStep: 7 })),
      port,
    );
    await waitFor(() => samples.length > 0, 2000, 'a sample');
    expect(samples[0]?.currentStep).to.equal(7);
    const info = linesAtOrAbove(PINO_LEVELS.info).map((line) => line.msg);
    expect(info).to.deep.equal(['metrics endpoint is responding']);
  });

  it('scrapes at the live interval while training runs', async () => {
    const body = { progressPercentage: 10, estimatedRemainingSeconds: 600 };
    endpoint = await startTrainerEndpoint(jsonHandler(() => body));
    startScheduler(endpoint.url);
    await waitFor(() => endpoint!.requestTimes.length >= 4, 3000, 'four scrapes');
    for (const gap of gaps(endpoint.requestTimes)) expect(gap).to.be.within(350, 900);
  });

  it('scrapes faster when less than two intervals remain', async () => {
    const body = { progressPercentage: 98, estimatedRemainingSeconds: 0.5 };
    endpoint = await startTrainerEndpoint(jsonHandler(() => body));
    startScheduler(endpoint.url);
    await waitFor(() => endpoint!.requestTimes.length >= 6, 3000, 'six scrapes');
    for (const gap of gaps(endpoint.requestTimes)) expect(gap).to.be.within(80, 300);
  });

  it('keeps scraping at the live interval after 100 %', async () => {
    const body = { progressPercentage: 100, estimatedRemainingSeconds: 0 };
    endpoint = await startTrainerEndpoint(jsonHandler(() => body));
    startScheduler(endpoint.url);
    await waitFor(() => endpoint!.requestTimes.length >= 4, 3000, 'four scrapes');
    for (const gap of gaps(endpoint.requestTimes)) expect(gap).to.be.within(350, 900);
    expect(samples.every((sample) => sample.progressPercentage === 100)).to.equal(true);
  });

  it('skips a malformed body and rate-limits the warning', async () => {
    endpoint = await startTrainerEndpoint((_request, response) => response.end('{"currentStep":'));
    startScheduler(endpoint.url, { liveIntervalMs: 50 });
    await waitFor(() => endpoint!.requestTimes.length >= 5, 3000, 'five scrapes');
    expect(samples).to.deep.equal([]);
    const warnings = linesAtOrAbove(PINO_LEVELS.warn);
    expect(warnings).to.have.length(1);
    expect(warnings[0]?.msg).to.match(/^skipping a metrics body: body is not valid JSON/);
  });

  it('skips an oversized body', async () => {
    const big = { currentStep: 1, trainMetrics: { note: 'x'.repeat(70_000) } };
    endpoint = await startTrainerEndpoint(jsonHandler(() => big));
    startScheduler(endpoint.url, { liveIntervalMs: 50 });
    await waitFor(() => endpoint!.requestTimes.length >= 3, 3000, 'three scrapes');
    expect(samples).to.deep.equal([]);
    expect(linesAtOrAbove(PINO_LEVELS.warn)[0]?.msg).to.include('over the 65536-byte limit');
  });

  it('honours the scrape timeout on a silent server', async () => {
    endpoint = await startTrainerEndpoint(() => {});
    startScheduler(endpoint.url, { liveIntervalMs: 100, timeoutMs: 200 });
    await waitFor(() => endpoint!.requestTimes.length >= 3, 3000, 'three scrapes');
    for (const gap of gaps(endpoint.requestTimes)) expect(gap).to.be.within(180, 600);
    expect(linesAtOrAbove(PINO_LEVELS.warn)[0]?.msg).to.equal('metrics scrape timed out');
  });

  it('reports the trainer gone after sustained absence in container mode', async () => {
    endpoint = await startTrainerEndpoint(jsonHandler(() => ({ currentStep: 1 })));
    startScheduler(endpoint.url, { exitWhenTrainerGone: true, liveIntervalMs: 100 });
    await waitFor(() => samples.length > 0, 2000, 'a sample');
    const closedAt = Date.now();
    await endpoint.close();
    endpoint = undefined;
    await waitFor(() => exited, 3000, 'the trainer-exited callback');
    expect(Date.now() - closedAt).to.be.at.least(300);
  });

  it('never reports the trainer gone before the first response', async () => {
    const port = await closedPort();
    const url = new URL(`http://127.0.0.1:${port}/metrics`);
    startScheduler(url, { exitWhenTrainerGone: true, liveIntervalMs: 50 });
    await sleep(1200);
    expect(exited).to.equal(false);
  });

  it('keeps scraping a gone trainer in native mode', async () => {
    endpoint = await startTrainerEndpoint(jsonHandler(() => ({ currentStep: 1 })));
    const port = endpoint.port;
    startScheduler(endpoint.url, { liveIntervalMs: 50 });
    await waitFor(() => samples.length > 0, 2000, 'a sample');
    await endpoint.close();
    await sleep(800);
    expect(exited).to.equal(false);
    endpoint = await startTrainerEndpoint(
      jsonHandler(() => ({ currentStep: 2 })),
      port,
    );
    await waitFor(() => samples.at(-1)?.currentStep === 2, 2000, 'a sample after the restart');
  });

  it('scrapes once on request', async () => {
    endpoint = await startTrainerEndpoint(jsonHandler(() => ({ currentStep: 5 })));
    startScheduler(endpoint.url, { liveIntervalMs: 60_000 });
    await waitFor(() => samples.length === 1, 2000, 'the first sample');
    await scheduler!.stop();
    const result = await scheduler!.scrapeOnce();
    expect(result.kind).to.equal('ok');
    expect(samples).to.have.length(2);
  });
});

describe('isNearEnd', () => {
  const cases: [number | null, number | null, boolean][] = [
    [9, 50, true],
    [10, 50, false],
    [0, 99, true],
    [0, 100, false],
    [null, 90, false],
    [3, null, true],
  ];
  for (const [remaining, progress, expected] of cases) {
    it(`returns ${expected} for ${remaining} s left at ${progress} %`, () => {
      const sample = {
        ...EMPTY_SAMPLE,
        estimatedRemainingSeconds: remaining,
        progressPercentage: progress,
      };
      expect(isNearEnd(sample, 5000)).to.equal(expected);
    });
  }
});
