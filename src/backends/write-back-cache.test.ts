import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockBackendError, type BlockBackend } from './block-backend.ts';
import { MemoryBlockBackend, type BlockOp } from './memory-block-backend.ts';
import { CACHE_BLOCK, WriteBackCache, type CacheTimer } from './write-back-cache.ts';

const KiB = 1024;

/** A timer the test fires by hand. */
function manualTimer(): { timer: CacheTimer; pending: () => number; fire: () => void } {
  const jobs = new Map<number, () => void>();
  let id = 0;
  return {
    timer: (job) => {
      const mine = ++id;
      jobs.set(mine, job);
      return () => jobs.delete(mine);
    },
    pending: () => jobs.size,
    fire: () => {
      const now = [...jobs.values()];
      jobs.clear();
      for (const job of now) job();
    },
  };
}

/** Records the medium's calls in order: [op, offset, length]. */
function recording(inner: MemoryBlockBackend): { backend: BlockBackend; log: Array<[BlockOp, number, number]> } {
  const log: Array<[BlockOp, number, number]> = [];
  const backend: BlockBackend = {
    size: inner.size,
    readOnly: inner.readOnly,
    read: (o, d) => inner.read(o, d),
    write: (o, s) => (log.push(['write', o, s.length]), inner.write(o, s)),
    flush: () => (log.push(['flush', 0, 0]), inner.flush()),
    discard: (o, l) => (log.push(['discard', o, l]), inner.discard(o, l)),
    writeZeroes: (o, l) => (log.push(['writeZeroes', o, l]), inner.writeZeroes(o, l)),
    close: () => inner.close(),
  };
  return { backend, log };
}

/** Byte equality without vitest's element-wise diffing (slow on 64 KiB arrays). */
const same = (a: Uint8Array | undefined, b: Uint8Array) => !!a && Buffer.compare(a, b) === 0;

const fill = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);

function setup(opts: { size?: number; maxBytes?: number; bypassBytes?: number; mergeGapBytes?: number; fault?: MemoryBlockBackend['fault'] } = {}) {
  const medium = new MemoryBlockBackend(opts.size ?? 1 << 20, { trackDurability: true, fault: opts.fault });
  const rec = recording(medium);
  const t = manualTimer();
  const cache = new WriteBackCache(rec.backend, { maxBytes: opts.maxBytes ?? 64 * KiB, bypassBytes: opts.bypassBytes, mergeGapBytes: opts.mergeGapBytes ?? 0, timer: t.timer, maxAgeMs: 500 });
  return { medium, log: rec.log, t, cache };
}

describe('WriteBackCache: write-back semantics', () => {
  it('a small write completes in the cache; reads see it; FLUSH writes it out, then flushes the medium', () => {
    const { medium, log, cache } = setup();
    const data = fill(4 * KiB, 1);
    cache.write(8 * KiB, data);
    expect(medium.bytes.subarray(8 * KiB, 12 * KiB)).toEqual(new Uint8Array(4 * KiB));
    expect(cache.cachedWriteBytes).toBe(4 * KiB);
    const back = new Uint8Array(4 * KiB);
    cache.read(8 * KiB, back);
    expect(back).toEqual(data);
    cache.flush();
    expect(log).toEqual([['write', 8 * KiB, 4 * KiB], ['flush', 0, 0]]);
    expect(medium.durable!.subarray(8 * KiB, 12 * KiB)).toEqual(data);
    expect(cache.cachedWriteBytes).toBe(0);
  });

  it('epochs stay in order: writes after a FLUSH reach the medium only after that FLUSH', () => {
    const { log, cache } = setup();
    cache.write(40 * KiB, fill(4 * KiB, 1));
    cache.write(0, fill(4 * KiB, 2));
    cache.flush();
    cache.write(20 * KiB, fill(4 * KiB, 3));
    cache.flush();
    // Within an epoch by ascending offset; each epoch closed by its flush.
    expect(log).toEqual([
      ['write', 0, 4 * KiB],
      ['write', 40 * KiB, 4 * KiB],
      ['flush', 0, 0],
      ['write', 20 * KiB, 4 * KiB],
      ['flush', 0, 0],
    ]);
  });

  it('an overwritten block goes out once, with its newest bytes', () => {
    const { medium, log, cache } = setup();
    cache.write(4 * KiB, fill(4 * KiB, 1));
    cache.write(4 * KiB + 512, fill(512, 9));
    cache.flush();
    const want = fill(4 * KiB, 1);
    want.set(fill(512, 9), 512);
    expect(medium.bytes.subarray(4 * KiB, 8 * KiB)).toEqual(want);
    expect(log.filter(([op]) => op === 'write')).toHaveLength(1);
  });

  it('neighbouring blocks written in order go out in one medium call', () => {
    const { medium, log, cache } = setup();
    for (let i = 0; i < 8; i++) cache.write(i * 4 * KiB, fill(4 * KiB, i));
    cache.flush();
    expect(log).toEqual([['write', 0, 32 * KiB], ['flush', 0, 0]]);
    for (let i = 0; i < 8; i++) expect(medium.bytes.subarray(i * 4 * KiB, (i + 1) * 4 * KiB)).toEqual(fill(4 * KiB, i));
  });

  it('blocks a small gap apart go out in one call, the gap written back as the medium had it', () => {
    const { medium, log, cache } = setup({ mergeGapBytes: 8 * KiB });
    medium.bytes.set(fill(64 * KiB, 7), 0);
    cache.write(12 * KiB, fill(4 * KiB, 2)); // cached out of disk order: gathered, not a slab view
    cache.write(0, fill(4 * KiB, 1));
    cache.write(44 * KiB, fill(4 * KiB, 3)); // 28 KiB after the last: its own call
    cache.flush();
    expect(log).toEqual([['write', 0, 16 * KiB], ['write', 44 * KiB, 4 * KiB], ['flush', 0, 0]]);
    const want = fill(64 * KiB, 7);
    want.set(fill(4 * KiB, 1), 0);
    want.set(fill(4 * KiB, 2), 12 * KiB);
    want.set(fill(4 * KiB, 3), 44 * KiB);
    expect(same(medium.bytes.subarray(0, 64 * KiB), want)).toBe(true);
  });

  it('a merged write-out call never spans more than 1 MiB', () => {
    const { log, cache } = setup({ maxBytes: 4 << 20, mergeGapBytes: 64 * KiB, size: 4 << 20 });
    for (let at = 0; at < 3 << 20; at += 32 * KiB) cache.write(at, fill(4 * KiB, at));
    cache.flush();
    const writes = log.filter(([op]) => op === 'write');
    // 32 blocks per MiB: each call takes one MiB's worth, first block to last (996 KiB).
    expect(writes).toEqual([0, 1, 2].map((m) => ['write', m << 20, 996 * KiB]));
  });

  it('a write-out fills in at most maxBytes of gaps, however the blocks are spread', () => {
    // 4 blocks 60 KiB apart would merge into one 184 KiB call; the budget (16 KiB) allows none of the gaps.
    const { log, cache } = setup({ maxBytes: 4 * CACHE_BLOCK, mergeGapBytes: 64 * KiB });
    for (let k = 0; k < 4; k++) cache.write(k * 64 * KiB, fill(4 * KiB, k));
    cache.flush();
    expect(log.filter(([op]) => op === 'write').map(([, o, l]) => [o, l])).toEqual([0, 1, 2, 3].map((k) => [k * 64 * KiB, 4 * KiB]));
  });

  it('a partial block is completed from the medium before it is cached', () => {
    const { medium, cache } = setup();
    medium.bytes.set(fill(4 * KiB, 5), 0);
    cache.write(1024, fill(512, 6));
    cache.flush();
    const want = fill(4 * KiB, 5);
    want.set(fill(512, 6), 1024);
    expect(medium.bytes.subarray(0, 4 * KiB)).toEqual(want);
  });

  it('a short last block (disk size not a multiple of 4 KiB) is cached and written out at its size', () => {
    const { medium, log, cache } = setup({ size: 8 * KiB + 1024 });
    cache.write(8 * KiB, fill(1024, 3));
    const back = new Uint8Array(1024);
    cache.read(8 * KiB, back);
    expect(back).toEqual(fill(1024, 3));
    cache.flush();
    expect(log[0]).toEqual(['write', 8 * KiB, 1024]);
    expect(medium.bytes.subarray(8 * KiB)).toEqual(fill(1024, 3));
  });

  it('a read spanning cached and uncached blocks gets each from the right place', () => {
    const { medium, cache } = setup();
    medium.bytes.set(fill(16 * KiB, 1), 0);
    cache.write(4 * KiB, fill(4 * KiB, 2));
    const back = new Uint8Array(12 * KiB - 512);
    cache.read(512, back);
    const want = fill(16 * KiB, 1);
    want.set(fill(4 * KiB, 2), 4 * KiB);
    expect(back).toEqual(want.subarray(512, 12 * KiB));
  });
});

describe('WriteBackCache: bounds and triggers', () => {
  it('the timer writes out (without a flush) maxAgeMs after the cache became dirty; none while clean', () => {
    const { medium, log, t, cache } = setup();
    expect(t.pending()).toBe(0);
    cache.write(0, fill(4 * KiB, 1));
    cache.write(8 * KiB, fill(4 * KiB, 2));
    expect(t.pending()).toBe(1);
    t.fire();
    expect(log).toEqual([['write', 0, 4 * KiB], ['write', 8 * KiB, 4 * KiB]]);
    expect(medium.bytes.subarray(0, 4 * KiB)).toEqual(fill(4 * KiB, 1));
    expect(cache.cachedWriteBytes).toBe(0);
    expect(t.pending()).toBe(0);
    cache.flush(); // nothing cached: only the medium's flush
    expect(t.pending()).toBe(0);
  });

  it('never holds more than maxBytes: the write that finds it full writes everything out first', () => {
    const { medium, log, cache } = setup({ maxBytes: 4 * CACHE_BLOCK });
    for (let i = 0; i < 4; i++) cache.write(i * 8 * KiB, fill(4 * KiB, i));
    expect(log).toEqual([]);
    cache.write(100 * KiB, fill(4 * KiB, 9));
    expect(log.map(([op, o]) => [op, o])).toEqual([0, 8, 16, 24].map((k) => ['write', k * KiB]));
    expect(cache.cachedWriteBytes).toBe(4 * KiB);
    expect(cache.stats.fullWriteOuts).toBe(1);
    expect(medium.counts.flush).toBe(0);
  });

  it('large writes bypass the cache and update the cached blocks they overlap', () => {
    const { medium, log, cache } = setup({ bypassBytes: 32 * KiB });
    cache.write(0, fill(4 * KiB, 1)); // covered by the big write: dropped
    cache.write(36 * KiB, fill(4 * KiB, 2)); // overlapped in part: patched
    const big = fill(38 * KiB, 3);
    cache.write(0, big);
    expect(log).toEqual([['write', 0, 38 * KiB]]);
    expect(cache.cachedWriteBytes).toBe(4 * KiB);
    cache.flush();
    const want = fill(4 * KiB, 2);
    want.set(big.subarray(36 * KiB), 0);
    expect(medium.bytes.subarray(0, 36 * KiB)).toEqual(big.subarray(0, 36 * KiB));
    expect(medium.bytes.subarray(36 * KiB, 40 * KiB)).toEqual(want);
  });

  it('discard and write-zeroes read back as zeroes even over cached blocks', () => {
    const { medium, cache } = setup();
    medium.bytes.fill(0xee, 0, 32 * KiB);
    cache.write(0, fill(4 * KiB, 1));
    cache.write(8 * KiB, fill(4 * KiB, 2));
    cache.discard(0, 4 * KiB);
    cache.writeZeroes(8 * KiB + 1024, 1024);
    const back = new Uint8Array(12 * KiB);
    cache.read(0, back);
    expect(back.subarray(0, 4 * KiB)).toEqual(new Uint8Array(4 * KiB));
    expect(back.subarray(4 * KiB, 8 * KiB)).toEqual(new Uint8Array(4 * KiB).fill(0xee));
    const want = fill(4 * KiB, 2);
    want.fill(0, 1024, 2048);
    expect(back.subarray(8 * KiB)).toEqual(want);
    cache.flush();
    expect(medium.bytes.subarray(0, 12 * KiB)).toEqual(back);
  });

  it('refuses a maxBytes that is not a positive multiple of the block', () => {
    const medium = new MemoryBlockBackend(64 * KiB);
    expect(() => new WriteBackCache(medium, { maxBytes: 1000 })).toThrow(RangeError);
    expect(() => new WriteBackCache(medium, { maxBytes: 0 })).toThrow(RangeError);
  });
});

describe('WriteBackCache: failures keep what completed', () => {
  it('a failed write-out keeps its blocks; FLUSH throws the medium’s error; a retry delivers them', () => {
    let full = true;
    const { medium, cache } = setup({ fault: (op) => (op === 'write' && full ? 'quota' : undefined) });
    cache.write(0, fill(4 * KiB, 1));
    cache.write(12 * KiB, fill(4 * KiB, 2));
    expect(() => cache.flush()).toThrow(BlockBackendError);
    expect(cache.cachedWriteBytes).toBe(8 * KiB);
    expect(medium.counts.flush).toBe(0); // the medium was not declared durable
    full = false;
    cache.flush();
    expect(medium.durable!.subarray(12 * KiB, 16 * KiB)).toEqual(fill(4 * KiB, 2));
    expect(cache.cachedWriteBytes).toBe(0);
  });

  it('the timer retries a failed write-out at its next period', () => {
    let full = true;
    const { medium, t, cache } = setup({ fault: (op) => (op === 'write' && full ? 'io' : undefined) });
    cache.write(0, fill(4 * KiB, 1));
    t.fire();
    expect(cache.cachedWriteBytes).toBe(4 * KiB);
    expect(t.pending()).toBe(1);
    full = false;
    t.fire();
    expect(medium.bytes.subarray(0, 4 * KiB)).toEqual(fill(4 * KiB, 1));
    expect(t.pending()).toBe(0);
  });

  it('a full cache whose write-out fails fails the new write and stays within its bound', () => {
    let full = false;
    const { cache } = setup({ maxBytes: 2 * CACHE_BLOCK, fault: (op) => (op === 'write' && full ? 'quota' : undefined) });
    cache.write(0, fill(4 * KiB, 1));
    cache.write(8 * KiB, fill(4 * KiB, 2));
    full = true;
    expect(() => cache.write(16 * KiB, fill(4 * KiB, 3))).toThrow(/quota/);
    expect(cache.cachedWriteBytes).toBe(2 * CACHE_BLOCK);
  });

  it('close() writes out, flushes and closes the medium; read-only disks refuse writes', () => {
    const { medium, cache } = setup();
    cache.write(0, fill(4 * KiB, 4));
    cache.close();
    expect(medium.durable!.subarray(0, 4 * KiB)).toEqual(fill(4 * KiB, 4));
    expect(medium.closed).toBe(true);
    const ro = new WriteBackCache(new MemoryBlockBackend(64 * KiB, { readOnly: true }));
    expect(() => ro.write(0, new Uint8Array(512))).toThrow(/read-only/);
    expect(() => ro.write(-512, new Uint8Array(512))).toThrow(BlockBackendError);
  });
});

describe('WriteBackCache: against a plain disk (property)', () => {
  type Op =
    | { kind: 'write'; offset: number; len: number; seed: number }
    | { kind: 'read'; offset: number; len: number }
    | { kind: 'zero'; offset: number; len: number }
    | { kind: 'flush' }
    | { kind: 'timer' };
  const SIZE = 64 * KiB + 1536; // a short last block too
  const sectors = SIZE / 512;
  const range = fc
    .tuple(fc.integer({ min: 0, max: sectors - 1 }), fc.integer({ min: 1, max: 40 }))
    .map(([s, n]) => ({ offset: s * 512, len: Math.min(n, sectors - s) * 512 }));
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(range, fc.nat(255)).map(([r, seed]) => ({ kind: 'write' as const, ...r, seed })) },
    { weight: 3, arbitrary: range.map((r) => ({ kind: 'read' as const, ...r })) },
    { weight: 1, arbitrary: range.map((r) => ({ kind: 'zero' as const, ...r })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'timer' as const }) },
  );

  it('reads always match a plain disk; after FLUSH the medium is durable and equal; the bound holds', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom(0, 4 * KiB, 64 * KiB), (ops, slots, mergeGapBytes) => {
        const model = new MemoryBlockBackend(SIZE);
        const medium = new MemoryBlockBackend(SIZE, { trackDurability: true });
        const t = manualTimer();
        const cache = new WriteBackCache(medium, { maxBytes: slots * CACHE_BLOCK, bypassBytes: 8 * KiB, mergeGapBytes, timer: t.timer });
        for (const o of ops) {
          if (o.kind === 'write') {
            model.write(o.offset, fill(o.len, o.seed));
            cache.write(o.offset, fill(o.len, o.seed));
          } else if (o.kind === 'read') {
            const a = new Uint8Array(o.len);
            const b = new Uint8Array(o.len);
            model.read(o.offset, a);
            cache.read(o.offset, b);
            expect(same(b, a)).toBe(true);
          } else if (o.kind === 'zero') {
            model.writeZeroes(o.offset, o.len);
            cache.writeZeroes(o.offset, o.len);
          } else if (o.kind === 'flush') {
            cache.flush();
            expect(same(medium.durable, model.bytes)).toBe(true);
          } else {
            t.fire();
            expect(same(medium.bytes, model.bytes)).toBe(true);
          }
          expect(cache.cachedWriteBytes).toBeLessThanOrEqual(slots * CACHE_BLOCK);
        }
        cache.close();
        expect(same(medium.durable, model.bytes)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
