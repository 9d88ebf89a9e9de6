import { expect } from 'chai';
import { SIDECAR_ENV } from '../../../shared/sidecar-env.ts';
import { resolvePodSettings } from '../../../webhook/pod-settings.ts';
import {
  buildSidecarContainer,
  buildTokenVolume,
  heapLimitMiB,
} from '../../../webhook/sidecar-container.ts';
import { DEFAULTS, SIDECAR_OPTIONS } from './fixtures.ts';

describe('webhook/sidecar-container', () => {
  const { settings } = resolvePodSettings({}, DEFAULTS);

  it('sets a complete restricted securityContext', () => {
    const container = buildSidecarContainer(settings, SIDECAR_OPTIONS);
    expect(container.securityContext).to.deep.equal({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('runs the sidecar subcommand without ports or probes', () => {
    const container = buildSidecarContainer(settings, SIDECAR_OPTIONS);
    expect(container.args).to.deep.equal(['sidecar']);
    for (const field of ['ports', 'livenessProbe', 'readinessProbe', 'startupProbe', 'command']) {
      expect(container).to.not.have.property(field);
    }
  });

  it('is a native sidecar in native mode', () => {
    expect(buildSidecarContainer(settings, SIDECAR_OPTIONS).restartPolicy).to.equal('Always');
  });

  it('has no restartPolicy in container mode', () => {
    const container = buildSidecarContainer(
      { ...settings, sidecarMode: 'container' },
      SIDECAR_OPTIONS,
    );
    expect(container).to.not.have.property('restartPolicy');
  });

  it('gives every env var a non-empty value or a field', () => {
    const env = buildSidecarContainer(settings, SIDECAR_OPTIONS).env as {
      name: string;
      value?: string;
      valueFrom?: unknown;
    }[];
    for (const variable of env) {
      expect(variable.name).to.not.equal('');
      if (variable.value === undefined)
        expect(variable.valueFrom, variable.name).to.be.an('object');
      else expect(variable.value, variable.name).to.not.equal('');
    }
    const names = env.map((variable) => variable.name);
    for (const name of Object.values(SIDECAR_ENV).filter(
      (n) => n !== SIDECAR_ENV.aggregatorCaFile,
    )) {
      expect(names).to.include(name);
    }
  });

  it('reads the TrainJob name from the pod label', () => {
    const env = buildSidecarContainer(settings, SIDECAR_OPTIONS).env as {
      name: string;
      valueFrom?: { fieldRef: { fieldPath: string } };
    }[];
    const trainJob = env.find((variable) => variable.name === SIDECAR_ENV.trainJobName);
    expect(trainJob?.valueFrom?.fieldRef.fieldPath).to.equal(
      "metadata.labels['jobset.sigs.k8s.io/jobset-name']",
    );
  });

  it('projects a short-lived token for the audience', () => {
    expect(buildTokenVolume('aud')).to.deep.equal({
      name: 'trainjob-progress-token',
      projected: {
        sources: [
          { serviceAccountToken: { audience: 'aud', expirationSeconds: 600, path: 'token' } },
        ],
      },
    });
  });

  it('sizes the heap from the memory limit', () => {
    expect(heapLimitMiB('64Mi')).to.equal(38);
    expect(heapLimitMiB('1Gi')).to.equal(614);
    expect(heapLimitMiB('20Mi')).to.equal(16);
  });
});
