// Child processes of the local control plane: spawning with logs in a file, stopping with a
// grace period, and cleanup when the Node process exits while they still run.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';

// util-linux setpriv sets PR_SET_PDEATHSIG before it executes the binary, so the kernel kills
// the child when the Node process dies, even by SIGKILL.
const SETPRIV_PATH = '/usr/bin/setpriv';
const DEFAULT_STOP_GRACE_MS = 10_000;

/** How a process ended: its exit code, or the signal that killed it. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running binary whose stdout and stderr go to `logPath`. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process has exited. It never rejects. */
  readonly exited: Promise<ProcessExit>;
  /** Returns the exit status, or undefined while the process runs. */
  exitStatus(): ProcessExit | undefined;
  /** Sends SIGTERM, then SIGKILL if the process still runs after `graceMs` (default 10 s). */
  stop(graceMs?: number): Promise<void>;
  /** Returns the last `lineCount` lines of the log file. */
  logTail(lineCount?: number): string;
}

const exitCleanups = new Set<() => void>();
let exitHandlersInstalled = false;

/**
 * Registers a synchronous cleanup that runs if the Node process exits or receives SIGINT,
 * SIGTERM or SIGHUP first. Returns a function that unregisters it.
 *
 * A signal runs the cleanups only when no other listener handles that signal. Otherwise the
 * other listener owns shutdown, and the cleanups run on the `exit` event.
 */
export function registerExitCleanup(cleanup: () => void): () => void {
  installExitHandlers();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

// Runs the newest cleanup first, so processes die before the folders they use are removed.
function runExitCleanups(): void {
  for (const cleanup of [...exitCleanups].reverse()) {
    try {
      cleanup();
    } catch (error) {
      process.stderr.write(`control plane cleanup failed: ${String(error)}\n`);
    }
  }
  exitCleanups.clear();
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) {
    return;
  }
  exitHandlersInstalled = true;
  process.on('exit', runExitCleanups);

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) {
        return;
      }
      runExitCleanups();
      // Re-raises the signal without this listener so the process ends as it would have.
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Spawns `binary` with `args`, appending its stdout and stderr to `logPath`. */
export function startProcess(
  name: string,
  binary: string,
  args: string[],
  logPath: string,
): ManagedProcess {
  const logFd = openSync(logPath, 'a');
  const [command, commandArgs] = existsSync(SETPRIV_PATH)
    ? [SETPRIV_PATH, ['--pdeathsig', 'KILL', '--', binary, ...args]]
    : [binary, args];
  let child;
  try {
    child = spawn(command, commandArgs, { stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }

  let exitStatus: ProcessExit | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('error', (error) => {
      exitStatus ??= { code: null, signal: null };
      process.stderr.write(`failed to start ${name} (${binary}): ${error.message}\n`);
      resolve(exitStatus);
    });
    child.once('exit', (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });
  // child.pid is undefined when the spawn failed, and 0 marks that here.
  const pid = child.pid ?? 0;
  const unregister = registerExitCleanup(() => killIfRunning(pid));
  void exited.then(unregister);

  return {
    name,
    pid,
    logPath,
    exited,
    exitStatus: () => exitStatus,
    stop: async (graceMs = DEFAULT_STOP_GRACE_MS) => {
      if (exitStatus !== undefined) {
        return;
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    logTail: (lineCount = 40) => readLogTail(logPath, lineCount),
  };
}

/** Sends `signal` (default SIGKILL) to `pid`, ignoring a process that has already exited. */
export function killIfRunning(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (isValidPid(pid)) {
    sendSignal(pid, signal);
  }
}

/** Sends SIGKILL to every process in the group `groupId`, if any remains. */
export function killGroupIfRunning(groupId: number | undefined): void {
  if (isValidPid(groupId)) {
    sendSignal(-groupId, 'SIGKILL');
  }
}

// Rejects 0 and negative numbers, which process.kill reads as process groups or every process.
function isValidPid(pid: number | undefined): pid is number {
  return pid !== undefined && Number.isInteger(pid) && pid > 0;
}

function sendSignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') {
      throw error;
    }
  }
}

/** Reports whether a process with `pid` exists. */
export function isProcessAlive(pid: number): boolean {
  if (!isValidPid(pid)) {
    return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Returns the last `lineCount` lines of a log file, or a note that the file is missing. */
export function readLogTail(logPath: string, lineCount: number): string {
  if (!existsSync(logPath)) {
    return `(no log file at ${logPath})`;
  }
  const lines = readFileSync(logPath, 'utf8').trimEnd().split('\n');
  return lines.slice(-lineCount).join('\n');
}

/**
 * Returns a loopback TCP port that was free a moment ago. Another process can take it before
 * the caller binds it, so callers retry with a new port when a bind fails.
 */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Removes folders in `parent` named `<prefix><pid>-…` whose process no longer runs. A process
 * killed by SIGKILL cannot remove its own folders, and under /dev/shm they use memory.
 */
export function removeStaleDirectories(parent: string, prefix: string): void {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) {
      continue;
    }
    const pid = Number.parseInt(entry.slice(prefix.length), 10);
    if (Number.isInteger(pid) && pid > 0 && !isProcessAlive(pid)) {
      rmSync(path.join(parent, entry), { recursive: true, force: true });
    }
  }
}
