// A local Kubernetes control plane for integration tests: etcd and kube-apiserver built from
// their Go modules, listening on loopback, with an admin kubeconfig and the TrainJob CRD.
// Nothing else runs: no controller-manager, scheduler or kubelet, so pods stay Pending.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { buildBinaries, type Binaries } from './binaries.ts';
import { createPki, writeKubeconfig, type Pki } from './cluster-pki.ts';
import { installCustomResourceDefinitions } from './crds.ts';
import { httpsGet, pollUntil } from './readiness.ts';
import {
  findFreePort,
  registerExitCleanup,
  removeStaleDirectories,
  startProcess,
  type ManagedProcess,
} from './processes.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
// The TrainJob CRD of Kubeflow Trainer v2.3.0 (manifests/base/crds, Apache License 2.0).
const DEFAULT_CRD_PATH = path.join(
  REPO_ROOT,
  'test',
  'fixtures',
  'crds',
  'trainer.kubeflow.org_trainjobs.yaml',
);
const SHARED_MEMORY_DIR = '/dev/shm';
// Folder name prefixes end with the owner's pid, so a later start can remove stale ones.
const ETCD_DATA_PREFIX = 'trainjob-progress-etcd-';
const WORK_DIR_PREFIX = 'trainjob-progress-control-plane-';
const ETCD_READY_TIMEOUT_MS = 30_000;
const APISERVER_READY_TIMEOUT_MS = 120_000;
const ADMIN_READ_TIMEOUT_MS = 60_000;
const MAX_PORT_ATTEMPTS = 3;

/** Folders for `startControlPlane`. */
export interface ControlPlaneOptions {
  /**
   * Folder for certificates, keys and the kubeconfig, created if missing. `stop()` deletes it.
   * Default: a new folder in the system's temporary folder.
   */
  workDir?: string;
  /** Folder for the etcd and kube-apiserver logs. Default: `<workDir>/logs`. */
  logDir?: string;
}

/** A running control plane, from `startControlPlane`. */
export interface ControlPlane {
  /** Admin kubeconfig (user `admin` in group `system:masters`) with certificates embedded. */
  kubeconfigPath: string;
  /** `https://127.0.0.1:<port>` of kube-apiserver. */
  serverUrl: string;
  /** CA that signed the serving and admin certificates. */
  caCertPem: string;
  /** Kubernetes version that the kube-apiserver binary was built from, such as `v1.36.3`. */
  version: string;
  /** Issuer (`iss` claim) of service account tokens. */
  serviceAccountIssuer: string;
  workDir: string;
  logDir: string;
  pids: { etcd: number; kubeApiserver: number };
  /** Stops kube-apiserver, then etcd, and deletes the work folder and etcd data. */
  stop(): Promise<void>;
}

interface Folders {
  workDir: string;
  logDir: string;
  etcdDataDir: string;
}

interface RunningProcesses {
  etcd: ManagedProcess;
  apiserver: ManagedProcess;
  apiserverPort: number;
}

/**
 * Starts etcd and kube-apiserver on free loopback ports, waits until the API server serves
 * requests, writes an admin kubeconfig and installs the TrainJob CRD (from the
 * `TRAINJOB_CRD_PATH` environment variable if set). Builds the binaries first unless cached.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const timer = createPhaseTimer();
  const binaries = await buildBinaries(['kube-apiserver', 'etcd']);
  timer.mark('build check');
  const folders = createFolders(options);
  // The processes register their own exit cleanups later, and those run before this one.
  const unregisterCleanup = registerExitCleanup(() => removeFolders(folders));
  let running: RunningProcesses | undefined;

  try {
    const pki = createPki(path.join(folders.workDir, 'pki'));
    timer.mark('certificates');
    running = await startProcesses(binaries, folders, pki, timer);
    const serverUrl = `https://127.0.0.1:${running.apiserverPort}`;
    const kubeconfigPath = path.join(folders.workDir, 'kubeconfig');
    writeKubeconfig(kubeconfigPath, serverUrl, pki);

    const kubeConfig = kubeConfigFor({ kubeconfigPath });
    const crdPath = process.env.TRAINJOB_CRD_PATH ?? DEFAULT_CRD_PATH;
    await installCustomResourceDefinitions(kubeConfig, crdPath);
    timer.mark('CRDs');
    await warmUpTrainJobWrites(kubeConfig);
    timer.mark('TrainJob warm-up');

    const version = binaries.versions['kube-apiserver'];
    progress(`kube-apiserver ${version} ready at ${serverUrl} in ${timer.summary()}`);
    return {
      kubeconfigPath,
      serverUrl,
      caCertPem: pki.caCertPem,
      version,
      serviceAccountIssuer: serverUrl,
      workDir: folders.workDir,
      logDir: folders.logDir,
      pids: { etcd: running.etcd.pid, kubeApiserver: running.apiserver.pid },
      stop: createStop(running, folders, unregisterCleanup),
    };
  } catch (error) {
    await stopProcesses(running?.apiserver, running?.etcd);
    removeFolders(folders);
    unregisterCleanup();
    throw error;
  }
}

// kube-apiserver builds a custom resource's write validation, CEL rules included, on the first
// write. For the TrainJob CRD that took about 2 s on a 2-core machine, so a dry-run create pays
// it here instead of in the first test that writes a TrainJob.
async function warmUpTrainJobWrites(kubeConfig: KubeConfig): Promise<void> {
  await kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: 'trainer.kubeflow.org',
    version: 'v1alpha1',
    plural: 'trainjobs',
    namespace: 'default',
    dryRun: 'All',
    body: {
      apiVersion: 'trainer.kubeflow.org/v1alpha1',
      kind: 'TrainJob',
      metadata: { name: 'warm-up' },
      spec: { runtimeRef: { name: 'torch-distributed' } },
    },
  });
}

// Returns an idempotent stop(): concurrent and repeated calls share one shutdown.
function createStop(
  running: RunningProcesses,
  folders: Folders,
  unregisterCleanup: () => void,
): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= stopProcesses(running.apiserver, running.etcd).then(() => {
      removeFolders(folders);
      unregisterCleanup();
    });
    return stopping;
  };
}

interface PhaseTimer {
  /** Records the time since the previous mark under `phase`. */
  mark(phase: string): void;
  /** Returns the total and per-phase seconds, such as "5.1 s (etcd 0.4 s, …)". */
  summary(): string;
}

function createPhaseTimer(): PhaseTimer {
  const startedAt = performance.now();
  let previous = startedAt;
  const phases: string[] = [];
  const seconds = (milliseconds: number): string => `${(milliseconds / 1000).toFixed(1)} s`;
  return {
    mark(phase) {
      const now = performance.now();
      phases.push(`${phase} ${seconds(now - previous)}`);
      previous = now;
    },
    summary: () => `${seconds(performance.now() - startedAt)} (${phases.join(', ')})`,
  };
}

/** Returns a KubeConfig loaded from the control plane's admin kubeconfig. */
export function kubeConfigFor(controlPlane: Pick<ControlPlane, 'kubeconfigPath'>): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(controlPlane.kubeconfigPath);
  return kubeConfig;
}

function progress(message: string): void {
  process.stderr.write(`[control-plane] ${message}\n`);
}

function createFolders(options: ControlPlaneOptions): Folders {
  removeStaleDirectories(tmpdir(), WORK_DIR_PREFIX);
  let workDir: string;
  if (options.workDir === undefined) {
    workDir = mkdtempSync(path.join(tmpdir(), `${WORK_DIR_PREFIX}${process.pid}-`));
  } else {
    workDir = path.resolve(options.workDir);
    mkdirSync(workDir, { recursive: true });
  }
  const logDir = path.resolve(options.logDir ?? path.join(workDir, 'logs'));
  mkdirSync(logDir, { recursive: true });

  // etcd's write-ahead log is much faster on tmpfs, and the data is thrown away after the run.
  const dataParent = existsDirectory(SHARED_MEMORY_DIR) ? SHARED_MEMORY_DIR : workDir;
  removeStaleDirectories(dataParent, ETCD_DATA_PREFIX);
  const etcdDataDir = mkdtempSync(path.join(dataParent, `${ETCD_DATA_PREFIX}${process.pid}-`));
  return { workDir, logDir, etcdDataDir };
}

function existsDirectory(directory: string): boolean {
  return statSync(directory, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function removeFolders(folders: Folders): void {
  for (const directory of [folders.etcdDataDir, folders.workDir]) {
    rmSync(directory, { recursive: true, force: true, maxRetries: 3 });
  }
}

// Retries with new ports when a port picked by findFreePort was taken before etcd or
// kube-apiserver could bind it.
async function startProcesses(
  binaries: Binaries<'kube-apiserver' | 'etcd'>,
  folders: Folders,
  pki: Pki,
  timer: PhaseTimer,
): Promise<RunningProcesses> {
  for (let attempt = 1; ; attempt++) {
    let etcd: ManagedProcess | undefined;
    let apiserver: ManagedProcess | undefined;
    try {
      const etcdUrl = `http://127.0.0.1:${await findFreePort()}`;
      etcd = startEtcd(binaries.paths.etcd, etcdUrl, await findFreePort(), folders);
      await waitForEtcd(etcd, etcdUrl);
      timer.mark('etcd');

      const apiserverPort = await findFreePort();
      const args = kubeApiserverArgs(etcdUrl, apiserverPort, folders.workDir, pki);
      const logPath = path.join(folders.logDir, 'kube-apiserver.log');
      apiserver = startProcess('kube-apiserver', binaries.paths['kube-apiserver'], args, logPath);
      await waitForKubeApiserver(apiserver, `https://127.0.0.1:${apiserverPort}`, pki);
      timer.mark('kube-apiserver');
      return { etcd, apiserver, apiserverPort };
    } catch (error) {
      await stopProcesses(apiserver, etcd);
      const portTaken = (error as { code?: string }).code === 'EADDRINUSE';
      if (!portTaken || attempt >= MAX_PORT_ATTEMPTS) {
        throw error;
      }
      progress(
        `a port was taken before it could be bound (attempt ${attempt}), retrying with new ports`,
      );
      rmSync(folders.etcdDataDir, { recursive: true, force: true });
      mkdirSync(folders.etcdDataDir);
    }
  }
}

async function stopProcesses(...processes: (ManagedProcess | undefined)[]): Promise<void> {
  for (const managed of processes) {
    await managed?.stop();
  }
}

function startEtcd(
  binary: string,
  clientUrl: string,
  peerPort: number,
  folders: Folders,
): ManagedProcess {
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name=default',
    `--data-dir=${folders.etcdDataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    // Test data need not survive a crash, and fsync dominates etcd's write latency.
    '--unsafe-no-fsync',
  ];
  return startProcess('etcd', binary, args, path.join(folders.logDir, 'etcd.log'));
}

async function waitForEtcd(etcd: ManagedProcess, clientUrl: string): Promise<void> {
  await pollUntil('etcd /health', ETCD_READY_TIMEOUT_MS, [etcd], async () => {
    const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2000) });
    const body = await response.text();
    return response.ok && body.includes('"health":"true"')
      ? true
      : `HTTP ${response.status}: ${body}`;
  });
}

function kubeApiserverArgs(etcdUrl: string, port: number, workDir: string, pki: Pki): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    '--advertise-address=127.0.0.1',
    // The lease reconciler would write 127.0.0.1 into the `kubernetes` Endpoints, which reject
    // loopback addresses, and newer releases reject that combination at start-up.
    '--endpoint-reconciler-type=none',
    `--cert-dir=${path.join(workDir, 'apiserver-certs')}`,
    `--tls-cert-file=${pki.files.servingCert}`,
    `--tls-private-key-file=${pki.files.servingKey}`,
    `--client-ca-file=${pki.files.caCert}`,
    `--service-account-issuer=https://127.0.0.1:${port}`,
    `--service-account-key-file=${pki.files.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${pki.files.serviceAccountKey}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=RBAC',
    // Without a controller-manager no namespace gets a `default` ServiceAccount, and this
    // plugin would reject every pod that does not name an existing one.
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
  ];
}

async function waitForKubeApiserver(
  apiserver: ManagedProcess,
  serverUrl: string,
  pki: Pki,
): Promise<void> {
  await pollUntil('kube-apiserver /readyz', APISERVER_READY_TIMEOUT_MS, [apiserver], async () => {
    const response = await httpsGet(`${serverUrl}/readyz`, { ca: pki.caCertPem });
    return response.status === 200 ? true : `HTTP ${response.status}: ${response.body.slice(-500)}`;
  });

  // /readyz is anonymous, so a namespaced read also checks that the admin certificate
  // authenticates and that RBAC authorizes it.
  const adminTls = {
    ca: pki.caCertPem,
    cert: pki.admin.certificatePem,
    key: pki.admin.privateKeyPem,
  };
  await pollUntil(
    'an admin list of service accounts in namespace default',
    ADMIN_READ_TIMEOUT_MS,
    [apiserver],
    async () => {
      const response = await httpsGet(
        `${serverUrl}/api/v1/namespaces/default/serviceaccounts`,
        adminTls,
      );
      return response.status === 200
        ? true
        : `HTTP ${response.status}: ${response.body.slice(0, 500)}`;
    },
  );
}
