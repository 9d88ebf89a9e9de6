// Wires the aggregator together and runs it: the TrainJob watch, the job registry, the
// write scheduler, the final capture, the viewer hub and the HTTP server.

import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../shared/logger.ts';
import { resolveConfig, type AggregatorConfig } from './config.ts';
import { chooseFinalSample, readTerminationMessage, type FinalChoice } from './final-capture.ts';
import { JobRegistry } from './job-registry.ts';
import type { FinalCaptureInputs, JobState } from './job-state.ts';
import { createAggregatorMetrics, type AggregatorMetrics } from './metrics.ts';
import { AggregatorServer } from './server.ts';
import { KubernetesSidecarAuthenticator } from './sidecar-auth.ts';
import { crdHasTrainerStatus } from './status-mirror.ts';
import { StatusWriter } from './status-writer.ts';
import { TrainJobWatcher } from '../shared/trainjob-watcher.ts';
import { KubernetesViewerAuthorizer, OpenViewerAuthorizer } from './viewer-auth.ts';
import { ViewerHub } from './viewer-hub.ts';
import { WriteScheduler } from './write-scheduler.ts';

const SWEEP_INTERVAL_MS = 30_000;

/** Options of startAggregator: any config field, plus an API client config and a logger. */
export interface AggregatorOptions extends Partial<AggregatorConfig> {
  /** Used instead of loading `kubeconfigPath` or the default kubeconfig. */
  kubeConfig?: KubeConfig;
  logger?: Logger;
}

export interface RunningAggregator {
  /** Base URL, e.g. `http://127.0.0.1:38211`; a wildcard listen address shows as 127.0.0.1. */
  url: string;
  port: number;
  /** Resolves once the first TrainJob list has been applied. */
  ready: Promise<void>;
  metrics: AggregatorMetrics;
  /** Stops accepting connections, writes pending final statuses (up to the shutdown timeout) and stops. */
  stop(): Promise<void>;
}

/** Starts an aggregator; resolves once it listens. */
export async function startAggregator(options: AggregatorOptions = {}): Promise<RunningAggregator> {
  const { kubeConfig: givenKubeConfig, logger: givenLogger, ...overrides } = options;
  const config = resolveConfig(overrides);
  const logger = givenLogger ?? createLogger('aggregator', config.logLevel);
  const kubeConfig = givenKubeConfig ?? loadKubeConfig(config.kubeconfigPath);
  const mirror = config.mirrorStatus && (await crdHasTrainerStatus(kubeConfig, logger));

  // The gauges read the registry and scheduler created below, only when /metrics renders.
  const metrics = createAggregatorMetrics({
    trainJobs: () => registry.size,
    writeQueueLength: () => scheduler.queueLength,
  });
  const hub = new ViewerHub({
    onDeliveries: (sent, coalesced) => {
      metrics.deliveries.inc({}, sent);
      if (coalesced > 0) metrics.deliveriesCoalesced.inc({}, coalesced);
    },
    onSlowViewerClosed: () => metrics.viewersClosedSlow.inc(),
  });
  const scheduler: WriteScheduler = new WriteScheduler(
    new StatusWriter(kubeConfig, config.fieldManager),
    {
      writesPerSecond: config.writesPerSecond,
      writeBurst: config.writeBurst,
      refreshIntervals: config.refreshIntervals,
      mirror,
    },
    {
      logger,
      metrics,
      onWritten: (state) => registry.publish(state),
      onGone: (state) => registry.remove(state.namespace, state.name),
    },
  );
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const registry: JobRegistry = new JobRegistry({
    historyLimit: config.historyLimit,
    historyBytes: config.historyBytes,
    logger,
    scheduler,
    viewers: hub,
    captureFinal: (state, inputs) => captureFinal(core, state, inputs, logger),
    onFinalCaptured: (state, source) => {
      metrics.finalCaptures.inc({ source });
      logger.info({ trainJob: state.key, phase: state.phase, source }, 'final status captured');
    },
  });

  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const watcher = new TrainJobWatcher(
    kubeConfig,
    {
      onList: (trainJobs) => {
        registry.applyList(trainJobs);
        markReady();
      },
      onUpsert: (trainJob) => registry.applyTrainJob(trainJob),
      onDelete: (trainJob) => registry.remove(trainJob.metadata.namespace, trainJob.metadata.name),
      onRestart: (reason) => metrics.watchRestarts.inc({ reason }),
    },
    {
      ...(config.watchNamespace === undefined ? {} : { namespace: config.watchNamespace }),
      logger,
    },
  );

  const server = new AggregatorServer({
    config,
    registry,
    hub,
    sidecarAuth:
      config.auth === 'none'
        ? undefined
        : new KubernetesSidecarAuthenticator(kubeConfig, {
            audience: config.tokenAudience,
            cacheSeconds: config.authCacheSeconds,
            logger,
          }),
    viewerAuth:
      config.auth === 'none'
        ? new OpenViewerAuthorizer()
        : new KubernetesViewerAuthorizer(kubeConfig, {
            cacheSeconds: config.authCacheSeconds,
            logger,
          }),
    metrics,
    logger,
    isReady: () => registry.synced,
  });
  const port = await server.listen();
  watcher.start();
  const sweeper = setInterval(() => registry.sweep(), SWEEP_INTERVAL_MS);
  sweeper.unref();
  const url = `${config.tlsCertFile === undefined ? 'http' : 'https'}://${urlHost(config.listenHost)}:${port}`;
  logger.info(
    { url, auth: config.auth, mirror, namespace: config.watchNamespace ?? 'all' },
    'aggregator listening',
  );

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    const serverClosed = server.close();
    const flushed = await scheduler.flushFinal(config.shutdownTimeoutSeconds * 1000);
    if (!flushed)
      logger.error(
        { timeoutSeconds: config.shutdownTimeoutSeconds },
        'shutdown timed out with final statuses still unwritten',
      );
    clearInterval(sweeper);
    scheduler.stop();
    hub.closeAll(1001, 'aggregator shutting down');
    await watcher.stop();
    await serverClosed;
    logger.info('aggregator stopped');
  };
  return { url, port, ready, metrics, stop: () => (stopping ??= stop()) };
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (path === undefined) kubeConfig.loadFromDefault();
  else kubeConfig.loadFromFile(path);
  return kubeConfig;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

// Never rejects: a failed pod read falls back to the job's own sources.
async function captureFinal(
  core: CoreV1Api,
  state: JobState,
  inputs: FinalCaptureInputs,
  logger: Logger,
): Promise<FinalChoice> {
  const log = logger.child({ trainJob: state.key });
  const terminationMessage = await readTerminationMessage(core, state.namespace, state.name, log);
  const choice = chooseFinalSample({
    terminationMessage,
    lastSample: inputs.lastSample,
    annotationSample: inputs.annotationSample,
  });
  if (choice.skippedMessage !== undefined) {
    log.warn({ reason: choice.skippedMessage }, 'termination message skipped');
  }
  return choice;
}
