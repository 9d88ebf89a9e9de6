// Environment variables through which the webhook configures the injected sidecar. The
// webhook writes them into the container spec; the sidecar reads them at start-up.

export const SIDECAR_ENV = Object.freeze({
  /** WebSocket URL of the aggregator's ingest endpoint, `ws://…/v1/ingest` or `wss://…`. */
  aggregatorUrl: 'TRAINJOB_PROGRESS_AGGREGATOR_URL',
  /** PEM file of a CA that signs the aggregator's certificate (optional, for `wss://`). */
  aggregatorCaFile: 'TRAINJOB_PROGRESS_AGGREGATOR_CA_FILE',
  /** Port of the trainer's metrics endpoint on 127.0.0.1. */
  metricsPort: 'TRAINJOB_PROGRESS_METRICS_PORT',
  /** HTTP path of the trainer's metrics endpoint. */
  metricsPath: 'TRAINJOB_PROGRESS_METRICS_PATH',
  /** Seconds between scrapes while training runs. */
  scrapeIntervalSeconds: 'TRAINJOB_PROGRESS_SCRAPE_INTERVAL_SECONDS',
  /** The TrainJob's poll interval in seconds, sent to the aggregator. */
  pollIntervalSeconds: 'TRAINJOB_PROGRESS_POLL_INTERVAL_SECONDS',
  /** File of the projected service-account token; re-read on every connection. */
  tokenFile: 'TRAINJOB_PROGRESS_TOKEN_FILE',
  /** `native` or `container`: a regular container must exit by itself after the trainer. */
  mode: 'TRAINJOB_PROGRESS_SIDECAR_MODE',
  /** Downward API: the pod's own identity, resolved by the kubelet at run time. */
  podName: 'TRAINJOB_PROGRESS_POD_NAME',
  podNamespace: 'TRAINJOB_PROGRESS_POD_NAMESPACE',
  podUid: 'TRAINJOB_PROGRESS_POD_UID',
  /** Downward API: the pod's `jobset.sigs.k8s.io/jobset-name` label, the TrainJob name. */
  trainJobName: 'TRAINJOB_PROGRESS_TRAINJOB_NAME',
});

/** Mount folder and file name of the projected token volume in the sidecar. */
export const TOKEN_MOUNT_PATH = '/var/run/secrets/trainjob-progress';
export const TOKEN_FILE_NAME = 'token';
export const TOKEN_VOLUME_NAME = 'trainjob-progress-token';
/** Lifetime requested for the projected token; the kubelet refreshes it at 80 %. */
export const TOKEN_EXPIRATION_SECONDS = 600;

/** Live scrape interval unless the TrainJob's poll interval is shorter. */
export const DEFAULT_SCRAPE_INTERVAL_SECONDS = 5;
