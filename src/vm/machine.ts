/**
 * The machine: v86 + our PCI devices + a batched serial console. The browser worker and the
 * Node runner both build exactly this; only the I/O glue around it differs.
 */
import type { PciBus } from '../virtio/bus.ts';
import type { GuestImage } from './guest-image.ts';
import { SerialBatcher } from './serial-batcher.ts';
import { V86Host } from './v86-adapter.ts';

export interface MachineOptions {
  image: GuestImage;
  wasm: WebAssembly.Module;
  /** Console output, in batches. */
  onSerial(bytes: Uint8Array): void;
  /** Plugs the lab's devices into the bus; runs before the CPU starts (SeaBIOS probes them). */
  plugDevices?(bus: PciBus): void;
}

export class Machine {
  private startedAt = 0;

  private constructor(
    private readonly host: V86Host,
    private readonly serial: SerialBatcher,
  ) {}

  static async create(opts: MachineOptions): Promise<Machine> {
    const serial = new SerialBatcher(opts.onSerial);
    const { image } = opts;
    const host = await V86Host.create({
      bios: image.bios,
      vgabios: image.vgabios,
      kernel: image.kernel,
      initrd: image.initrd,
      cmdline: image.manifest.cmdline,
      memoryMiB: image.manifest.memoryMiB,
      wasm: opts.wasm,
      onSerialByte: (b) => serial.push(b),
    });
    opts.plugDevices?.(host.pciBus);
    return new Machine(host, serial);
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

  /** BAR accesses per device name (the exits a hypervisor would take). */
  exits(): Map<string, { reads: number; writes: number }> {
    return this.host.pciBus.exits;
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
