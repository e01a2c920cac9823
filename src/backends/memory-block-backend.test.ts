import { describe, expect, it } from 'vitest';
import { backendErrorKind } from './testing.ts';
import { MemoryBlockBackend } from './memory-block-backend.ts';

const kindOf = backendErrorKind;

describe('MemoryBlockBackend', () => {
  it('reads, writes, zeroes and refuses out-of-range access', () => {
    const b = new MemoryBlockBackend(4096);
    b.write(512, Uint8Array.of(1, 2, 3));
    const dst = new Uint8Array(4);
    b.read(511, dst);
    expect([...dst]).toEqual([0, 1, 2, 3]);
    b.writeZeroes(513, 1);
    b.discard(514, 1);
    b.read(512, dst);
    expect([...dst]).toEqual([1, 0, 0, 0]);
    expect(kindOf(() => b.read(4095, new Uint8Array(2)))).toBe('range');
    expect(kindOf(() => b.write(-1, new Uint8Array(1)))).toBe('range');
    expect(kindOf(() => b.discard(0, 4097))).toBe('range');
    expect(() => new MemoryBlockBackend(1000)).toThrow(/multiple of 512/);
  });

  it('models a volatile cache: durable only after flush', () => {
    const b = new MemoryBlockBackend(1024, { trackDurability: true });
    b.write(0, Uint8Array.of(9));
    expect(b.durable![0]).toBe(0);
    b.flush();
    expect(b.durable![0]).toBe(9);
  });

  it('read-only refuses writes; faults are injected before anything changes', () => {
    const ro = new MemoryBlockBackend(1024, { readOnly: true });
    expect(kindOf(() => ro.write(0, Uint8Array.of(1)))).toBe('read-only');
    expect(kindOf(() => ro.writeZeroes(0, 1))).toBe('read-only');
    ro.read(0, new Uint8Array(1));
    const b = new MemoryBlockBackend(1024, { fault: (op, offset) => (op === 'write' && offset >= 512 ? 'quota' : undefined) });
    b.write(0, Uint8Array.of(1));
    expect(kindOf(() => b.write(512, Uint8Array.of(2)))).toBe('quota');
    expect(b.bytes[512]).toBe(0);
    expect(b.counts.write).toBe(2);
    b.close();
    expect(kindOf(() => b.read(0, new Uint8Array(1)))).toBe('io');
  });
});
