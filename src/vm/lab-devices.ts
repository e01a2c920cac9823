/**
 * Which of our devices the lab's machine gets. One list for the worker and the Node runner.
 */
import type { PciBus } from '../virtio/bus.ts';
import type { DeviceStats } from './protocol.ts';
import { VirtioPciFunction } from '../virtio/pci/virtio-pci-function.ts';
import { VirtioRng, type RandomSource } from '../devices/rng.ts';

export interface LabDeviceOptions {
  /** A device saw the guest break the spec; it is now in DEVICE_NEEDS_RESET. */
  onDeviceError(device: string, reason: string): void;
  /**
   * BAR0 in port I/O (default) or memory space. I/O costs fewer exits per request on v86
   * (see bench/exits.ts) and lets SeaBIOS place it; memory BARs are fixed addresses.
   */
  barKind?: 'io' | 'mem';
  /** Where virtio-rng's bytes come from (default crypto.getRandomValues). */
  rngSource?: RandomSource;
}

export interface LabDevices {
  rng: VirtioPciFunction;
  /** Every plugged function, in slot order. */
  all: VirtioPciFunction[];
}

/** A snapshot of one function's counters; `exits` comes from the bus adapter. */
export function deviceStats(
  fn: VirtioPciFunction,
  exits: { reads: number; writes: number } | undefined,
): DeviceStats {
  const extra: Record<string, number> = {};
  if (fn.device instanceof VirtioRng) extra.bytesServed = fn.device.bytesServed;
  return {
    name: fn.name,
    status: fn.deviceStatus,
    ...fn.stats,
    barReads: exits?.reads ?? 0,
    barWrites: exits?.writes ?? 0,
    extra,
  };
}

export function plugLabDevices(bus: PciBus, opts: LabDeviceOptions): LabDevices {
  const plug = (fn: VirtioPciFunction) => {
    fn.connect(bus.attach(fn));
    fn.onError((reason) => opts.onDeviceError(fn.name, reason));
    return fn;
  };
  const rng = plug(new VirtioPciFunction(new VirtioRng(opts.rngSource), { barKind: opts.barKind ?? 'io' }));
  return { rng, all: [rng] };
}
