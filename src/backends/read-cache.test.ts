/**
 * The read cache over a memory disk that counts its calls: reads come back as the disk holds
 * them whatever the mix of writes, zeroes and evictions, and held chunks save the inner reads.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockBackendError } from './block-backend.ts';
import { MemoryBlockBackend } from './memory-block-backend.ts';
import { READ_AHEAD_BYTES, READ_CHUNK, ReadCache } from './read-cache.ts';

const KiB = 1024;
function fill(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return out;
}
/** Byte arrays compared as buffers: expect().toEqual walks them element by element, too slowly here. */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

function setup(size: number, maxBytes?: number) {
  const inner = new MemoryBlockBackend(fill(size, 3));
  return { inner, cache: new ReadCache(inner, { maxBytes }) };
}

function readBack(cache: ReadCache, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  cache.read(offset, out);
  return out;
}

describe('ReadCache', () => {
  it('serves a chunk it holds without asking the inner disk again', () => {
    const { inner, cache } = setup(1 << 20);
    expect(readBack(cache, 8 * KiB, 4 * KiB)).toEqual(inner.bytes.subarray(8 * KiB, 12 * KiB));
    const calls = inner.counts.read;
    expect(readBack(cache, 20 * KiB, 4 * KiB)).toEqual(inner.bytes.subarray(20 * KiB, 24 * KiB));
    expect(inner.counts.read).toBe(calls);
    expect(cache.readCache).toMatchObject({ hits: 1, misses: 1, filledBytes: READ_CHUNK, heldBytes: READ_CHUNK });
  });

  it('fills a request’s missing chunks in one call, and reads ahead only when sequential', () => {
    const { inner, cache } = setup(8 << 20);
    readBack(cache, 0, 256 * KiB);
    expect(inner.counts.read).toBe(1);
    expect(cache.readCache.filledBytes).toBe(256 * KiB);
    // The next read starts where the fill ended: it reads 1 MiB past itself.
    readBack(cache, 256 * KiB, 4 * KiB);
    expect(inner.counts.read).toBe(2);
    expect(cache.readCache.filledBytes).toBe(256 * KiB + READ_CHUNK + READ_AHEAD_BYTES);
    // A read elsewhere fills only its own chunk.
    readBack(cache, 6 << 20, 4 * KiB);
    expect(cache.readCache.filledBytes).toBe(256 * KiB + 2 * READ_CHUNK + READ_AHEAD_BYTES);
  });

  it('keeps held chunks equal to the disk across writes, and drops them on zeroes and failed writes', () => {
    const { inner, cache } = setup(1 << 20);
    readBack(cache, 0, 256 * KiB);
    const data = fill(10 * KiB, 9);
    cache.write(60 * KiB, data); // across a chunk boundary
    expect(readBack(cache, 60 * KiB, 10 * KiB)).toEqual(data);
    expect(inner.bytes.subarray(60 * KiB, 70 * KiB)).toEqual(data);

    cache.writeZeroes(64 * KiB, 4 * KiB);
    expect(readBack(cache, 64 * KiB, 8 * KiB)).toEqual(inner.bytes.subarray(64 * KiB, 72 * KiB));
    expect(readBack(cache, 64 * KiB, 4 * KiB)).toEqual(new Uint8Array(4 * KiB));
    expect(cache.readCache.dropped).toBe(1);

    inner.fault = (op) => (op === 'write' ? 'io' : undefined);
    expect(() => cache.write(0, fill(4 * KiB, 1))).toThrow(BlockBackendError);
    inner.fault = undefined;
    expect(readBack(cache, 0, 4 * KiB)).toEqual(inner.bytes.subarray(0, 4 * KiB));
    expect(cache.readCache.dropped).toBe(2);
  });

  it('stays within its budget, replacing the oldest chunks', () => {
    const { inner, cache } = setup(2 << 20, 4 * READ_CHUNK);
    for (let c = 0; c < 10; c++) readBack(cache, c * READ_CHUNK * 3, 512);
    expect(cache.readCache.heldBytes).toBe(4 * READ_CHUNK);
    expect(cache.readCache.evictions).toBe(6);
    expect(readBack(cache, 0, 512)).toEqual(inner.bytes.subarray(0, 512)); // evicted: filled again
    expect(cache.readCache.misses).toBe(11);
  });

  it('passes flushAsync, admit and the write-cache figures through, and only when the inner disk has them', () => {
    const plain = new ReadCache(new MemoryBlockBackend(64 * KiB));
    expect(plain.flushAsync).toBeUndefined();
    expect(plain.admit).toBeUndefined();
    let flushed = 0;
    const inner = Object.assign(new MemoryBlockBackend(64 * KiB, { coalesceRequests: true }), {
      flushAsync: async () => void flushed++,
      admit: () => undefined,
      cachedWriteBytes: 4096,
    });
    const cache = new ReadCache(inner);
    expect(cache.coalesceRequests).toBe(true);
    expect(cache.cachedWriteBytes).toBe(4096);
    return cache.flushAsync!().then(() => expect(flushed).toBe(1));
  });

  it('reads like the disk under any mix of reads, writes, zeroes and discards (a small cache that evicts)', () => {
    const size = 13 * READ_CHUNK + 3 * 512; // the last chunk is partial
    const op = fc.record({
      kind: fc.constantFrom('read', 'read', 'write', 'zero', 'discard'),
      offset: fc.integer({ min: 0, max: size / 512 - 1 }).map((s) => s * 512),
      sectors: fc.integer({ min: 1, max: 600 }),
      seed: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), fc.integer({ min: 2, max: 16 }), (ops, slots) => {
        const { inner, cache } = setup(size, slots * READ_CHUNK);
        const model = inner.bytes.slice();
        for (const o of ops) {
          const length = Math.min(o.sectors * 512, size - o.offset);
          if (o.kind === 'read') {
            expect(same(readBack(cache, o.offset, length), model.subarray(o.offset, o.offset + length))).toBe(true);
          } else if (o.kind === 'write') {
            const data = fill(length, o.seed);
            cache.write(o.offset, data);
            model.set(data, o.offset);
          } else {
            if (o.kind === 'zero') cache.writeZeroes(o.offset, length);
            else cache.discard(o.offset, length);
            model.fill(0, o.offset, o.offset + length);
          }
          expect(cache.readCache.heldBytes).toBeLessThanOrEqual(cache.maxBytes);
        }
        expect(same(readBack(cache, 0, size), model)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
