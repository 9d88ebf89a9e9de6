import path from 'node:path';
import { expect } from 'chai';
import { runHelm } from '../../helm.ts';
import { CHART_DIR, CI_DIR, ciValuesFiles, RELEASE_NAMESPACE } from './chart-render.ts';

// The first test may build helm from its Go module on a machine without the cache.
const HELM_BUILD_TIMEOUT_MS = 15 * 60_000;

async function lint(extraArgs: string[]): Promise<string> {
  const result = await runHelm([
    'lint',
    '--strict',
    CHART_DIR,
    '--namespace',
    RELEASE_NAMESPACE,
    ...extraArgs,
  ]);
  expect(result.exitCode, result.stdout + result.stderr).to.equal(0);
  return result.stdout;
}

describe('chart lint', function () {
  this.timeout(HELM_BUILD_TIMEOUT_MS);

  it('passes with default values', async function () {
    const output = await lint([]);
    expect(output).to.include('0 chart(s) failed');
    expect(output).not.to.match(/\[(WARNING|ERROR)\]/);
  });

  for (const file of ciValuesFiles()) {
    it(`passes with ${file}`, async function () {
      const output = await lint(['--values', path.join(CI_DIR, file)]);
      expect(output).not.to.match(/\[(WARNING|ERROR)\]/);
    });
  }

  it('finds a values file per feature', function () {
    expect(ciValuesFiles()).to.include.members([
      'default-values.yaml',
      'cert-manager-values.yaml',
      'provided-certificates-values.yaml',
      'dev-url-values.yaml',
      'single-replica-values.yaml',
      'service-monitor-values.yaml',
      'status-mirror-values.yaml',
      'container-sidecar-values.yaml',
      'all-nodes-values.yaml',
    ]);
  });
});
