// A small JSON client for the Kubernetes API on top of client-node's KubeConfig, so objects
// stay raw JSON (no typed round-trip) and every request takes an AbortSignal.

import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { isJsonObject } from './json-object.ts';

export const JSON_PATCH = 'application/json-patch+json';
export const MERGE_PATCH = 'application/merge-patch+json';

/** A non-2xx response of the API server. Callers branch on `status`, never on the message. */
export class KubeApiError extends Error {
  readonly code = 'ERR_KUBE_API';
  readonly status: number;
  /** `reason` of the returned Status object, such as `AlreadyExists` or `Conflict`. */
  readonly reason: string | undefined;

  constructor(method: string, path: string, status: number, body: unknown) {
    const record = isJsonObject(body) ? body : {};
    const detail = typeof record.message === 'string' ? record.message : `HTTP ${status}`;
    super(`${method} ${path} failed with HTTP ${status}: ${detail}`);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = typeof record.reason === 'string' ? record.reason : undefined;
  }
}

export interface KubeRequestOptions {
  body?: unknown;
  /** Content type of `body`; JSON unless a patch type is given. */
  contentType?: string;
  signal?: AbortSignal;
}

/** The subset of KubeClient that other modules use, so tests can pass a fake. */
export interface KubeRequester {
  request(method: string, path: string, options?: KubeRequestOptions): Promise<unknown>;
}

export class KubeClient implements KubeRequester {
  readonly kubeConfig: KubeConfig;
  readonly serverUrl: string;

  constructor(kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    this.kubeConfig = kubeConfig;
    this.serverUrl = cluster.server.replace(/\/+$/, '');
  }

  /** Sends a request and returns the parsed JSON body. Throws KubeApiError for non-2xx. */
  async request(method: string, path: string, options: KubeRequestOptions = {}): Promise<unknown> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const requestOptions: https.RequestOptions = { method, headers };
    if (options.signal !== undefined) requestOptions.signal = options.signal;
    await this.kubeConfig.applyToHTTPSOptions(requestOptions);
    const { status, text } = await send(`${this.serverUrl}${path}`, requestOptions, payload);
    const body = parseJson(text);
    if (status < 200 || status > 299) throw new KubeApiError(method, path, status, body);
    return body;
  }
}

function send(
  url: string,
  options: https.RequestOptions,
  payload: string | undefined,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(payload);
  });
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

/** Returns whether an error is a KubeApiError with the given HTTP status. */
export function hasStatus(error: unknown, status: number): boolean {
  return error instanceof KubeApiError && error.status === status;
}
