// An in-memory stand-in for the few API server endpoints that the certificate code calls,
// with resourceVersion checks, so conflicts between replicas can be produced on demand.

import {
  KubeApiError,
  type KubeRequestOptions,
  type KubeRequester,
} from '../../../webhook/kube-client.ts';

export class FakeKube implements KubeRequester {
  readonly objects = new Map<string, Record<string, unknown>>();
  readonly calls: {
    method: string;
    path: string;
    body?: unknown;
    contentType?: string | undefined;
  }[] = [];
  #version = 0;
  /** Runs before each request; tests use it to interleave another writer. */
  beforeRequest: ((method: string, path: string) => Promise<void> | void) | undefined;

  async request(method: string, path: string, options: KubeRequestOptions = {}): Promise<unknown> {
    this.calls.push({ method, path, body: options.body, contentType: options.contentType });
    await this.beforeRequest?.(method, path);
    return this.handle(method, path, options.body);
  }

  handle(method: string, path: string, body: unknown): unknown {
    if (method === 'GET') {
      const object = this.objects.get(path);
      if (object === undefined) throw new KubeApiError(method, path, 404, { reason: 'NotFound' });
      return structuredClone(object);
    }
    if (method === 'POST') {
      const object = structuredClone(body) as {
        metadata: { name: string; resourceVersion?: string };
      };
      const key = `${path}/${object.metadata.name}`;
      if (this.objects.has(key))
        throw new KubeApiError(method, path, 409, { reason: 'AlreadyExists' });
      object.metadata.resourceVersion = String(++this.#version);
      this.objects.set(key, object);
      return structuredClone(object);
    }
    if (method === 'PUT') {
      const object = structuredClone(body) as { metadata: { resourceVersion?: string } };
      const current = this.objects.get(path) as
        { metadata: { resourceVersion?: string } } | undefined;
      if (current === undefined) throw new KubeApiError(method, path, 404, { reason: 'NotFound' });
      if (current.metadata.resourceVersion !== object.metadata.resourceVersion) {
        throw new KubeApiError(method, path, 409, { reason: 'Conflict' });
      }
      object.metadata.resourceVersion = String(++this.#version);
      this.objects.set(path, object);
      return structuredClone(object);
    }
    if (method === 'PATCH') {
      const current = this.objects.get(path);
      if (current === undefined) throw new KubeApiError(method, path, 404, { reason: 'NotFound' });
      for (const operation of body as { op: string; path: string; value: unknown }[])
        applyOperation(current, operation);
      return structuredClone(current);
    }
    throw new Error(`FakeKube: unexpected ${method} ${path}`);
  }
}

// Supports the `test` and `add` operations that CaBundleSync sends.
function applyOperation(
  document: Record<string, unknown>,
  operation: { op: string; path: string; value: unknown },
): void {
  const segments = operation.path.split('/').slice(1);
  const last = segments.pop()!;
  let parent: Record<string, unknown> = document;
  for (const segment of segments) parent = parent[segment] as Record<string, unknown>;
  if (operation.op === 'test') {
    if (parent[last] !== operation.value)
      throw new KubeApiError('PATCH', operation.path, 422, { reason: 'Invalid' });
  } else if (operation.op === 'add') {
    parent[last] = operation.value;
  } else {
    throw new Error(`FakeKube: unsupported patch operation ${operation.op}`);
  }
}
