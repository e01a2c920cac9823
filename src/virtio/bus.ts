/**
 * The seam between our virtio devices and whatever machine hosts them.
 * The v86 adapter (src/vm/v86-adapter.ts) implements these for the real emulator;
 * unit tests implement them over a plain ArrayBuffer. Nothing here imports v86,
 * the DOM or worker APIs.
 */

/** Raised for any guest-physical access outside guest RAM. Never escapes an I/O handler. */
export class GuestMemoryError extends Error {
  constructor(
    readonly addr: number,
    readonly len: number,
    reason = 'outside guest RAM',
  ) {
    super(`guest memory access [0x${addr.toString(16)}, +${len}) ${reason}`);
    this.name = 'GuestMemoryError';
  }
}

/** Bounds-checked little-endian access to guest-physical memory. */
export interface GuestMemory {
  /** Bytes of guest RAM, addresses [0, size). */
  readonly size: number;
  readU8(addr: number): number;
  readU16(addr: number): number;
  readU32(addr: number): number;
  writeU8(addr: number, value: number): void;
  writeU16(addr: number, value: number): void;
  writeU32(addr: number, value: number): void;
  /** Copy guest bytes out. */
  read(addr: number, len: number): Uint8Array;
  /** Copy bytes into guest RAM. */
  write(addr: number, bytes: Uint8Array): void;
  /**
   * A live view of guest RAM for zero-copy I/O. Valid only until control returns to
   * the emulator (the backing buffer can be replaced as memory grows). A device that
   * writes through it must call `written` afterwards.
   */
  view(addr: number, len: number): Uint8Array;
  /** Tell the host that the device changed [addr, addr+len) behind its back (JIT caches). */
  written(addr: number, len: number): void;
}

/** A level-triggered INTx line. */
export interface InterruptLine {
  raise(): void;
  lower(): void;
}

export type AccessWidth = 1 | 2 | 4;

/** One base address register of a PCI function, decoded relative to the BAR's base. */
export interface PciBar {
  /** 'io': port I/O space; 'mem': 32-bit memory space (fixed by the host). */
  readonly kind: 'io' | 'mem';
  /** Power of two, in bytes. */
  readonly size: number;
  read(offset: number, width: AccessWidth): number;
  write(offset: number, width: AccessWidth, value: number): void;
}

/** A PCI function as the bus sees it. */
export interface PciFunction {
  readonly name: string;
  /**
   * The 256-byte type-0 configuration header plus capability list. The host owns the
   * BAR address fields (it assigns/relocates them); everything else is the function's.
   */
  readonly configSpace: Uint8Array;
  /** BARs by index 0..5 (undefined = unused). */
  readonly bars: ReadonlyArray<PciBar | undefined>;
  /**
   * Optional: the guest's config-space accesses, for hosts that route them (the v86 adapter
   * does). The host keeps the bytes it owns (`hostOwnsConfigByte`); every other access comes
   * here, so reads see live values (the status register's Interrupt Status bit) and writes
   * reach the function (the VIRTIO_PCI_CAP_PCI_CFG window). `offset + width` ≤ 256. Never throw.
   */
  configRead?(offset: number, width: AccessWidth): number;
  configWrite?(offset: number, width: AccessWidth, value: number): void;
}

/**
 * Config-space bytes the host answers from its own copy, even for a function with config
 * hooks: command (0x04–0x05), cache line size and latency timer (0x0c–0x0d), the BARs
 * (0x10–0x27), the expansion ROM base (0x30–0x33) and the interrupt line (0x3c).
 */
export function hostOwnsConfigByte(offset: number): boolean {
  return (
    offset === 0x04 ||
    offset === 0x05 ||
    offset === 0x0c ||
    offset === 0x0d ||
    (offset >= 0x10 && offset < 0x28) ||
    (offset >= 0x30 && offset < 0x34) ||
    offset === 0x3c
  );
}

/** Where the host placed a function: for display (the inspector), never for I/O. */
export interface PciLocation {
  /** PCI device number on bus 0. */
  slot: number;
  /** The interrupt controller input INTA# reaches now (0 while not routed yet). */
  irqLine: number;
  /** BAR0's current base: a port for I/O BARs, an address for memory BARs. */
  bar0: number;
}

/** Where a PciFunction lives once plugged in. */
export interface PciAttachment {
  readonly memory: GuestMemory;
  readonly irq: InterruptLine;
  /** The function's current place on the bus, if the host can tell. */
  location?(): PciLocation;
}

/** A host's PCI bus: plug a function in, get its memory and interrupt line. */
export interface PciBus {
  attach(fn: PciFunction): PciAttachment;
}
