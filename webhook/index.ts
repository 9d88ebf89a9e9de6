// The webhook's programmatic interface, for the demo and tests.

export { startWebhook, type RunningWebhook, type StartWebhookOptions } from './start-webhook.ts';
export {
  buildMutatingWebhookConfiguration,
  applyMutatingWebhookConfiguration,
  type RegistrationOptions,
} from './registration.ts';
