/**
 * Reads of guest memory that cannot throw: the inspector looks at whatever the guest
 * wrote, and a bad address must become "unreadable" in the view, never an exception
 * in the worker (nor a broken queue: the inspector only ever reads).
 */
import type { GuestMemory } from '../bus.ts';

export class GuardedMemory {
  constructor(private readonly memory: GuestMemory) {}

  /** Whether [addr, addr+len) lies in guest RAM. */
  fits(addr: number, len: number): boolean {
    return Number.isSafeInteger(addr) && addr >= 0 && len >= 0 && addr + len <= this.memory.size;
  }

  u16(addr: number): number | undefined {
    if (!this.fits(addr, 2)) return undefined;
    try {
      return this.memory.readU16(addr);
    } catch {
      return undefined;
    }
  }

  u32(addr: number): number | undefined {
    if (!this.fits(addr, 4)) return undefined;
    try {
      return this.memory.readU32(addr);
    } catch {
      return undefined;
    }
  }

  bytes(addr: number, len: number): Uint8Array | undefined {
    if (!this.fits(addr, len)) return undefined;
    try {
      return this.memory.read(addr, len);
    } catch {
      return undefined;
    }
  }
}
