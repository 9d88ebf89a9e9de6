// Mocha root hooks that start one local control plane for the whole test run and stop it at
// the end, also when tests fail.
import { startControlPlane, type ControlPlane } from '../control-plane/control-plane.ts';
import { setControlPlane } from './cluster.ts';

// A first run builds kube-apiserver from source, which can take 10-20 minutes.
const START_TIMEOUT_MS = 30 * 60 * 1000;
const STOP_TIMEOUT_MS = 60 * 1000;

let controlPlane: ControlPlane | undefined;

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(START_TIMEOUT_MS);
    controlPlane = await startControlPlane();
    setControlPlane(controlPlane);
  },

  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(STOP_TIMEOUT_MS);
    setControlPlane(undefined);
    // controlPlane is unset when beforeAll failed, and startControlPlane cleans up on failure.
    await controlPlane?.stop();
    controlPlane = undefined;
  },
};
