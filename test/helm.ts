// The helm binary for tests: built once per machine from its pinned Go module by
// build-binaries.sh, and run without a shell.
import { execFile } from 'node:child_process';
import { buildBinaries } from './control-plane/binaries.ts';

/** Output of one helm run. A non-zero exit code is returned, not thrown. */
export interface HelmResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

let helmPath: Promise<string> | undefined;

/**
 * Returns the path of the pinned helm binary, building it first when the cache lacks it
 * (minutes on a cold cache, instant afterwards). The lookup runs once per process.
 */
export function helmBinary(): Promise<string> {
  helmPath ??= buildBinaries(['helm']).then((binaries) => binaries.paths.helm);
  return helmPath;
}

/** Runs helm with `args` and returns its exit code and output. */
export async function runHelm(args: string[]): Promise<HelmResult> {
  const binary = await helmBinary();
  return new Promise((resolve, reject) => {
    execFile(binary, args, { maxBuffer: MAX_OUTPUT_BYTES }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(new Error(`failed to run ${binary}: ${error.message}`, { cause: error }));
        return;
      }
      resolve({ exitCode: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

/** Runs helm and returns its stdout, or throws with its stderr when it exits non-zero. */
export async function runHelmOrThrow(args: string[]): Promise<string> {
  const result = await runHelm(args);
  if (result.exitCode !== 0) {
    throw new Error(
      `helm ${args.join(' ')} exited with ${result.exitCode}: ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}
