// The sidecar's version as sent in `hello`: the package version, read at run time because
// this module runs both from source (sidecar/) and from the build (dist/sidecar/).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const PACKAGE_NAME = 'trainjob-progress';

/** Reads the version from the package's package.json, or returns `unknown` if it is missing. */
export function readSidecarVersion(): string {
  for (const relative of ['..', '../..']) {
    try {
      const text = readFileSync(join(import.meta.dirname, relative, 'package.json'), 'utf8');
      const manifest = JSON.parse(text) as { name?: unknown; version?: unknown };
      if (manifest.name === PACKAGE_NAME && typeof manifest.version === 'string') {
        return manifest.version;
      }
    } catch {
      // Not at this level: try the next one up.
    }
  }
  return 'unknown';
}
