// Wires the scrape loop to the aggregator stream and owns the sidecar's lifecycle. Both start
// without waiting for the trainer or the aggregator. On SIGTERM or SIGINT the sidecar makes a
// last scrape, flushes and sends a goodbye with reason `terminating`. In container mode it
// also stops once the trainer has exited, with reason `trainer-exited`. Either way the exit
// code is 0.

import type { Logger } from '../shared/logger.ts';
import type { MetricsSample } from '../shared/metrics-sample.ts';
import type { GoodbyeMessage } from '../shared/stream-protocol.ts';
import type { SidecarConfig } from './config.ts';
import { LogThrottle } from './log-throttle.ts';
import { SampleBuffer } from './sample-buffer.ts';
import { ScrapeScheduler } from './scrape-scheduler.ts';
import { StreamClient } from './stream-client.ts';
import { TrainerPresence } from './trainer-presence.ts';

const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/** Runs the sidecar until it is stopped; resolves with the process exit code. */
export function runSidecar(
  config: Readonly<SidecarConfig>,
  logger: Logger,
  version: string,
): Promise<number> {
  const buffer = new SampleBuffer(config.bufferSize);
  const dropWarnings = new LogThrottle(60_000);
  const stream = new StreamClient({
    url: config.aggregatorUrl,
    caFile: config.aggregatorCaFile,
    tokenFile: config.tokenFile,
    buffer,
    logger,
    hello: {
      type: 'hello',
      namespace: config.podNamespace,
      trainJob: config.trainJobName,
      pod: config.podName,
      podUid: config.podUid,
      sidecarVersion: version,
      pollIntervalSeconds: config.pollIntervalSeconds,
      scrapeIntervalSeconds: config.liveIntervalSeconds,
    },
  });

  const enqueue = (sample: MetricsSample, observedAt: Date): void => {
    const droppedBefore = buffer.droppedCount;
    buffer.push(sample, observedAt);
    if (buffer.droppedCount > droppedBefore && dropWarnings.admit('dropped') !== undefined) {
      logger.warn(
        { dropped: buffer.droppedCount, bufferSize: config.bufferSize },
        'sample buffer full while the aggregator is unreachable, dropping the oldest samples',
      );
    }
    stream.sendPending();
  };

  return new Promise((resolve) => {
    let stopping = false;
    const stop = async (reason: GoodbyeMessage['reason'], lastScrape: boolean): Promise<void> => {
      if (stopping) return;
      stopping = true;
      try {
        await scheduler.stop();
        if (lastScrape) await scheduler.scrapeOnce();
        const acknowledged = await stream.flush(reason, config.flushTimeoutSeconds * 1000);
        logger.info({ reason, acknowledged, unacknowledged: buffer.size }, 'sidecar stopped');
      } catch (error) {
        logger.error({ err: error, reason }, 'stopping the sidecar failed, exiting anyway');
      }
      // Removed only now: without a listener, a second signal would kill the process mid-flush.
      for (const signal of SHUTDOWN_SIGNALS) process.off(signal, onSignal);
      resolve(0);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.info({ signal }, 'already stopping, ignoring the signal');
        return;
      }
      logger.info({ signal }, 'stopping: last scrape, then flushing to the aggregator');
      void stop('terminating', true);
    };

    const scheduler = new ScrapeScheduler({
      url: config.metricsUrl,
      liveIntervalMs: config.liveIntervalSeconds * 1000,
      presence: new TrainerPresence({ minAbsenceMs: config.trainerExitSeconds * 1000 }),
      exitWhenTrainerGone: config.mode === 'container',
      logger,
      onSample: enqueue,
      onTrainerExited: () => void stop('trainer-exited', false),
    });

    for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
    logger.info(
      {
        mode: config.mode,
        metricsUrl: config.metricsUrl.href,
        aggregatorUrl: config.aggregatorUrl.href,
        liveIntervalSeconds: config.liveIntervalSeconds,
        version,
      },
      'sidecar started',
    );
    stream.start();
    scheduler.start();
  });
}
