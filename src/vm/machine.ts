/**
 * The machine: v86 + our PCI devices + a batched serial console. The browser worker and the
 * Node runner both build exactly this; only the I/O glue around it differs.
 */
import type { PciBus } from '../virtio/bus.ts';
import type { DeviceStats } from './protocol.ts';
import { DrainPoint } from './drain-point.ts';
import { deviceStats, plugLabDevices, type LabDeviceOptions, type LabDevices } from './lab-devices.ts';
import type { GuestImage } from './guest-image.ts';
import { SerialBatcher } from './serial-batcher.ts';
import { V86Host } from './v86-adapter.ts';

export interface MachineOptions {
  image: GuestImage;
  wasm: WebAssembly.Module;
  /** Console output, in batches. */
  onSerial(bytes: Uint8Array): void;
  /** The lab's devices are plugged before the CPU starts (SeaBIOS probes them). */
  devices: LabDeviceOptions;
}

/**
 * The image's kernel drives v86's IDE controller (the anchor in `npm run bench`), but the
 * lab's machine has no IDE disk, only v86's always-present empty CD-ROM: skipping the
 * ata_piix probe saves ~0.2 s of boot.
 */
export const LAB_CMDLINE = 'initcall_blacklist=piix_init';

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
      wasm: opts.wasm,
      onSerialByte: (b) => serial.push(b),
    });
    // Deferred kicks are served at the guest's next HLT or timer check, else after the slice.
    const drains = new DrainPoint();
    host.onTimerCheck(drains.atTimerCheck);
    const devices = plugLabDevices(host.pciBus, { ...opts.devices, defer: opts.devices.defer ?? drains.defer });
    return new Machine(host, serial, devices);
  }

  get bus(): PciBus {
    return this.host.pciBus;
  }

  start(): void {
    this.startedAt = performance.now();
    this.host.run();
  }

  /** Wall time since start: v86 paces the guest's clocks by the host's. */
  uptimeMs(): number {
    return this.startedAt ? performance.now() - this.startedAt : 0;
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
