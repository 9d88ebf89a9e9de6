// Paths and versions of the binaries that build-binaries.sh builds into its cache.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { killGroupIfRunning, registerExitCleanup } from './processes.ts';

const SCRIPT_PATH = path.join(import.meta.dirname, 'build-binaries.sh');
const GO_MODULES_DIR = path.join(import.meta.dirname, 'go');

/** The Go module whose version names each tool's binary, pinned in `go/<tool>/go.mod`. */
const VERSION_MODULES = {
  'kube-apiserver': 'k8s.io/kubernetes',
  etcd: 'go.etcd.io/etcd/server/v3',
  helm: 'helm.sh/helm/v4',
} as const;

export type Tool = keyof typeof VERSION_MODULES;

/** Cached binaries of the requested tools. */
export interface Binaries<T extends Tool = Tool> {
  binDir: string;
  paths: Record<T, string>;
  versions: Record<T, string>;
}

/**
 * Runs build-binaries.sh for `tools`, which builds any tool missing from the cache and writes
 * its progress to this process's stderr, and returns the binaries' paths and versions.
 */
export async function buildBinaries<T extends Tool>(tools: T[]): Promise<Binaries<T>> {
  const binDir = await runBuildScript(tools);
  const paths = {} as Record<T, string>;
  const versions = {} as Record<T, string>;
  for (const tool of tools) {
    versions[tool] = readPinnedVersion(tool);
    paths[tool] = path.join(binDir, `${tool}-${versions[tool]}`);
    if (!existsSync(paths[tool])) {
      throw new Error(`build-binaries.sh finished but ${paths[tool]} is missing`);
    }
  }
  return { binDir, paths, versions };
}

/** Returns the version of the tool's module that `go/<tool>/go.mod` requires. */
export function readPinnedVersion(tool: Tool): string {
  const goModPath = path.join(GO_MODULES_DIR, tool, 'go.mod');
  const modulePath = VERSION_MODULES[tool];
  const escaped = modulePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(
    readFileSync(goModPath, 'utf8'),
  );
  if (match?.[1] === undefined) {
    throw new Error(`${goModPath} has no requirement on ${modulePath}`);
  }
  return match[1];
}

// Runs the script in its own process group so that an exit of this process can kill the
// whole build, including `go build` and its compilers.
async function runBuildScript(tools: Tool[]): Promise<string> {
  const child = spawn('bash', [SCRIPT_PATH, ...tools], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const unregister = registerExitCleanup(() => killGroupIfRunning(child.pid));
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));

  try {
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (exitCode !== 0) {
      throw new Error(
        `${SCRIPT_PATH} ${tools.join(' ')} failed with exit code ${exitCode}. Its output is above`,
      );
    }
  } finally {
    unregister();
  }

  const binDir = stdout.trimEnd().split('\n').at(-1);
  if (binDir === undefined || binDir === '') {
    throw new Error(`${SCRIPT_PATH} printed no binary folder on its last line`);
  }
  return binDir;
}
