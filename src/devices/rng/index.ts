/** virtio-rng as the lab plugs, shows and fuzzes it (see ../descriptor.ts). */
import type { DeviceDescriptor } from '../descriptor.ts';
import { rngDecoder } from './inspect.ts';
import { VirtioRng, type RandomSource } from './rng.ts';

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
  fuzzSubject: async () => (await import('./fuzz-subject.ts')).rngSubject,
};
