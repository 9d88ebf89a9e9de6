// Starts and stops a local control plane that outlives this command, for manual work and for
// tools that take a kubeconfig.
//
//   node test/control-plane/cli.ts up     starts it in the background and prints
//                                         KUBECONFIG=<path> as its last line
//   node test/control-plane/cli.ts down   stops it and removes .cluster/
//
// `up` starts a detached supervisor (this file with the internal command `supervise`) that
// runs startControlPlane, records its processes in .cluster/state.json and stops the control
// plane on SIGTERM. etcd and kube-apiserver die with the supervisor even if it is killed.
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, startControlPlane, type ControlPlane } from './control-plane.ts';
import { isProcessAlive, killIfRunning } from './processes.ts';

const STATE_DIR = path.join(REPO_ROOT, '.cluster');
const STATE_PATH = path.join(STATE_DIR, 'state.json');
const SUPERVISOR_LOG_PATH = path.join(STATE_DIR, 'supervisor.log');
// A first run builds kube-apiserver from source, which can take 10-20 minutes.
const UP_TIMEOUT_MS = 30 * 60 * 1000;
const DOWN_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 200;

/** Contents of .cluster/state.json. */
interface ClusterState {
  status: 'starting' | 'ready' | 'failed';
  supervisorPid: number;
  etcdPid?: number;
  kubeApiserverPid?: number;
  kubeconfigPath?: string;
  serverUrl?: string;
  version?: string;
  error?: string;
}

function readState(): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_PATH, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

function writeState(state: ClusterState): void {
  const temporaryPath = `${STATE_PATH}.tmp`;
  writeFileSync(temporaryPath, `${JSON.stringify(state, null, 2)}\n`);
  // The rename replaces the file atomically, so a reader that polls it never reads a partial file.
  renameSync(temporaryPath, STATE_PATH);
}

// Checks /proc/<pid>/cmdline too, so a pid that a reboot gave to another program is not ours.
function isRunning(pid: number | undefined, commandMarker: string): pid is number {
  if (pid === undefined || !isProcessAlive(pid)) {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(commandMarker);
  } catch {
    return true;
  }
}

function isReady(
  state: ClusterState | undefined,
): state is ClusterState & { kubeconfigPath: string } {
  return (
    state?.status === 'ready' &&
    state.kubeconfigPath !== undefined &&
    isRunning(state.supervisorPid, 'cli.ts') &&
    isRunning(state.kubeApiserverPid, 'kube-apiserver')
  );
}

async function up(): Promise<void> {
  const existing = readState();
  if (isReady(existing)) {
    console.error(`control plane already running at ${existing.serverUrl}`);
    console.log(`KUBECONFIG=${existing.kubeconfigPath}`);
    return;
  }
  if (existing?.status === 'starting' && isRunning(existing.supervisorPid, 'cli.ts')) {
    console.error(`waiting for the control plane that is starting (log: ${SUPERVISOR_LOG_PATH})`);
    const state = await waitForSupervisor(existing.supervisorPid);
    console.log(`KUBECONFIG=${state.kubeconfigPath}`);
    return;
  }
  if (existing !== undefined) {
    console.error('removing the state of a control plane that no longer runs');
    await down();
  }

  mkdirSync(STATE_DIR, { recursive: true });
  const logFd = openSync(SUPERVISOR_LOG_PATH, 'w');
  const supervisor = spawn(process.execPath, [import.meta.filename, 'supervise'], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  supervisor.unref();
  console.error(`starting the control plane (log: ${SUPERVISOR_LOG_PATH})`);

  const state = await waitForSupervisor(supervisor.pid ?? 0);
  console.log(`KUBECONFIG=${state.kubeconfigPath}`);
}

// Relays the supervisor's log to stderr until state.json reports ready or failed.
async function waitForSupervisor(
  supervisorPid: number,
): Promise<ClusterState & { kubeconfigPath: string }> {
  const deadline = Date.now() + UP_TIMEOUT_MS;
  const log = { fd: openSync(SUPERVISOR_LOG_PATH, 'r'), position: 0 };
  try {
    for (;;) {
      relayNewLogOutput(log);
      const state = readState();
      if (isReady(state)) {
        return state;
      }
      if (state?.status === 'failed' || !isProcessAlive(supervisorPid)) {
        relayNewLogOutput(log);
        throw new Error(
          `the control plane failed to start: ${state?.error ?? 'the supervisor exited'}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `the control plane did not become ready within ${UP_TIMEOUT_MS / 60_000} minutes`,
        );
      }
      await sleep(POLL_INTERVAL_MS);
    }
  } finally {
    closeSync(log.fd);
  }
}

function relayNewLogOutput(log: { fd: number; position: number }): void {
  const buffer = Buffer.alloc(64 * 1024);
  let bytesRead: number;
  while ((bytesRead = readSync(log.fd, buffer, 0, buffer.length, log.position)) > 0) {
    process.stderr.write(buffer.subarray(0, bytesRead));
    log.position += bytesRead;
  }
}

async function down(): Promise<void> {
  const state = readState();
  if (state === undefined) {
    rmSync(STATE_DIR, { recursive: true, force: true });
    console.error('no local control plane is running');
    return;
  }

  if (isRunning(state.supervisorPid, 'cli.ts')) {
    killIfRunning(state.supervisorPid, 'SIGTERM');
    const deadline = Date.now() + DOWN_TIMEOUT_MS;
    while (isProcessAlive(state.supervisorPid) && Date.now() < deadline) {
      await sleep(POLL_INTERVAL_MS);
    }
  }
  // Leftovers from a supervisor that was killed or did not stop in time.
  for (const [pid, marker] of [
    [state.supervisorPid, 'cli.ts'],
    [state.kubeApiserverPid, 'kube-apiserver'],
    [state.etcdPid, 'etcd'],
  ] as const) {
    if (isRunning(pid, marker)) {
      console.error(`killing ${marker} (pid ${pid}), which did not stop in time`);
      killIfRunning(pid);
    }
  }
  rmSync(STATE_DIR, { recursive: true, force: true });
  console.error('control plane stopped');
}

async function supervise(): Promise<void> {
  let controlPlane: ControlPlane | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    console.error(`received ${signal}, stopping the control plane`);
    if (controlPlane === undefined) {
      // Still starting: exiting runs the cleanup that kills the processes started so far.
      process.exit(1);
    }
    void controlPlane.stop().then(() => process.exit(0));
  };
  // These listeners make the control plane's own signal cleanup stand aside for a graceful stop.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, stop);
  }

  writeState({ status: 'starting', supervisorPid: process.pid });
  try {
    controlPlane = await startControlPlane({
      workDir: path.join(STATE_DIR, 'control-plane'),
      logDir: path.join(STATE_DIR, 'logs'),
    });
  } catch (error) {
    console.error(error);
    writeState({ status: 'failed', supervisorPid: process.pid, error: String(error) });
    process.exit(1);
  }
  writeState({
    status: 'ready',
    supervisorPid: process.pid,
    etcdPid: controlPlane.pids.etcd,
    kubeApiserverPid: controlPlane.pids.kubeApiserver,
    kubeconfigPath: controlPlane.kubeconfigPath,
    serverUrl: controlPlane.serverUrl,
    version: controlPlane.version,
  });
  // Signal listeners do not keep Node running, so a timer waits for the SIGTERM from `down`.
  setInterval(() => undefined, 1 << 30);
}

const commands: Record<string, () => Promise<void>> = { up, down, supervise };
const command = commands[process.argv[2] ?? ''];
if (command === undefined) {
  console.error('usage: node test/control-plane/cli.ts up|down');
  process.exit(2);
}
try {
  await command();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
}
