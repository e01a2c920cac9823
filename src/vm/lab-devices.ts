/**
 * Which of our devices the lab's machine gets: every registered device (src/devices/registry.ts)
 * whose options are given, or that is always there, in the registry's (= PCI slot) order.
 * One list for the worker and the Node runner; a new device needs no edit here.
 */
import { macrotask } from './macrotask.ts';
import type { PciBus } from '../virtio/bus.ts';
import type { DeviceStats } from './protocol.ts';
import { VirtioPciFunction } from '../virtio/pci/virtio-pci-function.ts';
import type { RingLayout } from '../virtio/queue/virtqueue.ts';
import { descriptorFor, registeredDevices, type DeviceKind, type DeviceOptionsByKind } from '../devices/registry.ts';

/** Options for the whole set: lab-wide settings, and each device's options under its kind (`blk`, `net`, `rng` …). */
export interface LabDeviceOptions extends DeviceOptionsByKind {
  /** A device saw the guest break the spec; it is now in DEVICE_NEEDS_RESET. */
  onDeviceError(device: string, reason: string): void;
  /**
   * BAR0 in port I/O (default) or memory space. I/O costs fewer exits per request on v86
   * (see bench/exits.ts) and lets SeaBIOS place it; memory BARs are fixed addresses.
   */
  barKind?: 'io' | 'mem';
  /**
   * Which virtqueue layouts every function offers: 'packed' adds VIRTIO_F_RING_PACKED (§2.8),
   * which Linux takes when offered; 'split' (the default) offers the split ring only.
   */
  ring?: RingLayout;
  /**
   * Serve kicks inside the notify write instead of at the end of the emulator's time slice
   * (the default; see bench/blk.ts for what each costs).
   */
  serveKicksInline?: boolean;
  /** Where deferred kicks are served (default: a microtask after the current slice). */
  defer?: (job: () => void) => void;
  /** Where work over a pass's budget continues (default: a macrotask, after the emulator ran). */
  later?: (job: () => void) => void;
  /** Where work waits for the emulator's next timer check or the next task (DrainPoint.hold); none: no waiting. */
  hold?: (job: () => void) => void;
}

/** The plugged functions by kind (a kind is absent when its device was not attached), and all of them. */
export type LabDevices = { [K in DeviceKind]?: VirtioPciFunction } & {
  /** Every plugged function, in slot order. */
  all: VirtioPciFunction[];
};

/** A snapshot of one function's counters; `exits` comes from the bus adapter. */
export function deviceStats(fn: VirtioPciFunction, exits: { reads: number; writes: number } | undefined): DeviceStats {
  return {
    name: fn.name,
    status: fn.deviceStatus,
    ...fn.stats,
    barReads: exits?.reads ?? 0,
    barWrites: exits?.writes ?? 0,
    extra: descriptorFor(fn.device)?.stats(fn.device) ?? {},
  };
}

export function plugLabDevices(bus: PciBus, opts: LabDeviceOptions): LabDevices {
  const barKind = opts.barKind ?? 'io';
  const defer = opts.serveKicksInline ? undefined : (opts.defer ?? ((drain: () => void) => queueMicrotask(drain)));
  const devices: LabDevices = { all: [] };
  for (const descriptor of registeredDevices) {
    const kind = descriptor.kind as DeviceKind;
    const device = descriptor.create(opts[kind], { defer, later: opts.later ?? macrotask, hold: opts.hold });
    if (!device) continue;
    const fn = new VirtioPciFunction(device, { barKind, ring: opts.ring, deviceState: descriptor.state });
    fn.connect(bus.attach(fn));
    fn.onError((reason) => opts.onDeviceError(fn.name, reason));
    devices[kind] = fn;
    devices.all.push(fn);
  }
  return devices;
}
