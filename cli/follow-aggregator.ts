// Follows one TrainJob through the aggregator's viewer WebSocket, which sends every
// sample as it arrives instead of the throttled annotation. Reconnects with capped
// exponential backoff, and gives up on 401 or 403.

import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { backoffDelayMs } from '../shared/backoff.ts';
import { VIEWER_PROTOCOL } from '../shared/bearer-token.ts';
import {
  CLOSE_CODES,
  WATCH_PATH,
  type JobProgress,
  type ViewerMessage,
} from '../shared/stream-protocol.ts';
import { isTerminalPhase } from '../shared/trainjob.ts';
import type { FollowCallbacks, FollowEnd } from './follow-api-server.ts';

const RETRY_POLICY = { initialMs: 1000, maxMs: 30_000 };
/** The aggregator pings every 15 s by default; silence for longer means a dead connection. */
const SILENCE_LIMIT_MS = 45_000;

export interface AggregatorFollowOptions {
  aggregatorUrl: string;
  token: string | undefined;
  caFile: string | undefined;
  namespace: string;
  name: string;
  finalWaitMs: number;
}

/** Turns `http(s)://host[:port][/…]` or `ws(s)://…` into the viewer WebSocket URL. */
export function watchUrl(aggregatorUrl: string, namespace: string, name: string): string {
  const url = new URL(aggregatorUrl);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new Error(
      `invalid aggregator URL ${JSON.stringify(aggregatorUrl)}: expected http(s):// or ws(s)://`,
    );
  }
  url.pathname = WATCH_PATH;
  url.search = new URLSearchParams({ namespace, name }).toString();
  return url.toString();
}

export function followAggregator(
  options: AggregatorFollowOptions,
  callbacks: FollowCallbacks,
): Promise<FollowEnd> {
  const url = watchUrl(options.aggregatorUrl, options.namespace, options.name);
  const ca = options.caFile === undefined ? undefined : readFileSync(options.caFile);
  return new Promise((resolve) => {
    let attempt = 0;
    let ended = false;
    let finalTimer: NodeJS.Timeout | undefined;
    let latest: JobProgress | undefined;
    const finish = (end: FollowEnd, socket?: WebSocket): void => {
      if (ended) return;
      ended = true;
      clearTimeout(finalTimer);
      socket?.close();
      resolve(end);
    };
    const onJob = (job: JobProgress, socket: WebSocket): void => {
      latest = job;
      callbacks.onProgress(job);
      if (!isTerminalPhase(job.phase)) return;
      if (job.final) finish({ kind: 'ended', progress: job }, socket);
      else
        finalTimer ??= setTimeout(
          () => finish({ kind: 'ended', progress: latest! }, socket),
          options.finalWaitMs,
        );
    };

    const connect = (): void => {
      const headers: Record<string, string> =
        options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` };
      const socket = new WebSocket(url, [VIEWER_PROTOCOL], {
        headers,
        perMessageDeflate: false,
        ...(ca === undefined ? {} : { ca }),
      });
      let silence: NodeJS.Timeout | undefined;
      const alive = (): void => {
        clearTimeout(silence);
        silence = setTimeout(() => socket.terminate(), SILENCE_LIMIT_MS);
      };
      socket.on('open', () => {
        attempt = 0;
        alive();
      });
      socket.on('ping', alive);
      socket.on('message', (data) => {
        alive();
        let message: ViewerMessage;
        try {
          message = JSON.parse(rawText(data)) as ViewerMessage;
        } catch {
          return;
        }
        if (message.type === 'snapshot' && message.jobs[0] !== undefined)
          onJob(message.jobs[0], socket);
        else if (message.type === 'update') onJob(message.job, socket);
        else if (message.type === 'removed') finish({ kind: 'deleted' }, socket);
      });
      socket.on('unexpected-response', (_request, response) => {
        const status = response.statusCode ?? 0;
        response.resume();
        if (status === 401 || status === 403) {
          finish({ kind: 'error', message: rejectionMessage(status, options.token) });
        }
        // Ends the handshake; the close handler reconnects unless the follow has finished.
        socket.terminate();
      });
      socket.on('error', () => undefined);
      socket.on('close', (code, reason) => {
        clearTimeout(silence);
        if (ended) return;
        if (code === CLOSE_CODES.unauthenticated || code === CLOSE_CODES.forbidden) {
          finish({
            kind: 'error',
            message: `the aggregator closed the stream: ${reason.toString()}`,
          });
          return;
        }
        setTimeout(connect, backoffDelayMs(++attempt, RETRY_POLICY));
      });
    };
    connect();
  });
}

function rejectionMessage(status: number, token: string | undefined): string {
  const message = `the aggregator rejected the request with HTTP ${status}`;
  if (status !== 401 || token !== undefined) return message;
  return (
    `${message}: the kubeconfig user has no bearer token, such as a user with a client ` +
    'certificate, and the aggregator authenticates viewers by bearer token only. Use a ' +
    'kubeconfig user with a token, or leave out --aggregator-url to follow the job through ' +
    'the API server'
  );
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}
