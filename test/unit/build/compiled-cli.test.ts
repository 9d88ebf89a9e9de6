import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { expect } from 'chai';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
const TSC = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const SUBCOMMANDS = ['webhook', 'sidecar', 'aggregator', 'tail', 'status', 'demo'];

async function listFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

// The container image runs the compiled JavaScript with plain `node`, so the build must
// produce a CLI that starts without TypeScript type stripping.
describe('compiled CLI', function () {
  this.timeout(180_000);
  let outDir: string;

  before(async () => {
    outDir = await mkdtemp(path.join(tmpdir(), 'trainjob-progress-build-'));
    await run(process.execPath, [TSC, '-p', 'tsconfig.build.json', '--outDir', outDir], {
      cwd: REPO_ROOT,
    });
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(outDir, 'node_modules'));
    await copyFile(path.join(REPO_ROOT, 'package.json'), path.join(outDir, 'package.json'));
  });

  after(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  it('emits no TypeScript imports', async () => {
    const files = (await listFiles(outDir)).filter(
      (file) => file.endsWith('.js') && !file.includes(`${path.sep}node_modules${path.sep}`),
    );
    expect(files).to.not.be.empty;
    for (const file of files) {
      const source = await readFile(file, 'utf8');
      expect(source, file).to.not.match(/from ['"][^'"]+\.ts['"]/);
      expect(source, file).to.not.match(/import\(['"][^'"]+\.ts['"]\)/);
    }
  });

  for (const subcommand of SUBCOMMANDS) {
    it(`prints ${subcommand} help without type stripping`, async () => {
      const { stdout } = await run(
        process.execPath,
        [
          '--no-experimental-strip-types',
          path.join(outDir, 'cli', 'main.js'),
          subcommand,
          '--help',
        ],
        { cwd: outDir, env: { PATH: process.env.PATH } },
      );
      expect(stdout).to.include(`trainjob-progress ${subcommand}`);
    });
  }
});
