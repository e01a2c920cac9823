/**
 * virtio-rng's part of a VM snapshot (see virtio/state/device-state.ts): nothing. It serves
 * every chain inside the kick, so it never holds one and never has work pending, and it has
 * no config space; the transport's part (status, the queue) is all a restore needs. The
 * byte counter restarts from zero. An empty object, so a file says the rng was saved.
 */
import type { DeviceStateHooks } from '../../virtio/state/device-state.ts';
import type { VirtioRng } from './rng.ts';

export const rngState: DeviceStateHooks<VirtioRng> = {
  busy: () => undefined,
  quiesce: () => {},
  save: () => ({}),
  restore(_rng, state) {
    state.requireObject();
    return () => {};
  },
};
