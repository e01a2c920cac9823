/**
 * GuestMemory over a plain Uint8Array, for tests and the fuzzer. Stricter than any real
 * host: every access is bounds-checked, and every access (or rejected attempt) can be
 * recorded so a property can assert "the device never reached outside RAM".
 */
import { GuestMemory, GuestMemoryError } from '../bus.ts';

export interface MemoryAccess {
  op: 'read' | 'write' | 'view' | 'written';
  addr: number;
  len: number;
}

export class ArrayMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  /** Attempts that were refused with GuestMemoryError. A correct device leaves this empty. */
  readonly rejected: MemoryAccess[] = [];
  /** Every `written(addr, len)` notification, in order. */
  readonly writtenNotices: MemoryAccess[] = [];
  /** When true, every successful access is appended to `log`. Off by default (cost). */
  tracing = false;
  readonly log: MemoryAccess[] = [];
  /**
   * Host work done on this memory, always counted (two additions per access): calls, and
   * bytes covered by them (a view counts its whole length, as the device may touch it all).
   * The fuzz campaigns' "bounded work" properties read it around one kick (work-meter.ts).
   */
  readonly work = { accesses: 0, bytes: 0 };

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
  }

  get size(): number {
    return this.bytes.length;
  }

  private check(op: MemoryAccess['op'], addr: number, len: number): void {
    let reason: string | undefined;
    if (!Number.isInteger(addr) || !Number.isInteger(len)) reason = 'non-integer address or length';
    else if (addr < 0 || len < 0) reason = 'negative address or length';
    else if (addr + len > this.size) reason = 'beyond guest RAM';
    if (reason !== undefined) {
      this.rejected.push({ op, addr, len });
      throw new GuestMemoryError(addr, len, reason);
    }
    this.work.accesses++;
    this.work.bytes += len;
    if (this.tracing) this.log.push({ op, addr, len });
  }

  readU8(addr: number): number {
    this.check('read', addr, 1);
    return this.bytes[addr];
  }
  readU16(addr: number): number {
    this.check('read', addr, 2);
    return this.dv.getUint16(addr, true);
  }
  readU32(addr: number): number {
    this.check('read', addr, 4);
    return this.dv.getUint32(addr, true);
  }
  writeU8(addr: number, value: number): void {
    this.check('write', addr, 1);
    this.bytes[addr] = value;
  }
  writeU16(addr: number, value: number): void {
    this.check('write', addr, 2);
    this.dv.setUint16(addr, value, true);
  }
  writeU32(addr: number, value: number): void {
    this.check('write', addr, 4);
    this.dv.setUint32(addr, value >>> 0, true);
  }
  read(addr: number, len: number): Uint8Array {
    this.check('read', addr, len);
    return this.bytes.slice(addr, addr + len);
  }
  write(addr: number, bytes: Uint8Array): void {
    this.check('write', addr, bytes.length);
    this.bytes.set(bytes, addr);
  }
  view(addr: number, len: number): Uint8Array {
    this.check('view', addr, len);
    return this.bytes.subarray(addr, addr + len);
  }
  written(addr: number, len: number): void {
    this.check('written', addr, len);
    this.writtenNotices.push({ op: 'written', addr, len });
  }
}
