// Polling helpers that wait for the control plane's processes to serve requests.
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ManagedProcess, ProcessExit } from './processes.ts';

const POLL_INTERVAL_MS = 200;
const REQUEST_TIMEOUT_MS = 2000;
const LOG_TAIL_LINES = 30;

/** Error of a process that exited while a caller waited for it. */
export class ProcessExitedError extends Error {
  /** `EADDRINUSE` when the log shows that a listen port was taken, `PROCESS_EXITED` otherwise. */
  readonly code: 'EADDRINUSE' | 'PROCESS_EXITED';

  constructor(managed: ManagedProcess, exit: ProcessExit, waitedFor: string) {
    const tail = managed.logTail(LOG_TAIL_LINES);
    const status = exit.signal === null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
    super(
      `${managed.name} exited (${status}) while waiting for ${waitedFor}. ` +
        `Last lines of ${managed.logPath}:\n${tail}`,
    );
    this.name = 'ProcessExitedError';
    this.code = tail.includes('address already in use') ? 'EADDRINUSE' : 'PROCESS_EXITED';
  }
}

/**
 * Calls `probe` every 200 ms until it returns true. A string return or a thrown error means
 * "not ready yet" and becomes the reason in the timeout error. Throws ProcessExitedError as
 * soon as one of `watched` exits.
 */
export async function pollUntil(
  description: string,
  timeoutMs: number,
  watched: ManagedProcess[],
  probe: () => Promise<true | string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let reason: string;
  for (;;) {
    throwIfExited(watched, description);
    try {
      const result = await probe();
      if (result === true) {
        return;
      }
      reason = result;
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
    throwIfExited(watched, description);

    if (Date.now() >= deadline) {
      const logs = watched.map(
        (managed) => `Last lines of ${managed.logPath}:\n${managed.logTail(LOG_TAIL_LINES)}`,
      );
      const summary = `timed out after ${timeoutMs / 1000} s waiting for ${description}`;
      throw new Error(`${summary}. Last result: ${reason}\n${logs.join('\n')}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

function throwIfExited(watched: ManagedProcess[], description: string): void {
  for (const managed of watched) {
    const exit = managed.exitStatus();
    if (exit !== undefined) {
      throw new ProcessExitedError(managed, exit, description);
    }
  }
}

/** TLS settings for `httpsGet`: the CA that verifies the server, and a client certificate. */
export interface HttpsGetTls {
  ca: string;
  cert?: string;
  key?: string;
}

/** Sends a GET request and returns the status code and body. */
export function httpsGet(url: string, tls: HttpsGetTls): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      url,
      { ...tls, agent: false, timeout: REQUEST_TIMEOUT_MS },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => {
      request.destroy(new Error(`GET ${url} timed out after ${REQUEST_TIMEOUT_MS} ms`));
    });
    request.on('error', reject);
  });
}
