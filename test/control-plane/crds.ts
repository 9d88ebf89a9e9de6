// Installation of CustomResourceDefinitions from a YAML file into the control plane.
import { readFileSync } from 'node:fs';
import {
  ApiException,
  ApiextensionsV1Api,
  loadAllYaml,
  type KubeConfig,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { pollUntil } from './readiness.ts';

const ESTABLISHED_TIMEOUT_MS = 30_000;

/**
 * Creates every CustomResourceDefinition in the YAML file `crdPath` and waits until each is
 * Established. A CRD that already exists is left unchanged.
 *
 * It uses create, not a client-side apply, because a large CRD such as TrainJob's (about
 * 550 KB) exceeds the 256 KB limit of the last-applied-configuration annotation.
 */
export async function installCustomResourceDefinitions(
  kubeConfig: KubeConfig,
  crdPath: string,
): Promise<void> {
  const crds = readCustomResourceDefinitions(crdPath);
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  for (const crd of crds) {
    try {
      await api.createCustomResourceDefinition({ body: crd });
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 409)) {
        throw new Error(`failed to create CRD ${crd.metadata?.name} from ${crdPath}`, {
          cause: error,
        });
      }
    }
  }
  for (const crd of crds) {
    await waitUntilEstablished(api, crd.metadata?.name ?? '');
  }
}

function readCustomResourceDefinitions(crdPath: string): V1CustomResourceDefinition[] {
  let text: string;
  try {
    text = readFileSync(crdPath, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read the CRD file ${crdPath}. ` +
        'Set TRAINJOB_CRD_PATH to the TrainJob CRD YAML of Kubeflow Trainer.',
      { cause: error },
    );
  }
  // loadAllYaml converts the YAML field names (`x-kubernetes-list-type`) to the property names
  // of client-node's models (`xKubernetesListType`), which createCustomResourceDefinition
  // serializes. A plain parsed object would lose those fields on the way to the server.
  // NOTE: fields that client-node's models do not define are dropped as well, so a CRD newer
  // than the Kubernetes API of client-node may arrive incomplete.
  let objects: unknown[];
  try {
    objects = loadAllYaml(text);
  } catch (error) {
    throw new Error(`invalid YAML in ${crdPath}`, { cause: error });
  }
  const crds = objects.filter(
    (object): object is V1CustomResourceDefinition =>
      (object as V1CustomResourceDefinition | null)?.kind === 'CustomResourceDefinition',
  );
  if (crds.length === 0) {
    throw new Error(`${crdPath} contains no CustomResourceDefinition`);
  }
  return crds;
}

async function waitUntilEstablished(api: ApiextensionsV1Api, name: string): Promise<void> {
  await pollUntil(`CRD ${name} to become Established`, ESTABLISHED_TIMEOUT_MS, [], async () => {
    const crd = await api.readCustomResourceDefinition({ name });
    const established = crd.status?.conditions?.find(
      (condition) => condition.type === 'Established',
    );
    return established?.status === 'True'
      ? true
      : `Established condition is ${established?.status ?? 'missing'}`;
  });
}
