// The MutatingWebhookConfiguration of the webhook, with the registration defaults. It matches
// pod CREATE only, with failurePolicy Ignore so that a webhook outage never blocks pods,
// sideEffects None and a short timeout. Its objectSelector sends only JobSet pods, and its
// namespaceSelector leaves system namespaces and the webhook's own alone.

import { JOBSET_NAME_LABEL } from '../shared/annotations.ts';
import type { JsonObject } from './json-object.ts';
import { hasStatus, type KubeRequester } from './kube-client.ts';

export const DEFAULT_WEBHOOK_NAME = 'pods.trainjob-progress.opendatahub.io';
export const SYSTEM_NAMESPACES: readonly string[] = [
  'kube-system',
  'kube-public',
  'kube-node-lease',
];
/** The API server allows 1–30 s; a sidecar decision needs far less, and pods wait meanwhile. */
export const DEFAULT_TIMEOUT_SECONDS = 5;
export const MAX_TIMEOUT_SECONDS = 10;

export type ClientConfigTarget =
  { url: string } | { service: { namespace: string; name: string; port?: number; path?: string } };

export interface RegistrationOptions {
  /** Name of the MutatingWebhookConfiguration. */
  name: string;
  target: ClientConfigTarget;
  caBundlePem?: string;
  /** Namespace of the webhook itself, excluded with the system namespaces. */
  ownNamespace?: string;
  timeoutSeconds?: number;
  webhookName?: string;
  labels?: Record<string, string>;
}

/** Builds the MutatingWebhookConfiguration object. Throws RangeError for a timeout above 10 s. */
export function buildMutatingWebhookConfiguration(options: RegistrationOptions): JsonObject {
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  if (
    !Number.isInteger(timeoutSeconds) ||
    timeoutSeconds < 1 ||
    timeoutSeconds > MAX_TIMEOUT_SECONDS
  ) {
    throw new RangeError(
      `invalid timeoutSeconds ${timeoutSeconds}: expected an integer from 1 to ${MAX_TIMEOUT_SECONDS}`,
    );
  }
  const clientConfig: JsonObject =
    'url' in options.target
      ? { url: options.target.url }
      : { service: { path: '/mutate', port: 443, ...options.target.service } };
  if (options.caBundlePem !== undefined)
    clientConfig.caBundle = Buffer.from(options.caBundlePem).toString('base64');
  const excluded = [...SYSTEM_NAMESPACES];
  if (options.ownNamespace !== undefined) excluded.push(options.ownNamespace);

  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: {
      name: options.name,
      labels: options.labels ?? { 'app.kubernetes.io/name': 'trainjob-progress' },
    },
    webhooks: [
      {
        name: options.webhookName ?? DEFAULT_WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        clientConfig,
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        timeoutSeconds,
        matchPolicy: 'Equivalent',
        reinvocationPolicy: 'Never',
        objectSelector: { matchExpressions: [{ key: JOBSET_NAME_LABEL, operator: 'Exists' }] },
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded },
          ],
        },
      },
    ],
  };
}

/** Creates the configuration, or replaces an existing one of the same name. */
export async function applyMutatingWebhookConfiguration(
  client: KubeRequester,
  configuration: JsonObject,
): Promise<void> {
  const name = (configuration.metadata as { name: string }).name;
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations`;
  try {
    await client.request('POST', path, { body: configuration });
    return;
  } catch (error) {
    if (!hasStatus(error, 409)) throw error;
  }
  const existing = (await client.request(
    'GET',
    `${path}/${encodeURIComponent(name)}`,
  )) as JsonObject;
  const metadata = {
    ...(configuration.metadata as JsonObject),
    resourceVersion: (existing.metadata as JsonObject).resourceVersion,
  };
  await client.request('PUT', `${path}/${encodeURIComponent(name)}`, {
    body: { ...configuration, metadata },
  });
}
