/** virtio-console as the lab plugs, shows and fuzzes it (see ../descriptor.ts). */
import type { DeviceDescriptor } from '../descriptor.ts';
import { CONSOLE_KICK_BYTES, VirtioConsole, type VirtioConsoleOptions } from './console.ts';
import { consoleConfigFields, consoleDecoder } from './inspect.ts';
import { ConsoleFeature, consoleQueueNames } from './spec.ts';
import { consoleState } from './state.ts';

/** Named ports after the console (e.g. run()'s "org.virtio-lab.run"). Absent: no virtio-console. */
export type ConsoleLabOptions = Pick<VirtioConsoleOptions, 'ports'>;

export const consoleDevice: DeviceDescriptor<'console', ConsoleLabOptions, VirtioConsole> = {
  kind: 'console',
  name: 'virtio-console',
  // The console and up to three named ports; the lab has one (run()'s).
  queueNames: consoleQueueNames(4),
  // Named ports' output is served at the end of the emulator's slice (a stream of writes costs
  // one exit per batch); hvc0's never: its put_chars spins in the guest until the buffer is used.
  create: (options, { defer }) => options && new VirtioConsole({ ...options, defer }),
  owns: (device): device is VirtioConsole => device instanceof VirtioConsole,
  featureBits: ConsoleFeature,
  config: consoleConfigFields,
  decoder: consoleDecoder,
  stats: (device) => device.stats.toRecord(),
  // A full transmitq read up to MAX_TX_BUFFER per chain (the worst queue; see console.ts).
  kickBudget: { bytes: CONSOLE_KICK_BYTES },
  state: consoleState,
  fuzzSubject: async () => (await import('./fuzz-subject.ts')).consoleSubject,
  fuzzProperties: async () => (await import('./properties.ts')).consoleProperties(),
};
