import { describe, expect, it } from 'vitest';
import { GuestMemoryError } from '../bus.ts';
import { ArrayMemory } from './array-memory.ts';

describe('ArrayMemory', () => {
  it('reads and writes little-endian, unaligned too', () => {
    const m = new ArrayMemory(64);
    m.writeU32(1, 0x11223344);
    expect(m.readU8(1)).toBe(0x44);
    expect(m.readU16(3)).toBe(0x1122);
    expect(m.readU32(1)).toBe(0x11223344);
    m.write(60, Uint8Array.of(1, 2, 3, 4));
    expect([...m.read(60, 4)]).toEqual([1, 2, 3, 4]);
    expect(m.rejected).toEqual([]);
  });

  it.each([
    ['beyond the end', () => new ArrayMemory(64).readU32(61)],
    ['negative', () => new ArrayMemory(64).readU8(-1)],
    ['non-integer', () => new ArrayMemory(64).view(1.5, 2)],
    ['huge length', () => new ArrayMemory(64).read(8, 2 ** 32)],
    ['wrapping', () => new ArrayMemory(64).written(0xffffffff, 2)],
    ['NaN', () => new ArrayMemory(64).writeU8(NaN, 0)],
  ])('rejects %s and records it', (_name, access) => {
    expect(access).toThrow(GuestMemoryError);
  });

  it('keeps a log of rejected attempts and, when tracing, of accesses', () => {
    const m = new ArrayMemory(16);
    m.tracing = true;
    m.readU16(0);
    expect(() => m.writeU16(15, 1)).toThrow(GuestMemoryError);
    expect(m.log).toEqual([{ op: 'read', addr: 0, len: 2 }]);
    expect(m.rejected).toEqual([{ op: 'write', addr: 15, len: 2 }]);
  });
});
