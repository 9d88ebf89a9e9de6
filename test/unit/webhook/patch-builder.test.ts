import { expect } from 'chai';
import { INJECTED_ANNOTATION, SIDECAR_CONTAINER_NAME } from '../../../shared/annotations.ts';
import { SIDECAR_ENV, TOKEN_MOUNT_PATH, TOKEN_VOLUME_NAME } from '../../../shared/sidecar-env.ts';
import type { JsonObject } from '../../../webhook/json-object.ts';
import {
  buildInjectionPatch,
  ContainerNameConflictError,
  escapePointerSegment,
  type SidecarInjection,
} from '../../../webhook/patch-builder.ts';
import { resolvePodSettings } from '../../../webhook/pod-settings.ts';
import { buildSidecarContainer, buildTokenVolume } from '../../../webhook/sidecar-container.ts';
import { DEFAULTS, jobSetPod, SIDECAR_OPTIONS } from './fixtures.ts';

const INJECTION: SidecarInjection = {
  container: buildSidecarContainer(resolvePodSettings({}, DEFAULTS).settings, SIDECAR_OPTIONS),
  volume: buildTokenVolume(SIDECAR_OPTIONS.tokenAudience),
  containerList: 'initContainers',
  annotation: { key: INJECTED_ANNOTATION, value: 'native' },
};

// Returns a pod whose containers list contains a second container named like the sidecar.
function podWithNamedContainer(container: JsonObject, annotated = false): JsonObject {
  const pod = jobSetPod() as { metadata: JsonObject; spec: { containers: JsonObject[] } };
  pod.spec.containers.push({ name: SIDECAR_CONTAINER_NAME, image: 'user/tool:1', ...container });
  if (annotated) (pod.metadata.annotations as JsonObject)[INJECTED_ANNOTATION] = 'native';
  return pod;
}

describe('webhook/patch-builder', () => {
  // The injected annotation key contains `/` but no `~`, so only these cases catch a missing
  // `~` escape or the wrong order of the two replacements.
  for (const [key, escaped] of [
    ['a~/b', 'a~0~1b'],
    ['~1', '~01'],
    ['example.com/a~b/c', 'example.com~1a~0b~1c'],
  ]) {
    it(`escapes pointer segment ${key}`, () => {
      expect(escapePointerSegment(key!)).to.equal(escaped);
    });
  }

  it('rejects a user container named like the sidecar', () => {
    const pod = podWithNamedContainer({ env: [{ name: 'LOG_LEVEL', value: 'debug' }] });
    expect(() => buildInjectionPatch(pod, INJECTION)).to.throw(
      ContainerNameConflictError,
      'container "trainjob-progress" at /spec/containers/1 was not added',
    );
  });

  it('rejects the same name in initContainers', () => {
    const pod = jobSetPod() as { spec: JsonObject };
    pod.spec.initContainers = [{ name: SIDECAR_CONTAINER_NAME, image: 'user/tool:1' }];
    let thrown: unknown;
    try {
      buildInjectionPatch(pod, INJECTION);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(ContainerNameConflictError);
    expect((thrown as ContainerNameConflictError).path).to.equal('/spec/initContainers/0');
  });

  const markers: [string, JsonObject, boolean][] = [
    ['the injected annotation', {}, true],
    [
      'the aggregator URL env var',
      { env: [{ name: SIDECAR_ENV.aggregatorUrl, value: 'ws://x' }] },
      false,
    ],
    [
      'the token mount by name',
      { volumeMounts: [{ name: TOKEN_VOLUME_NAME, mountPath: '/t' }] },
      false,
    ],
    [
      'the token mount by path',
      { volumeMounts: [{ name: 't', mountPath: TOKEN_MOUNT_PATH }] },
      false,
    ],
  ];
  for (const [marker, container, annotated] of markers) {
    it(`completes a container marked by ${marker}`, () => {
      const pod = podWithNamedContainer(container, annotated);
      const operations = buildInjectionPatch(pod, INJECTION);
      const paths = operations.map((operation) => operation.path);
      expect(paths.some((path) => path.startsWith('/spec/containers/1/'))).to.equal(true);
      expect(paths).to.not.include('/spec/initContainers');
    });
  }
});
