/** virtio-rng as the lab plugs, shows and fuzzes it (see ../descriptor.ts). */
import type { DeviceDescriptor } from '../descriptor.ts';
import { rngDecoder } from './inspect.ts';
import { RNG_MAX_BYTES_PER_REQUEST, RNG_QUEUE_SIZE, VirtioRng, type RandomSource } from './rng.ts';
import { rngState } from './state.ts';

export interface RngLabOptions {
  /** Where the bytes come from (default crypto.getRandomValues). */
  source?: RandomSource;
}

export const rngDevice: DeviceDescriptor<'rng', RngLabOptions, VirtioRng> = {
  kind: 'rng',
  name: 'virtio-rng',
  queueNames: ['requestq'],
  // Always there: tooling expects an rng at virtio0.
  create: (options) => new VirtioRng(options?.source),
  owns: (device): device is VirtioRng => device instanceof VirtioRng,
  config: () => [],
  decoder: rngDecoder,
  stats: (device) => ({ bytesServed: device.bytesServed }),
  // A full queue of chains, each filled up to the cap: the bytes and v86's dirty notice for them.
  kickBudget: { bytes: 2 * RNG_QUEUE_SIZE * RNG_MAX_BYTES_PER_REQUEST },
  state: rngState,
  fuzzSubject: async () => (await import('./fuzz-subject.ts')).rngSubject,
  fuzzProperties: async () => (await import('./properties.ts')).rngProperties(),
};
