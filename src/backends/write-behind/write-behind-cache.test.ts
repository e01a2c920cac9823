/**
 * The write-behind cache against a real writer: serveWriter on the other end of a
 * MessageChannel, storing into a memory disk that keeps what a flush made durable. The
 * cache reads that same disk directly, as the VM worker reads its own handle on the file.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BlockBackendError } from '../block-backend.ts';
import { MemoryBlockBackend } from '../memory-block-backend.ts';
import { serveWriter } from './serve-writer.ts';
import { WriteBehindCache, type WriteBehindOptions } from './write-behind-cache.ts';

const KiB = 1024;
const fill = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed * 7 + 1) & 0xff);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

const channels: MessagePort[] = [];
afterEach(() => {
  for (const p of channels.splice(0)) p.close();
});

function setup(opts: WriteBehindOptions & { size?: number; fault?: MemoryBlockBackend['fault'] } = {}) {
  const medium = new MemoryBlockBackend(opts.size ?? 1 << 20, { trackDurability: true, fault: opts.fault });
  const { port1, port2 } = new MessageChannel();
  channels.push(port1, port2);
  serveWriter(port2, medium);
  // Sends only when asked (flush) unless a test says otherwise.
  const cache = new WriteBehindCache(medium, port1, { sendBytes: 1 << 30, sendAfterMs: 60_000, ...opts });
  return { medium, cache };
}

describe('WriteBehindCache', () => {
  it('a write completes in the cache; reads see it at once; flushAsync resolves once it is durable', async () => {
    const { medium, cache } = setup();
    cache.write(8 * KiB, fill(4 * KiB, 1));
    expect(medium.counts.write).toBe(0);
    expect(cache.cachedWriteBytes).toBe(4 * KiB);
    const back = new Uint8Array(12 * KiB);
    cache.read(4 * KiB, back);
    expect(same(back.subarray(4 * KiB, 8 * KiB), fill(4 * KiB, 1))).toBe(true);
    expect(same(back.subarray(0, 4 * KiB), new Uint8Array(4 * KiB))).toBe(true);
    await cache.flushAsync();
    expect(same(medium.durable!.subarray(8 * KiB, 12 * KiB), fill(4 * KiB, 1))).toBe(true);
    expect(cache.cachedWriteBytes).toBe(0);
    expect(cache.stats.flushes).toBe(1);
  });

  it('dirty blocks go out by themselves: before the next request once sendBytes are dirty, or sendAfterMs after the first', async () => {
    const bySize = setup({ sendBytes: 8 * KiB });
    bySize.cache.write(0, fill(4 * KiB, 1));
    expect(bySize.cache.admit('write', 0, 512)).toBeUndefined();
    expect(bySize.cache.stats.batches).toBe(0);
    bySize.cache.write(64 * KiB, fill(4 * KiB, 2));
    expect(bySize.cache.stats.batches).toBe(0); // never between the pieces of one request
    expect(bySize.cache.admit('write', 0, 512)).toBeUndefined();
    expect(bySize.cache.stats.batches).toBe(1);
    await bySize.cache.whenIdle();
    expect(bySize.medium.counts.write).toBe(2); // two runs: the blocks are not neighbours
    expect(bySize.cache.cachedWriteBytes).toBe(0);

    const byAge = setup({ sendAfterMs: 10 });
    byAge.cache.write(0, fill(8 * KiB, 3));
    expect(byAge.cache.stats.batches).toBe(0);
    await vi.waitFor(() => expect(byAge.cache.stats.batches).toBe(1), { timeout: 5000 });
    await byAge.cache.whenIdle();
    expect(byAge.medium.counts.write).toBe(1); // neighbours: one run
    expect(same(byAge.medium.bytes.subarray(0, 8 * KiB), fill(8 * KiB, 3))).toBe(true);
  });

  it('a write to a block in flight takes a fresh slot: the batch is stored as sent, then the newer bytes', async () => {
    const { medium, cache } = setup({ sendBytes: 4 * KiB });
    const seen: Uint8Array[] = [];
    const write = medium.write.bind(medium);
    medium.write = (offset, src) => (seen.push(src.slice()), write(offset, src));
    cache.write(0, fill(4 * KiB, 1));
    expect(cache.admit('write', 512, 512)).toBeUndefined(); // sends what is dirty, before the next request
    expect(cache.stats.batches).toBe(1);
    cache.write(512, fill(512, 9)); // a partial rewrite while the batch is in flight
    expect(cache.stats.rewritesInFlight).toBe(1);
    const expected = fill(4 * KiB, 1);
    expected.set(fill(512, 9), 512);
    const back = new Uint8Array(4 * KiB);
    cache.read(0, back);
    expect(same(back, expected)).toBe(true);
    await cache.flushAsync();
    expect(seen.length).toBe(2);
    expect(same(seen[0]!, fill(4 * KiB, 1))).toBe(true); // the batch's bytes did not change under it
    expect(same(medium.durable!.subarray(0, 4 * KiB), expected)).toBe(true);
  });

  it('admit: a write with no free slot waits for the writer, then runs', async () => {
    const { cache } = setup({ maxBytes: 8 * KiB });
    expect(cache.admit('write', 0, 8 * KiB)).toBeUndefined();
    cache.write(0, fill(8 * KiB, 1));
    const wait = cache.admit('write', 16 * KiB, 4 * KiB);
    expect(wait).toBeInstanceOf(Promise);
    expect(cache.stats.batches).toBe(1); // asking sent the dirty blocks
    expect(() => cache.write(16 * KiB, fill(4 * KiB, 2))).toThrow(BlockBackendError);
    await wait;
    expect(cache.admit('write', 16 * KiB, 4 * KiB)).toBeUndefined();
    cache.write(16 * KiB, fill(4 * KiB, 2));
  });

  it('zeroes wait until no batch is in flight, then drop and zero what they cover', async () => {
    const { medium, cache } = setup({ sendBytes: 4 * KiB });
    cache.write(0, fill(4 * KiB, 1));
    const wait = cache.admit('zero', 0, 0);
    expect(wait).toBeInstanceOf(Promise);
    expect(() => cache.writeZeroes(0, 4 * KiB)).toThrow(BlockBackendError);
    await wait;
    expect(cache.admit('zero', 0, 0)).toBeUndefined();
    cache.write(8 * KiB, fill(4 * KiB, 2));
    expect(cache.admit('write', 0, 0)).toBeUndefined(); // sends it; stored, then zeroed in part
    await cache.whenIdle();
    cache.writeZeroes(0, 10 * KiB);
    const back = new Uint8Array(12 * KiB);
    cache.read(0, back);
    const expected = new Uint8Array(12 * KiB);
    expected.set(fill(4 * KiB, 2).subarray(2 * KiB), 10 * KiB);
    expect(same(back, expected)).toBe(true);
    await cache.flushAsync();
    expect(same(medium.durable!.subarray(0, 12 * KiB), expected)).toBe(true);
  });

  it('a failed batch: the flush after it fails, the blocks stay readable and go out again; the next flush succeeds', async () => {
    let full = true;
    const { medium, cache } = setup({ fault: (op) => (op === 'write' && full ? 'quota' : undefined), retryMs: 0 });
    cache.write(0, fill(4 * KiB, 1));
    await expect(cache.flushAsync()).rejects.toMatchObject({ kind: 'quota' });
    expect(cache.stats.failedBatches).toBe(1);
    expect(cache.cachedWriteBytes).toBe(4 * KiB);
    const back = new Uint8Array(4 * KiB);
    cache.read(0, back);
    expect(same(back, fill(4 * KiB, 1))).toBe(true);
    full = false;
    await cache.flushAsync();
    expect(same(medium.durable!.subarray(0, 4 * KiB), fill(4 * KiB, 1))).toBe(true);
    expect(cache.cachedWriteBytes).toBe(0);
  });

  it('a flush with nothing sent since the last good one does not reach the writer', async () => {
    const { medium, cache } = setup();
    await cache.flushAsync(); // the first always goes (nothing says the medium was flushed before)
    expect(medium.counts.flush).toBe(1);
    await cache.flushAsync();
    expect(medium.counts.flush).toBe(1);
    expect(cache.stats.flushesSkipped).toBe(1);
    cache.write(0, fill(512, 1));
    await cache.flushAsync();
    expect(medium.counts.flush).toBe(2);
  });

  it('a flush with nothing new while the previous one still runs ends only when that one does', async () => {
    const { medium, cache } = setup();
    await cache.flushAsync();
    cache.write(0, fill(4 * KiB, 3));
    const first = cache.flushAsync();
    let secondDone = false;
    const second = cache.flushAsync().then(() => (secondDone = true));
    expect(cache.stats.flushesSkipped).toBe(1);
    await new Promise((r) => setImmediate(r));
    // The writer has not answered the first yet, so the data is not known durable: neither is done.
    if (cache.pendingMessages > 0) expect(secondDone).toBe(false);
    await Promise.all([first, second]);
    expect(secondDone).toBe(true);
    expect(same(medium.durable!.subarray(0, 4 * KiB), fill(4 * KiB, 3))).toBe(true);
  });

  it('close() stores and flushes everything, then releases both handles', async () => {
    let closed = 0;
    const { medium, cache } = setup({ onClosed: () => closed++ });
    cache.write(4 * KiB, fill(64 * KiB, 5));
    await cache.close();
    expect(same(medium.durable!.subarray(4 * KiB, 68 * KiB), fill(64 * KiB, 5))).toBe(true);
    expect(closed).toBe(1);
  });

  it('a dead writer: flushes fail with io, writes fail, reads still see the cache', async () => {
    const { cache } = setup();
    cache.write(0, fill(4 * KiB, 1));
    cache.writerFailed(new Error('worker crashed'));
    await expect(cache.flushAsync()).rejects.toMatchObject({ kind: 'io' });
    expect(() => cache.write(0, fill(512, 2))).toThrow(/worker crashed/);
    const back = new Uint8Array(4 * KiB);
    cache.read(0, back);
    expect(same(back, fill(4 * KiB, 1))).toBe(true);
  });

  it('any mix of writes, zeroes, flushes and waits reads back like a plain array, and closes to it', async () => {
    const size = 256 * KiB;
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), sector: fc.nat(size / 512 - 1), sectors: fc.integer({ min: 1, max: 80 }), seed: fc.nat(250) }),
      fc.record({ kind: fc.constant('zero' as const), sector: fc.nat(size / 512 - 1), sectors: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('read' as const), sector: fc.nat(size / 512 - 1), sectors: fc.integer({ min: 1, max: 80 }) }),
      fc.record({ kind: fc.constant('flush' as const) }),
      fc.record({ kind: fc.constant('pause' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), fc.integer({ min: 2, max: 16 }), async (ops, slabBlocks) => {
        const { medium, cache } = setup({ size, maxBytes: slabBlocks * 4 * KiB, sendBytes: 8 * KiB });
        const model = new Uint8Array(size);
        const clip = (sector: number, sectors: number) => [sector * 512, Math.min(sectors * 512, size - sector * 512)] as const;
        for (const o of ops) {
          if (o.kind === 'write') {
            const [at, len] = clip(o.sector, o.sectors);
            for (let w = cache.admit('write', at, len); w; w = cache.admit('write', at, len)) await w;
            const spanned = Math.floor((at + len - 1) / (4 * KiB)) - Math.floor(at / (4 * KiB)) + 1;
            if (spanned > slabBlocks) continue; // more than the cache holds: the device's requests always fit
            const data = fill(len, o.seed);
            cache.write(at, data);
            model.set(data, at);
          } else if (o.kind === 'zero') {
            const [at, len] = clip(o.sector, o.sectors);
            for (let w = cache.admit('zero', 0, 0); w; w = cache.admit('zero', 0, 0)) await w;
            cache.writeZeroes(at, len);
            model.fill(0, at, at + len);
          } else if (o.kind === 'read') {
            const [at, len] = clip(o.sector, o.sectors);
            const back = new Uint8Array(len);
            cache.read(at, back);
            expect(same(back, model.subarray(at, at + len))).toBe(true);
          } else if (o.kind === 'flush') {
            const snapshot = model.slice();
            await cache.flushAsync();
            expect(same(medium.durable!, snapshot)).toBe(true);
          } else await cache.whenIdle();
        }
        await cache.close();
        expect(same(medium.durable!, model)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
