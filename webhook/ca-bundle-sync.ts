// Keeps the caBundle of the webhook's MutatingWebhookConfiguration equal to the CAs of the
// serving certificate, repairing it after drift, e.g. a `helm upgrade` that blanked it.
// Every webhook entry of the named configuration gets the bundle: the configuration belongs
// to this add-on.

import type { Logger } from '../shared/logger.ts';
import { isJsonObject, objectField, stringField } from './json-object.ts';
import { hasStatus, JSON_PATCH, type KubeRequester } from './kube-client.ts';

const CONFIG_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/';
const MISSING_LOG_INTERVAL_MS = 60_000;

export class CaBundleSync {
  readonly #client: KubeRequester;
  readonly #configName: string;
  readonly #logger: Logger;
  readonly #onRepair: () => void;
  #inPlace = false;
  #missingLoggedAt = 0;

  constructor(
    client: KubeRequester,
    configName: string,
    logger: Logger,
    onRepair: () => void = () => undefined,
  ) {
    this.#client = client;
    this.#configName = configName;
    this.#logger = logger;
    this.#onRepair = onRepair;
  }

  /** True when the last check found or left every caBundle correct. */
  get inPlace(): boolean {
    return this.#inPlace;
  }

  /**
   * Compares every webhook's caBundle with `caBundlePem` and patches the ones that differ.
   * Each patched entry is guarded by a `test` of its name, so a configuration reordered in
   * the meantime fails the patch (422) instead of being written at the wrong index.
   */
  async sync(caBundlePem: string, signal: AbortSignal): Promise<boolean> {
    const path = CONFIG_PATH + encodeURIComponent(this.#configName);
    let config: unknown;
    try {
      config = await this.#client.request('GET', path, { signal });
    } catch (error) {
      this.#inPlace = false;
      if (!hasStatus(error, 404)) throw error;
      this.#logMissing();
      return false;
    }
    const expected = Buffer.from(caBundlePem).toString('base64');
    const webhooks = isJsonObject(config) && Array.isArray(config.webhooks) ? config.webhooks : [];
    const operations: object[] = [];
    webhooks.forEach((webhook, index) => {
      const clientConfig = isJsonObject(webhook) ? objectField(webhook, 'clientConfig') : undefined;
      if (stringField(clientConfig, 'caBundle') === expected) return;
      const name = isJsonObject(webhook) ? webhook.name : undefined;
      operations.push({ op: 'test', path: `/webhooks/${index}/name`, value: name });
      operations.push({
        op: 'add',
        path: `/webhooks/${index}/clientConfig/caBundle`,
        value: expected,
      });
    });
    if (operations.length > 0) {
      await this.#client.request('PATCH', path, {
        body: operations,
        contentType: JSON_PATCH,
        signal,
      });
      this.#onRepair();
      this.#logger.info(
        { webhookConfiguration: this.#configName, webhooks: operations.length / 2 },
        'caBundle written',
      );
    }
    this.#inPlace = webhooks.length > 0;
    return this.#inPlace;
  }

  #logMissing(): void {
    const now = Date.now();
    if (now - this.#missingLoggedAt < MISSING_LOG_INTERVAL_MS) return;
    this.#missingLoggedAt = now;
    this.#logger.warn(
      { webhookConfiguration: this.#configName },
      'MutatingWebhookConfiguration not found; the caBundle is written once it exists',
    );
  }
}
