// Access for integration tests to the control plane that root-hooks.ts starts once per run.
import type { ControlPlane } from '../control-plane/control-plane.ts';

export { kubeConfigFor, type ControlPlane } from '../control-plane/control-plane.ts';

let current: ControlPlane | undefined;

/** Returns the running control plane. Throws outside a mocha run that loads root-hooks.ts. */
export function getControlPlane(): ControlPlane {
  if (current === undefined) {
    throw new Error(
      'no control plane is running: run integration tests with mocha --config .mocharc.json, ' +
        'which requires test/integration/root-hooks.ts',
    );
  }
  return current;
}

/** Sets or clears the control plane that getControlPlane returns. For root-hooks.ts only. */
export function setControlPlane(controlPlane: ControlPlane | undefined): void {
  current = controlPlane;
}
