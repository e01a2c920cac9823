import { describe, expect, it } from 'vitest';
import { ByteSlab } from './byte-slab.ts';

describe('ByteSlab', () => {
  it('hands out zeroed ranges that never overlap, 8-aligned, sharing a buffer', () => {
    const slab = new ByteSlab(4096);
    const taken = [5, 1, 64, 300, 7, 1000].map((n) => slab.take(n));
    taken.forEach((r, i) => {
      expect(r.every((b) => b === 0)).toBe(true);
      expect(r.byteOffset % 8).toBe(0);
      r.fill(i + 1);
    });
    // Each range still holds what was written to it: no two share a byte.
    taken.forEach((r, i) => expect(r.every((b) => b === i + 1)).toBe(true));
    expect(new Set(taken.map((r) => r.buffer)).size).toBe(1);
    expect(taken.map((r) => r.length)).toEqual([5, 1, 64, 300, 7, 1000]);
  });

  it('starts a new buffer when a range does not fit, leaving the old ranges as they were', () => {
    const slab = new ByteSlab(1024, 1024);
    const a = slab.take(1000).fill(0xaa);
    const b = slab.take(100);
    expect(b.buffer).not.toBe(a.buffer);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(a.every((x) => x === 0xaa)).toBe(true);
  });

  it('gives a range over its limit a buffer of its own', () => {
    const slab = new ByteSlab(4096, 1024);
    const small = slab.take(10);
    const big = slab.take(1025);
    expect(big.buffer).not.toBe(small.buffer);
    expect(big.byteLength).toBe(big.buffer.byteLength);
    expect(slab.take(10).buffer).toBe(small.buffer);
  });

  it('takes empty ranges', () => {
    expect(new ByteSlab(64).take(0).length).toBe(0);
  });

  it('rewind hands the same bytes out again, from the start of the current slab', () => {
    const slab = new ByteSlab(1024, 1024);
    const a = slab.take(100).fill(1);
    slab.take(50);
    slab.rewind();
    const b = slab.take(100);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset);
    expect(b[0]).toBe(1); // not zeroed again: the taker writes it all
  });
});
