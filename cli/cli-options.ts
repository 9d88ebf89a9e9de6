// Options shared by `tail` and `status`: the TrainJob name and namespace, and the
// kubeconfig that reaches the API server.

import { KubeConfig } from '@kubernetes/client-node';

export const CLI_ENV = Object.freeze({
  kubeconfig: 'TRAINJOB_PROGRESS_KUBECONFIG',
  namespace: 'TRAINJOB_PROGRESS_NAMESPACE',
  aggregatorUrl: 'TRAINJOB_PROGRESS_AGGREGATOR_URL',
  aggregatorCaFile: 'TRAINJOB_PROGRESS_AGGREGATOR_CA_FILE',
});

/** A command-line mistake; the command prints it with its usage and exits with 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

/** Loads the kubeconfig file, or the default one ($KUBECONFIG, ~/.kube/config, in-cluster). */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (path === undefined || path === '') kubeConfig.loadFromDefault();
  else kubeConfig.loadFromFile(path);
  return kubeConfig;
}

/** Returns the namespace of the kubeconfig's current context, or `default`. */
export function contextNamespace(kubeConfig: KubeConfig): string {
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
}

/** Returns the single positional TrainJob name, or throws UsageError. */
export function trainJobName(positionals: readonly string[]): string {
  if (positionals.length !== 1) {
    throw new UsageError(`expected one TrainJob name, got ${positionals.length}`);
  }
  return positionals[0]!;
}

/**
 * Returns the bearer token that the kubeconfig's current user sends to the API server
 * (a static token, a token file or an exec plugin), or undefined for other kinds of user.
 */
export async function bearerTokenOf(kubeConfig: KubeConfig): Promise<string | undefined> {
  const options: { headers?: Record<string, string> } = { headers: {} };
  await kubeConfig.applyToHTTPSOptions(options);
  const header = options.headers?.Authorization ?? options.headers?.authorization;
  const match = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}
