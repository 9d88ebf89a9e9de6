// The API server's Kubernetes version, read once at start-up to choose the sidecar mode.

import { isJsonObject } from './json-object.ts';
import type { KubeRequester } from './kube-client.ts';

/** Native sidecars (init containers with restartPolicy Always) are on by default from 1.29. */
export const NATIVE_SIDECAR_MIN_VERSION = { major: 1, minor: 29 } as const;

export interface ServerVersion {
  major: number;
  minor: number;
  gitVersion: string;
}

/**
 * Parses the body of GET /version. Managed clusters report minors such as `29+`, so the
 * digits are read up to the first other character; `gitVersion` (`v1.29.3-gke.1`) is the
 * fallback. Returns undefined when neither gives a version.
 */
export function parseServerVersion(body: unknown): ServerVersion | undefined {
  if (!isJsonObject(body)) return undefined;
  const gitVersion = typeof body.gitVersion === 'string' ? body.gitVersion : '';
  let major = leadingNumber(body.major);
  let minor = leadingNumber(body.minor);
  if (major === undefined || minor === undefined) {
    const match = /^v?(\d+)\.(\d+)/.exec(gitVersion);
    if (match === null) return undefined;
    major = Number(match[1]);
    minor = Number(match[2]);
  }
  return { major, minor, gitVersion };
}

export function supportsNativeSidecars(version: ServerVersion): boolean {
  const { major, minor } = NATIVE_SIDECAR_MIN_VERSION;
  return version.major > major || (version.major === major && version.minor >= minor);
}

/** Reads the server's version. Throws when the request fails or the response has no version. */
export async function readServerVersion(
  client: KubeRequester,
  signal: AbortSignal,
): Promise<ServerVersion> {
  const body = await client.request('GET', '/version', { signal });
  const version = parseServerVersion(body);
  if (version === undefined)
    throw new Error(`GET /version returned no version: ${JSON.stringify(body).slice(0, 200)}`);
  return version;
}

function leadingNumber(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\d+/.exec(value);
  return match === null ? undefined : Number(match[0]);
}
