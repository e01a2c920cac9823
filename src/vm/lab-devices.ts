/**
 * Which of our devices the lab's machine gets. One list for the worker and the Node runner.
 */
import type { PciBus } from '../virtio/bus.ts';
import type { DeviceStats } from './protocol.ts';
import { VirtioPciFunction } from '../virtio/pci/virtio-pci-function.ts';
import { VirtioRng, type RandomSource } from '../devices/rng/rng.ts';
import { VirtioBlk } from '../devices/blk/blk.ts';
import type { BlockBackend, BlockBackendErrorKind } from '../backends/block-backend.ts';
import { VirtioNet, type VirtioNetOptions } from '../devices/net/net.ts';
import { VirtioConsole, type VirtioConsoleOptions } from '../devices/console/console.ts';

/** A disk to attach as virtio-blk (/dev/vda). */
export interface LabDiskOptions {
  backend: BlockBackend;
  /** The disk's name: its serial (/sys/block/vda/serial), at most 20 bytes. */
  name: string;
  /** The backend failed; 'quota' means storage is full. The guest got I/O errors. */
  onBackendError?(kind: BlockBackendErrorKind, message: string): void;
}

/** A NIC to attach as virtio-net (eth0), over a FrameLink (e.g. a WebSocketFrameLink to the relay). */
export type LabNetOptions = Pick<
  VirtioNetOptions,
  'link' | 'mac' | 'onCapture' | 'mtu' | 'tso' | 'mergeableRxBuffers' | 'rxBacklogFrames' | 'rxBacklogBytes'
>;

export interface LabDeviceOptions {
  /** A device saw the guest break the spec; it is now in DEVICE_NEEDS_RESET. */
  onDeviceError(device: string, reason: string): void;
  /**
   * BAR0 in port I/O (default) or memory space. I/O costs fewer exits per request on v86
   * (see bench/exits.ts) and lets SeaBIOS place it; memory BARs are fixed addresses.
   */
  barKind?: 'io' | 'mem';
  /**
   * Serve virtio-blk and virtio-net tx kicks inside the notify write instead of at the end of the emulator's
   * time slice (the default; see bench/blk.ts for what each costs).
   */
  serveKicksInline?: boolean;
  /** Where deferred kicks are served (default: a microtask after the current slice). */
  defer?: (job: () => void) => void;
  /** Where virtio-rng's bytes come from (default crypto.getRandomValues). */
  rngSource?: RandomSource;
  /** Attach this disk as a virtio-blk function, after the rng. */
  disk?: LabDiskOptions;
  /** Attach this NIC as a virtio-net function, after the rng and the disk. */
  net?: LabNetOptions;
  /** Attach a virtio-console (hvc0 + these named ports) last, so the others keep their slots. */
  console?: Pick<VirtioConsoleOptions, 'ports'>;
}

export interface LabDevices {
  rng: VirtioPciFunction;
  /** The disk's function, when a disk was given. */
  blk?: VirtioPciFunction;
  /** The NIC's function, when a link was given (its device: `net.device as VirtioNet`). */
  net?: VirtioPciFunction;
  /** The console's function, when asked for (its device: `console.device as VirtioConsole`). */
  console?: VirtioPciFunction;
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
  if (fn.device instanceof VirtioBlk) {
    Object.assign(extra, fn.device.stats.toRecord());
    extra.capacitySectors = fn.device.capacitySectors;
    extra.writeback = fn.device.writeback ? 1 : 0;
    extra.readOnly = fn.device.backend.readOnly ? 1 : 0;
  }
  if (fn.device instanceof VirtioNet) {
    Object.assign(extra, fn.device.stats.toRecord());
    extra.linkUp = fn.device.linkUp ? 1 : 0;
    extra.mtu = fn.device.mtu;
  }
  if (fn.device instanceof VirtioConsole) Object.assign(extra, fn.device.stats.toRecord());
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
  const barKind = opts.barKind ?? 'io';
  // The rng stays first: virtio indices follow slot order, and tooling finds it at virtio0.
  const rng = plug(new VirtioPciFunction(new VirtioRng(opts.rngSource), { barKind }));
  const devices: LabDevices = { rng, all: [rng] };
  const defer = opts.serveKicksInline ? undefined : (opts.defer ?? ((drain: () => void) => queueMicrotask(drain)));
  if (opts.disk) {
    const { backend, name, onBackendError } = opts.disk;
    devices.blk = plug(new VirtioPciFunction(new VirtioBlk({ backend, serial: name, onBackendError, defer }), { barKind }));
    devices.all.push(devices.blk);
  }
  if (opts.net) {
    // tx kicks served at the end of the time slice too: a burst of sends costs one exit.
    devices.net = plug(new VirtioPciFunction(new VirtioNet({ ...opts.net, defer }), { barKind }));
    devices.all.push(devices.net);
  }
  if (opts.console) {
    // Console output (hvc0's put_chars) spins until the buffer is used: served inline, never deferred.
    devices.console = plug(new VirtioPciFunction(new VirtioConsole(opts.console), { barKind }));
    devices.all.push(devices.console);
  }
  return devices;
}
