// Child processes of the demo: started with their output in a log file, stopped with a
// signal and a deadline, and all killed when the demo exits early.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { constants } from 'node:os';

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or 128 + signal number) once the process exits. */
  readonly exited: Promise<number>;
  readonly logFile: string;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number>;
}

const running = new Set<ManagedProcess>();

process.once('exit', () => {
  for (const managed of running) managed.child.kill('SIGKILL');
});

/** Starts a process whose stdout and stderr go to `logFile`. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; logFile: string; cwd?: string },
): ManagedProcess {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      running.delete(managed);
      resolve(code ?? 128 + signalNumber(signal));
    });
  });
  const managed: ManagedProcess = {
    name,
    child,
    exited,
    logFile: options.logFile,
    stop: (signal = 'SIGTERM', timeoutMs = 10_000) => stopProcess(managed, signal, timeoutMs),
  };
  running.add(managed);
  return managed;
}

function signalNumber(signal: NodeJS.Signals | null): number {
  if (signal === null) return 0;
  return constants.signals[signal];
}

async function stopProcess(
  managed: ManagedProcess,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<number> {
  if (managed.child.exitCode !== null || managed.child.signalCode !== null) return managed.exited;
  managed.child.kill(signal);
  const timer = setTimeout(() => managed.child.kill('SIGKILL'), timeoutMs);
  try {
    return await managed.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the bound port'));
      });
    });
  });
}

/**
 * Polls `check` every 200 ms until it returns true, or throws after `timeoutMs`. With a
 * `process`, throws as soon as that process exits, pointing at its log.
 */
export async function waitFor(
  description: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  process?: ManagedProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const exitCode = process?.child.exitCode ?? null;
    if (process !== undefined && exitCode !== null) {
      throw new Error(
        `${process.name} exited with code ${exitCode} while waiting for ${description}; ` +
          `see ${process.logFile}`,
      );
    }
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
}
