// The aggregator's flags: name, environment variable, type, range and help text. The
// --help output lists them in this order, and each help text ends with its default.

import type { AggregatorConfig } from './config.ts';
import { DEFAULT_HISTORY_BYTES, MAX_ENTRY_BYTES, MIN_HISTORY_BYTES } from './history.ts';

export type OptionKind = 'string' | 'integer' | 'number' | 'boolean';

export interface OptionSpec {
  /** Config field that the flag sets; `listen` sets listenHost and listenPort. */
  key: keyof AggregatorConfig | 'listen';
  flag: string;
  /** Environment variable suffix after TRAINJOB_PROGRESS_; derived from the flag if absent. */
  env?: string;
  kind: OptionKind;
  help: string;
  /** Shown as the default when the config field's default is not meaningful text. */
  defaultText?: string;
  min?: number;
  max?: number;
}

export const AGGREGATOR_OPTIONS: readonly OptionSpec[] = [
  {
    key: 'listen',
    flag: 'listen',
    kind: 'string',
    help: 'address and port that HTTP and WebSockets are served on: HOST:PORT, [IPv6]:PORT or :PORT; port 0 picks a free port',
    defaultText: '0.0.0.0:8080',
  },
  {
    key: 'kubeconfigPath',
    flag: 'kubeconfig',
    kind: 'string',
    help: 'kubeconfig file for the Kubernetes API',
    defaultText: '$KUBECONFIG, then ~/.kube/config, then the in-cluster service account',
  },
  {
    key: 'auth',
    flag: 'auth',
    kind: 'string',
    help: 'client authentication: kubernetes (TokenReview and SubjectAccessReview) or none, which trusts every client and so requires a loopback --listen address',
  },
  {
    key: 'tokenAudience',
    flag: 'token-audience',
    kind: 'string',
    help: 'audience that sidecar tokens must carry',
  },
  {
    key: 'watchNamespace',
    flag: 'namespace',
    env: 'WATCH_NAMESPACE',
    kind: 'string',
    help: 'watch the TrainJobs of this namespace only, and accept sidecars of this namespace only',
    defaultText: 'all namespaces',
  },
  {
    key: 'writesPerSecond',
    flag: 'write-qps',
    kind: 'number',
    min: 0.01,
    max: 1000,
    help: 'TrainJob writes per second, shared by all jobs',
  },
  {
    key: 'writeBurst',
    flag: 'write-burst',
    kind: 'integer',
    min: 1,
    max: 10000,
    help: 'TrainJob writes allowed at once before --write-qps applies',
  },
  {
    key: 'refreshIntervals',
    flag: 'refresh-intervals',
    kind: 'integer',
    min: 1,
    max: 1000,
    help: 'an unchanged status is rewritten to refresh lastUpdatedTime every N poll intervals while samples arrive',
  },
  {
    key: 'mirrorStatus',
    flag: 'mirror-status',
    kind: 'boolean',
    help: 'also write status.trainerStatus with server-side apply when the TrainJob CRD has that field',
  },
  {
    key: 'fieldManager',
    flag: 'field-manager',
    kind: 'string',
    help: 'field manager name of the TrainJob writes',
  },
  {
    key: 'historyLimit',
    flag: 'history-limit',
    kind: 'integer',
    min: 4,
    max: 100000,
    help: 'statuses kept per TrainJob for the JSON API and the charts',
  },
  {
    key: 'historyBytes',
    flag: 'history-bytes',
    kind: 'integer',
    min: MIN_HISTORY_BYTES,
    max: 1024 * 1024 * 1024,
    help: `bytes of statuses, serialized as JSON, kept per TrainJob; older statuses are thinned out first, and a status over ${MAX_ENTRY_BYTES} bytes keeps only its numeric metrics`,
    defaultText: `${DEFAULT_HISTORY_BYTES}, 4 MiB`,
  },
  {
    key: 'ingestMessagesPerSecond',
    flag: 'ingest-rate',
    kind: 'number',
    min: 0.1,
    max: 10000,
    help: 'messages per second allowed on one sidecar connection',
  },
  {
    key: 'ingestMessageBurst',
    flag: 'ingest-burst',
    kind: 'integer',
    min: 1,
    max: 100000,
    help: 'messages allowed at once on one sidecar connection, such as a buffer resent after a reconnect',
  },
  {
    key: 'maxConnectionsPerPod',
    flag: 'max-connections-per-pod',
    kind: 'integer',
    min: 1,
    max: 100,
    help: 'open sidecar connections allowed per pod',
  },
  {
    key: 'maxViewersPerClient',
    flag: 'max-viewers-per-client',
    kind: 'integer',
    min: 1,
    max: 10000,
    help: 'open viewer WebSockets allowed per user, or per client address with --auth none',
  },
  {
    key: 'pingIntervalSeconds',
    flag: 'ping-interval-seconds',
    kind: 'number',
    min: 1,
    max: 300,
    help: 'seconds between WebSocket pings; a peer that has not responded to the previous ping is dropped',
  },
  {
    key: 'authCacheSeconds',
    flag: 'auth-cache-seconds',
    kind: 'number',
    min: 0,
    max: 600,
    help: "seconds a token review result is reused, never beyond the token's expiry",
  },
  {
    key: 'tlsCertFile',
    flag: 'tls-cert-file',
    kind: 'string',
    help: 'PEM certificate chain for HTTPS and wss://, read again when the file changes',
    defaultText: 'plain HTTP',
  },
  {
    key: 'tlsKeyFile',
    flag: 'tls-key-file',
    kind: 'string',
    help: 'PEM private key of --tls-cert-file',
    defaultText: 'none',
  },
  {
    key: 'shutdownTimeoutSeconds',
    flag: 'shutdown-timeout-seconds',
    kind: 'number',
    min: 0,
    max: 600,
    help: 'seconds to wait for pending final writes after SIGTERM or SIGINT',
  },
  {
    key: 'logLevel',
    flag: 'log-level',
    kind: 'string',
    help: 'fatal, error, warn, info, debug, trace or silent',
  },
];
