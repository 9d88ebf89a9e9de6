// Starts the webhook in this process: the programmatic entry point that the CLI and the
// demo share. It detects the sidecar mode, loads the serving certificate, starts the HTTPS
// server and the TrainJob cache, and keeps the certificate and caBundle current until stop().

import type { AddressInfo } from 'node:net';
import type https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../shared/logger.ts';
import { AdmissionHandler } from './admission-handler.ts';
import { CaBundleSync } from './ca-bundle-sync.ts';
import {
  CertRotator,
  filesSource,
  selfSignedSource,
  type CertificateSource,
} from './cert-rotator.ts';
import { defaultWebhookConfig, validateWebhookConfig, type WebhookConfig } from './config.ts';
import { injectionDefaults } from './injection-defaults.ts';
import { KubeClient } from './kube-client.ts';
import { retryUntilDone, runMaintenance } from './maintenance-loop.ts';
import { WebhookMetrics } from './metrics.ts';
import type { SidecarMode } from './pod-settings.ts';
import {
  applyMutatingWebhookConfiguration,
  buildMutatingWebhookConfiguration,
} from './registration.ts';
import { servingNames } from './self-signed-certs.ts';
import { createWebhookServer } from './server.ts';
import { kubeTrainJobApi } from './trainjob-api.ts';
import { TrainJobCache } from './trainjob-cache.ts';

export interface StartWebhookOptions extends Partial<
  Omit<WebhookConfig, 'aggregatorUrl' | 'sidecarImage'>
> {
  aggregatorUrl: string;
  sidecarImage: string;
  /** Client configuration; loaded from `kubeconfigPath` or the defaults when absent. */
  kubeConfig?: KubeConfig;
  logger?: Logger;
  /**
   * Creates or replaces the MutatingWebhookConfiguration `webhookConfigName` with a `url`
   * client config that points at this server, for local runs without a Service.
   */
  register?: boolean;
}

export interface RunningWebhook {
  /** `https://HOST:PORT/mutate` of the bound server; 0.0.0.0 and :: are shown as loopback. */
  url: string;
  port: number;
  /** PEM of the CAs that verify the serving certificate (the certificate itself in files mode without ca.crt). */
  caCertPem: string;
  /** Resolves once the certificate, the caBundle and the TrainJob cache are in place. */
  ready: Promise<void>;
  isReady(): boolean;
  readonly config: WebhookConfig;
  readonly metrics: WebhookMetrics;
  readonly sidecarMode: SidecarMode;
  /** Reports not ready from now on, so endpoints drop this replica before stop(). */
  beginShutdown(): void;
  /** Stops serving, waiting up to 5 s for requests in flight, then stops every loop. */
  stop(): Promise<void>;
}

const CLOSE_GRACE_MS = 5_000;

/** Validates the options against the defaults and starts the webhook. */
export async function startWebhook(options: StartWebhookOptions): Promise<RunningWebhook> {
  const { kubeConfig, logger, register, ...overrides } = options;
  const config = validateWebhookConfig({ ...defaultWebhookConfig(), ...overrides });
  return startWebhookWithConfig(config, { kubeConfig, logger, register });
}

export async function startWebhookWithConfig(
  config: WebhookConfig,
  dependencies: {
    kubeConfig?: KubeConfig | undefined;
    logger?: Logger | undefined;
    register?: boolean | undefined;
    signal?: AbortSignal;
  } = {},
): Promise<RunningWebhook> {
  const logger = dependencies.logger ?? createLogger('webhook', config.logLevel);
  const client = new KubeClient(dependencies.kubeConfig ?? loadKubeConfig(config.kubeconfigPath));
  const lifetime = new AbortController();
  const startSignal = AbortSignal.any([
    lifetime.signal,
    ...(dependencies.signal ? [dependencies.signal] : []),
  ]);

  const defaults = await injectionDefaults(config, client, logger, startSignal);
  const rotator = new CertRotator(certificateSource(config, client, logger), logger);
  const certificate = await retryUntilDone(
    'loading the serving certificate',
    logger,
    startSignal,
    () => rotator.initialize(startSignal),
  );

  let shuttingDown = false;
  const cache = new TrainJobCache({
    api: kubeTrainJobApi(client),
    logger,
    liveReadTimeoutMs: config.trainJobReadTimeoutMs,
  });
  const caBundleSync = syncsCaBundle(config)
    ? new CaBundleSync(client, config.webhookConfigName, logger, () =>
        metrics.caBundleRepairs.inc(),
      )
    : undefined;
  const pending = (): string[] => {
    const missing: string[] = [];
    if (shuttingDown) missing.push('shutdown');
    if (!cache.synced) missing.push('TrainJob cache');
    if (caBundleSync !== undefined && !caBundleSync.inPlace)
      missing.push(`caBundle of ${config.webhookConfigName}`);
    return missing;
  };
  const metrics = new WebhookMetrics({
    ready: () => pending().length === 0,
    cacheSynced: () => cache.synced,
    cachedTrainJobs: () => cache.size,
    certificateNotAfterSeconds: () => (rotator.current?.notAfter ?? NaN) / 1000,
  });
  const handler = new AdmissionHandler({
    defaults,
    sidecar: {
      image: config.sidecarImage,
      imagePullPolicy: config.sidecarImagePullPolicy,
      aggregatorUrl: config.aggregatorUrl,
      tokenAudience: config.tokenAudience,
    },
    trainJobs: cache,
    metrics,
    logger,
  });
  const server = createWebhookServer({
    handler,
    metrics,
    logger,
    readiness: { pending },
    tls: certificate,
  });
  rotator.onChange((next) => {
    server.setSecureContext({
      cert: next.certificatePem,
      key: next.privateKeyPem,
      minVersion: 'TLSv1.2',
    });
    metrics.certificateRotations.inc();
  });

  const port = await listen(server, config.listen.host, config.listen.port);
  const url = `https://${urlHost(config.listen.host)}:${port}/mutate`;
  logger.info(
    { url, sidecarMode: defaults.sidecarMode, certMode: config.certMode },
    'webhook listening',
  );
  if (dependencies.register === true) {
    const registration = buildMutatingWebhookConfiguration({
      name: config.webhookConfigName,
      target: { url },
      caBundlePem: certificate.caBundlePem ?? certificate.certificatePem,
      ownNamespace: config.namespace,
    });
    await applyMutatingWebhookConfiguration(client, registration);
  }
  cache.start();

  const ready = Promise.withResolvers<void>();
  ready.promise.catch(() => undefined);
  const checkReady = (): void => {
    if (pending().length === 0) ready.resolve();
  };
  void cache.whenSynced().then(checkReady);
  const maintenance = runMaintenance({
    rotator,
    caBundleSync,
    logger,
    intervalMs: config.reconcileIntervalMs,
    signal: lifetime.signal,
    afterEach: checkReady,
  });

  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    caCertPem: certificate.caBundlePem ?? certificate.certificatePem,
    ready: ready.promise,
    isReady: () => pending().length === 0,
    config,
    metrics,
    sidecarMode: defaults.sidecarMode,
    beginShutdown: () => {
      shuttingDown = true;
    },
    stop: () => {
      shuttingDown = true;
      stopping ??= (async () => {
        lifetime.abort();
        ready.reject(new Error('the webhook stopped before it was ready'));
        await Promise.all([closeServer(server), cache.stop(), maintenance]);
        logger.info('webhook stopped');
      })();
      return stopping;
    },
  };
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (path === undefined) kubeConfig.loadFromDefault();
  else kubeConfig.loadFromFile(path);
  return kubeConfig;
}

function syncsCaBundle(config: WebhookConfig): boolean {
  return config.certMode === 'self-signed' && config.webhookConfigName !== '';
}

function certificateSource(
  config: WebhookConfig,
  client: KubeClient,
  logger: Logger,
): CertificateSource {
  if (config.certMode === 'files') return filesSource(config.certDir!);
  const options = {
    namespace: config.namespace,
    secretName: config.secretName,
    names: servingNames(config.serviceName, config.namespace, config.clusterDomain),
    servingValidityMs: config.certValidityMs,
    caValidityMs: config.caValidityMs,
  };
  return selfSignedSource(client, options, config.certDir, logger);
}

function listen(server: https.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

async function closeServer(server: https.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
  await closed;
  clearTimeout(timer);
}
