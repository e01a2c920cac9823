/**
 * The machine: v86 + our PCI devices + a batched serial console. The browser worker and the
 * Node runner both build exactly this; only the I/O glue around it differs.
 */
import type { GuestMemory, PciBus } from '../virtio/bus.ts';
import type { DeviceStats } from './protocol.ts';
import { DrainPoint } from './drain-point.ts';
import { deviceStats, plugLabDevices, type LabDeviceOptions, type LabDevices } from './lab-devices.ts';
import type { GuestImage } from './guest-image.ts';
import { SerialBatcher } from './serial-batcher.ts';
import { V86Host } from './v86-adapter.ts';
import { announceRestoredGuest, quiesceLabDevices, restoreLabDevices, saveLabDevices, type LabDevicesState } from './lab-devices-state.ts';

/** The machine's state: v86's (CPU, RAM, its devices) and our functions' (JSON). */
export interface MachineState {
  v86: Uint8Array;
  devices: unknown;
}

export interface MachineOptions {
  image: GuestImage;
  wasm: WebAssembly.Module;
  /** Console output, in batches. */
  onSerial(bytes: Uint8Array): void;
  /** The lab's devices are plugged before the CPU starts (SeaBIOS probes them). */
  devices: LabDeviceOptions;
  /** Made to have a state restored into it: start() throws until one is (V86HostOptions). */
  forRestore?: boolean;
}

/**
 * What the lab's machine adds to the image's command line.
 * - The image's kernel drives v86's IDE controller (the anchor in `npm run bench`), but the
 *   lab's machine has no IDE disk, only v86's always-present empty CD-ROM: skipping the
 *   ata_piix probe saves ~0.2 s of boot.
 * - TCP receive buffers sized for the link's round trip. Linux sizes tcp_rmem's maximum from
 *   RAM: 789 280 bytes on the 128 MiB guest, a window near 390 KB, while a round trip through
 *   the relay, the WebSocket and the worker takes ~30 ms under load. A warm guest downloaded
 *   ~11.6 MiB/s with the default and 16–20 MiB/s with 1 MiB to start and 4 MiB at most
 *   (docs/design.md, What bounds the network). The kernel's tcp_mem still caps all sockets together.
 */
export const LAB_CMDLINE = 'initcall_blacklist=piix_init sysctl.net.ipv4.tcp_rmem="4096 1048576 4194304"';

export class Machine {
  private startedAt = 0;

  private constructor(
    private readonly host: V86Host,
    private readonly serial: SerialBatcher,
    readonly devices: LabDevices,
  ) {}

  static async create(opts: MachineOptions): Promise<Machine> {
    const serial = new SerialBatcher(opts.onSerial);
    const { image } = opts;
    const host = await V86Host.create({
      bios: image.bios,
      vgabios: image.vgabios,
      kernel: image.kernel,
      initrd: image.initrd,
      cmdline: `${image.manifest.cmdline} ${LAB_CMDLINE}`,
      memoryMiB: image.manifest.memoryMiB,
      forRestore: opts.forRestore,
      wasm: opts.wasm,
      onSerialByte: (b) => serial.push(b),
    });
    // Deferred kicks are served at the guest's next HLT or timer check, else after the slice.
    const drains = new DrainPoint();
    host.onTimerCheck(drains.atTimerCheck);
    const devices = plugLabDevices(host.pciBus, { ...opts.devices, defer: opts.devices.defer ?? drains.defer, hold: opts.devices.hold ?? drains.hold });
    return new Machine(host, serial, devices);
  }

  get bus(): PciBus {
    return this.host.pciBus;
  }

  start(): void {
    this.startedAt = performance.now();
    this.host.run();
  }

  /**
   * Stops the CPU between two instructions and lets our functions finish what they have in
   * flight (a backend request, a pass left for later), so a state taken now is consistent.
   */
  async pause(): Promise<void> {
    await this.host.stop();
    this.serial.flush();
    await quiesceLabDevices(this.devices);
  }

  /** Runs the CPU again after pause() (the uptime clock goes on). */
  resume(): void {
    this.host.run();
  }

  /** The whole machine's state; only while paused. */
  async saveState(): Promise<MachineState> {
    const v86 = await this.host.saveState();
    return { v86, devices: saveLabDevices(this.devices) };
  }

  /**
   * Puts a saved state into this machine, created with the same devices and not started.
   * Throws when the state does not fit (the machine is then unusable: destroy it).
   */
  async restoreState(state: MachineState): Promise<void> {
    await this.host.restoreState(state.v86);
    // Untrusted (a file): restoreLabDevices checks every field before it changes anything.
    restoreLabDevices(this.devices, state.devices as LabDevicesState);
    announceRestoredGuest(this.devices);
  }

  /** Wall time since start: v86 paces the guest's clocks by the host's. */
  uptimeMs(): number {
    return this.startedAt ? performance.now() - this.startedAt : 0;
  }

  /** Guest RAM, as our functions see it. */
  get ram(): GuestMemory {
    return this.host.ram;
  }

  instructions(): number {
    return this.host.instructionCount();
  }

  deviceStats(): DeviceStats[] {
    return this.devices.all.map((fn) => deviceStats(fn, this.host.pciBus.exits.get(fn.name)));
  }

  typeIn(bytes: Uint8Array): void {
    this.host.sendSerial(bytes);
  }

  async stop(): Promise<void> {
    this.serial.flush();
    await this.host.stop();
    await this.host.destroy();
  }
}
