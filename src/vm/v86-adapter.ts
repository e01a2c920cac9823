/**
 * The ONLY module that touches v86 (public API and internals). Everything else sees
 * `PciBus`, `GuestMemory` and `InterruptLine` (src/virtio/bus.ts), so a v86 upgrade stays
 * contained here. The v86 facts this relies on are in docs/design.md.
 */
import { V86 } from 'v86';
import {
  GuestMemoryError,
  hostOwnsConfigByte,
  type AccessWidth,
  type GuestMemory,
  type InterruptLine,
  type PciAttachment,
  type PciBar,
  type PciBus,
  type PciFunction,
} from '../virtio/bus.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- v86 internals are untyped */
type V86Cpu = any;

export interface V86HostOptions {
  bios: Uint8Array;
  vgabios?: Uint8Array;
  kernel: Uint8Array;
  initrd: Uint8Array;
  cmdline: string;
  memoryMiB: number;
  /**
   * A machine made to have a state restored into it, never booted: the kernel and initrd
   * are not loaded (the state holds the guest's RAM), so RAM above the firmware stays as
   * fresh wasm memory, all zero and never touched, and the restore skips zeroing it.
   */
  forRestore?: boolean;
  /** Compiled v86.wasm (compile once, instantiate per boot). */
  wasm: WebAssembly.Module;
  onSerialByte(byte: number): void;
}

/**
 * PCI slots v86 leaves free (it uses 0, 1, 5, 6, 7, 10, 11, 12, 18, 30). Slots 3, 4 and 8 route
 * INTA# to IRQ 11, away from slot 5 (IRQ 10) where v86 would put its ne2k. Ascending, so
 * Linux's bus scan meets functions in the order they are plugged (the device registry's):
 * virtio indices follow it and the rng stays virtio0.
 */
const FREE_SLOTS = [3, 4, 8, 9, 13, 14, 15, 16, 17];
/** Where our I/O BARs are registered first; SeaBIOS relocates them. Must be ≥ 0x1000. */
const IO_BAR_BASE = 0xe000;
/** Fixed memory BAR window: clear of the VGA LFB, IO-APIC, LAPIC and BIOS. */
const MEM_BAR_BASE = 0xfe000000;
const MMIO_GRANULE = 128 * 1024;

const copyOf = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;

/**
 * Where v86 writes guest RAM while it builds a machine without a kernel: the BIOS and VGA
 * BIOS, both below 1 MiB. Above it, RAM is fresh wasm memory (zero) until the guest runs.
 */
export const FIRMWARE_END = 0x100000;

/**
 * v86's main loop runs the guest for 1 ms, then yields and is called back. In a browser it
 * yields through a scheduler worker of its own: a round trip to another thread after every
 * millisecond of guest time, which on a busy 2-core machine left the guest a fraction of the
 * worker's time. Our emulator already runs in a dedicated worker, where a MessageChannel
 * message is a task of this thread (no other thread, no clamping). A sleep (an idle guest
 * until its next timer) is a timer set from such a message task: a timer set from a timer's
 * callback would nest, and browsers stretch nested timers to ≥ 4 ms. A wake-up (an interrupt
 * for a halted guest) replaces a pending sleep, as in v86's own worker. Node's v86 uses
 * setImmediate and is left alone.
 */
export function yieldInThisThread(v86: any): void {
  if (typeof MessageChannel === 'undefined' || !v86.worker) return;
  // v86's scheduler worker stays, idle, until v86 is destroyed: ending it now, while its
  // blob: script may still be loading, aborts that request (a console error on every page).
  const endSchedulerWorker = v86.unregister_yield.bind(v86);
  const channel = new MessageChannel();
  let sleep: ReturnType<typeof setTimeout> | undefined;
  channel.port1.onmessage = (e: MessageEvent<{ tick: number; t: number }>) => {
    const { tick, t } = e.data;
    if (tick !== v86.tick_counter) return; // a later yield replaced this one
    if (t < 1) v86.yield_callback(tick);
    else sleep = setTimeout(() => v86.yield_callback(tick), t);
  };
  v86.yield = (t: number, tick: number) => {
    if (sleep !== undefined) clearTimeout(sleep);
    sleep = undefined;
    channel.port2.postMessage({ tick, t });
  };
  v86.unregister_yield = () => {
    if (sleep !== undefined) clearTimeout(sleep);
    channel.port1.close();
    endSchedulerWorker();
  };
}

export class V86Host {
  /** RAM above FIRMWARE_END is untouched fresh memory: no guest code has run, no state restored. */
  private pristineRam: boolean;

  private constructor(
    private readonly emulator: any,
    readonly pciBus: V86PciBus,
    forRestore: boolean,
  ) {
    this.pristineRam = forRestore;
  }

  /** Creates the emulator and resolves once devices can be plugged in (before `run`). */
  static create(opts: V86HostOptions): Promise<V86Host> {
    return new Promise((resolve, reject) => {
      let emulator: any;
      try {
        emulator = new V86({
          wasm_fn: async (imports: WebAssembly.Imports) =>
            (await WebAssembly.instantiate(opts.wasm, imports)).exports,
          memory_size: opts.memoryMiB * 1024 * 1024,
          vga_memory_size: 2 * 1024 * 1024,
          bios: { buffer: copyOf(opts.bios) },
          vga_bios: opts.vgabios ? { buffer: copyOf(opts.vgabios) } : undefined,
          ...(opts.forRestore
            ? {}
            : { bzimage: { buffer: copyOf(opts.kernel) }, initrd: { buffer: copyOf(opts.initrd) }, cmdline: opts.cmdline }),
          autostart: false,
          disable_keyboard: true,
          disable_mouse: true,
          disable_speaker: true,
          // No v86 NIC: v86 adds an ne2k by default (slot 5, IRQ 10); the lab's NIC is ours.
          net_device: { type: 'none' },
          screen: { container: null },
          log_level: 0,
        } as any);
      } catch (e) {
        reject(e);
        return;
      }
      emulator.add_listener('serial0-output-byte', opts.onSerialByte);
      emulator.add_listener('emulator-loaded', () => {
        if (typeof process === 'undefined') yieldInThisThread(emulator.v86);
        resolve(new V86Host(emulator, new V86PciBus(emulator.v86.cpu), opts.forRestore === true));
      });
    });
  }

  run(): void {
    // Without a kernel the CPU would run the BIOS into an empty boot menu.
    if (this.pristineRam) throw new Error('this machine was made for a state to be restored into: restore one before it runs');
    void this.emulator.run();
  }

  async stop(): Promise<void> {
    const stopped = this.emulator.stop();
    // v86 stops at its next tick; a halted guest's next tick is its next timer, up to
    // 100 ms away. Wake the loop now, as an interrupt would.
    if (this.emulator.cpu_is_running) this.emulator.v86.cpu.stop_idling();
    await stopped;
  }

  async destroy(): Promise<void> {
    await this.emulator.destroy();
  }

  sendSerial(bytes: Uint8Array): void {
    this.emulator.serial_send_bytes(0, bytes);
  }

  /**
   * Calls `hook` wherever v86 checks its timers: between slices of guest code and at every
   * HLT (before it decides whether the guest sleeps). An interrupt raised in `hook` is
   * delivered at once. The hook must not throw (it runs inside the emulator's loop).
   */
  onTimerCheck(hook: () => void): void {
    const cpu = this.emulator.v86.cpu;
    // v86's wasm imports call cpu.run_hardware_timers through the instance at each call.
    const runTimers = cpu.run_hardware_timers;
    cpu.run_hardware_timers = function (this: V86Cpu, acpiEnabled: boolean, now: number): number {
      hook();
      return runTimers.call(this, acpiEnabled, now);
    };
  }

  /**
   * v86's own state (CPU, RAM, its devices and the PCI config spaces the guest programmed),
   * as v86 saves it. Only while stopped: nothing may run between the pieces it saves.
   */
  async saveState(): Promise<Uint8Array> {
    return new Uint8Array((await this.emulator.save_state()) as ArrayBuffer);
  }

  /**
   * Puts a state from saveState() (raw, or one zstd frame: v86 decompresses it) into this
   * stopped emulator, built with the same devices plugged in the same order. Our functions'
   * interrupt lines are then all low: their own state, restored next, raises what is pending.
   */
  async restoreState(state: Uint8Array): Promise<void> {
    const copy = state.byteOffset === 0 && state.byteLength === state.buffer.byteLength ? state.buffer : state.slice().buffer;
    const cpu = this.emulator.v86.cpu;
    const zeroMemory = cpu.zero_memory;
    // v86 zeroes all of RAM before it writes the saved pages: 128 MiB of writes that fault in
    // every page of fresh wasm memory (~0.1 s in a browser). Fresh RAM is zero already.
    if (this.pristineRam) cpu.zero_memory = (addr: number, len: number) => zeroMemory(addr, Math.max(0, Math.min(len, FIRMWARE_END - addr)));
    try {
      await this.emulator.restore_state(copy);
    } finally {
      cpu.zero_memory = zeroMemory;
    }
    this.pristineRam = false;
    this.pciBus.afterRestore();
  }

  /** Guest RAM (what our functions see through their attachment). */
  get ram(): GuestMemory {
    return new V86GuestMemory(this.emulator.v86.cpu);
  }

  /** Instructions the guest CPU has executed (wraps at 2^32). */
  instructionCount(): number {
    return this.emulator.get_instruction_counter();
  }
}

/** Guest RAM as v86's wasm memory. Views are re-taken whenever the buffer was replaced. */
export class V86GuestMemory implements GuestMemory {
  private u8!: Uint8Array;
  private dv!: DataView;

  constructor(private readonly cpu: V86Cpu) {
    this.refresh();
  }

  get size(): number {
    return this.cpu.memory_size[0] >>> 0;
  }

  private refresh(): void {
    const buffer: ArrayBuffer = this.cpu.wasm_memory.buffer;
    this.u8 = new Uint8Array(buffer, this.cpu.mem8.byteOffset, this.size);
    this.dv = new DataView(buffer, this.cpu.mem8.byteOffset, this.size);
  }

  /** Bounds check; also notices a replaced (grown) wasm buffer. */
  private check(addr: number, len: number): void {
    if (this.u8.buffer !== this.cpu.wasm_memory.buffer || this.u8.byteLength === 0) this.refresh();
    if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0 || addr + len > this.u8.length) {
      throw new GuestMemoryError(addr, len);
    }
  }

  readU8(addr: number): number {
    this.check(addr, 1);
    return this.u8[addr];
  }
  readU16(addr: number): number {
    this.check(addr, 2);
    return this.dv.getUint16(addr, true);
  }
  readU32(addr: number): number {
    this.check(addr, 4);
    return this.dv.getUint32(addr, true);
  }
  writeU8(addr: number, value: number): void {
    this.check(addr, 1);
    this.u8[addr] = value;
    this.written(addr, 1);
  }
  writeU16(addr: number, value: number): void {
    this.check(addr, 2);
    this.dv.setUint16(addr, value, true);
    this.written(addr, 2);
  }
  writeU32(addr: number, value: number): void {
    this.check(addr, 4);
    this.dv.setUint32(addr, value, true);
    this.written(addr, 4);
  }
  read(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    return this.u8.slice(addr, addr + len);
  }
  write(addr: number, bytes: Uint8Array): void {
    this.check(addr, bytes.length);
    this.u8.set(bytes, addr);
    this.written(addr, bytes.length);
  }
  view(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    return this.u8.subarray(addr, addr + len);
  }
  written(addr: number, len: number): void {
    // Code the JIT compiled from these pages is stale now.
    if (len > 0) this.cpu.jit_dirty_cache(addr, addr + len);
  }
}

/**
 * INTx lines with the wired-OR v86 lacks: v86 drops a shared IRQ when any device lowers
 * it, so we only lower the PIC input once every one of our functions on it is low.
 */
class SharedIrqRouter {
  private readonly raised = new Map<number, Set<number>>();

  constructor(private readonly cpu: V86Cpu) {}

  /** The PIC input this function's INTA# reaches now (SeaBIOS programs the PIRQ router). */
  irqOf(pciId: number): number {
    return this.cpu.devices.pci.isa_bridge_space8[0x60 + (((pciId >> 3) - 1) & 3)];
  }

  /**
   * After v86 restored its PIC from a state, lines our functions held high then are high
   * now, with no function behind them (a storm the guest's kernel ends by disabling the
   * IRQ). Lower every line we own; restored functions raise what their ISR says.
   */
  lowerAll(pciIds: Iterable<number>): void {
    const pci = this.cpu.devices.pci;
    this.raised.clear();
    for (const pciId of pciIds) pci.lower_irq(pciId);
  }

  line(pciId: number, deferred: boolean): InterruptLine {
    const pci = this.cpu.devices.pci;
    const raise = () => {
      const irq = this.irqOf(pciId);
      let set = this.raised.get(irq);
      if (!set) this.raised.set(irq, (set = new Set()));
      set.add(pciId);
      pci.raise_irq(pciId);
    };
    const lower = () => {
      const irq = this.irqOf(pciId);
      const set = this.raised.get(irq);
      set?.delete(pciId);
      if (!set || set.size === 0) pci.lower_irq(pciId);
    };
    if (!deferred) return { raise, lower };
    // Raising inside an MMIO write handler is lost by v86's JIT (docs/design.md), so a raise waits
    // for the end of the handler. Lowering stays immediate (it comes from the ISR read) and
    // cancels a raise still waiting, so the line never ends up high with the ISR clear.
    let pending = false;
    return {
      raise: () => {
        if (pending) return;
        pending = true;
        queueMicrotask(() => {
          if (!pending) return;
          pending = false;
          raise();
        });
      },
      lower: () => {
        pending = false;
        lower();
      },
    };
  }
}

/** PCI configuration mechanism #1: the data ports follow the address port (0xcf8). */
const PCI_CONFIG_DATA = 0xcfc;

interface RoutedFunction {
  readonly fn: PciFunction;
  /** v86's live copy of the config space (it owns the BARs and the command register there). */
  readonly live: Uint8Array;
}

/**
 * Sends the guest's config-space accesses to our functions' hooks (PciFunction.configRead /
 * configWrite), leaving v86 the bytes the host owns and every other device. v86 answers a
 * config read from a dword latched when the guest writes 0xcf8; for our functions we answer
 * when the guest reads 0xcfc–0xcff instead, so a read with side effects (the PCI_CFG window)
 * happens once, at the read, and a config write never causes one.
 */
class ConfigSpaceRouter {
  private readonly routed = new Map<number, RoutedFunction>();

  constructor(private readonly cpu: V86Cpu) {
    const pci = cpu.devices.pci;
    const ports = cpu.io.ports;
    // Data-port reads, in the shapes v86 registered (bytes at each port, words at 0 and 2, a dword at 0).
    for (let port = 0; port < 4; port++) {
      const entry = ports[PCI_CONFIG_DATA + port];
      for (const [width, key] of [
        [1, 'read8'],
        [2, 'read16'],
        [4, 'read32'],
      ] as const) {
        if (port % width !== 0) continue;
        const original = entry[key];
        entry[key] = () => {
          const target = this.target(pci.pci_addr[2] << 8 | pci.pci_addr[1]);
          if (!target) return original.call(pci);
          const value = this.read(target, (pci.pci_addr[0] & 0xfc) + port, width);
          return width === 4 ? value | 0 : value; // v86 hands dwords to the CPU as int32
        };
      }
    }
    // Writes: v86's data-port handlers call these on the PCI object with the full address.
    for (const [width, key] of [
      [1, 'pci_write8'],
      [2, 'pci_write16'],
      [4, 'pci_write32'],
    ] as const) {
      const original = pci[key];
      pci[key] = (address: number, value: number) => {
        const target = this.target((address >> 8) & 0xffff);
        if (!target) return original.call(pci, address, value);
        this.write(target, address & 0xff, width, value, () => original.call(pci, address, value));
      };
    }
  }

  add(pciId: number, fn: PciFunction, live: Int32Array): void {
    this.routed.set(pciId, { fn, live: new Uint8Array(live.buffer, live.byteOffset, live.byteLength) });
  }

  private target(bdf: number): RoutedFunction | undefined {
    return this.routed.get(bdf);
  }

  private read({ fn, live }: RoutedFunction, offset: number, width: AccessWidth): number {
    if (offset + width > 256) return 0;
    if (!touchesHostBytes(offset, width)) return fn.configRead!(offset, width) >>> 0;
    let value = 0;
    for (let i = width - 1; i >= 0; i--) {
      const at = offset + i;
      value = value * 256 + (hostOwnsConfigByte(at) ? live[at]! : fn.configRead!(at, 1) & 0xff);
    }
    return value >>> 0;
  }

  private write({ fn, live }: RoutedFunction, offset: number, width: AccessWidth, value: number, hostWrite: () => void): void {
    if (offset + width > 256) return;
    if (!touchesHostBytes(offset, width)) return fn.configWrite!(offset, width, value >>> 0);
    // v86 decodes BAR sizing and moves I/O BARs; the function's bytes of the same access go to
    // the function, and v86's copy of them stays as registered (it reads the interrupt pin there).
    const kept = live.slice(offset, offset + width);
    hostWrite();
    for (let i = 0; i < width; i++) {
      const at = offset + i;
      if (hostOwnsConfigByte(at)) continue;
      live[at] = kept[i]!;
      fn.configWrite!(at, 1, (value >>> (8 * i)) & 0xff);
    }
  }
}

function touchesHostBytes(offset: number, width: number): boolean {
  for (let i = 0; i < width; i++) if (hostOwnsConfigByte(offset + i)) return true;
  return false;
}

/** Per-function counters of BAR accesses: each is a VM exit in a real hypervisor. */
export interface BarAccessCounts {
  reads: number;
  writes: number;
}

export class V86PciBus implements PciBus {
  private readonly memory: V86GuestMemory;
  private readonly irqs: SharedIrqRouter;
  private configRouter: ConfigSpaceRouter | undefined;
  private nextSlot = 0;
  private nextIoBase = IO_BAR_BASE;
  private nextMemBase = MEM_BAR_BASE;
  readonly exits = new Map<string, BarAccessCounts>();
  private readonly pciIds: number[] = [];

  constructor(private readonly cpu: V86Cpu) {
    this.memory = new V86GuestMemory(cpu);
    this.irqs = new SharedIrqRouter(cpu);
  }

  /** Called after v86 restored a state: see SharedIrqRouter.lowerAll. */
  afterRestore(): void {
    this.irqs.lowerAll(this.pciIds);
  }

  attach(fn: PciFunction): PciAttachment {
    const slot = FREE_SLOTS[this.nextSlot++];
    if (slot === undefined) throw new Error('no free PCI slot left');
    const pciId = slot << 3;
    this.pciIds.push(pciId);
    const space = fn.configSpace.slice();
    const counts: BarAccessCounts = { reads: 0, writes: 0 };
    this.exits.set(fn.name, counts);
    const bars: ({ size: number } | undefined)[] = [];
    let anyMem = false;
    fn.bars.forEach((bar, i) => {
      if (!bar) return;
      const reg = 0x10 + 4 * i;
      if (bar.kind === 'io') {
        const base = this.nextIoBase;
        this.nextIoBase += Math.max(bar.size, 0x100);
        this.registerIoBar(fn, bar, base, counts);
        new DataView(space.buffer).setUint32(reg, base | 1, true);
      } else {
        anyMem = true;
        const size = Math.max(bar.size, MMIO_GRANULE);
        const base = this.nextMemBase;
        this.nextMemBase += size;
        this.registerMemBar(bar, base, size, counts);
        new DataView(space.buffer).setUint32(reg, base, true);
      }
      bars[i] = { size: bar.size };
    });
    const device = { pci_id: pciId, pci_space: space, pci_bars: bars, name: fn.name };
    // v86 copies the config space and hands back its live copy (the guest programs BARs there).
    const live: Int32Array = this.cpu.devices.pci.register_device(device);
    if (fn.configRead && fn.configWrite) {
      this.configRouter ??= new ConfigSpaceRouter(this.cpu);
      this.configRouter.add(pciId, fn, live);
    }
    return {
      memory: this.memory,
      irq: this.irqs.line(pciId, anyMem),
      location: () => {
        const bar0 = live[4] >>> 0;
        return { slot, irqLine: this.irqs.irqOf(pciId), bar0: bar0 & 1 ? bar0 & ~3 : bar0 & ~0xf };
      },
    };
  }

  /** One closure per port: v86's write handlers are not told the port. */
  private registerIoBar(fn: PciFunction, bar: PciBar, base: number, counts: BarAccessCounts): void {
    const io = this.cpu.io;
    for (let off = 0; off < bar.size; off++) {
      const rd = (w: AccessWidth) => () => {
        counts.reads++;
        return bar.read(off, w);
      };
      const wr = (w: AccessWidth) => (v: number) => {
        counts.writes++;
        bar.write(off, w, v);
      };
      io.register_read(base + off, fn, rd(1), rd(2), rd(4));
      io.register_write(base + off, fn, wr(1), wr(2), wr(4));
    }
  }

  /** Memory BARs are fixed (v86 ignores relocation) and mapped in 128 KiB granules. */
  private registerMemBar(bar: PciBar, base: number, size: number, counts: BarAccessCounts): void {
    const mask = bar.size - 1;
    this.cpu.io.mmap_register(
      base,
      size,
      (addr: number) => {
        counts.reads++;
        return bar.read((addr - base) & mask, 1);
      },
      (addr: number, v: number) => {
        counts.writes++;
        bar.write((addr - base) & mask, 1, v);
      },
      (addr: number) => {
        counts.reads++;
        return bar.read((addr - base) & mask, 4);
      },
      (addr: number, v: number) => {
        counts.writes++;
        bar.write((addr - base) & mask, 4, v);
      },
    );
  }
}
