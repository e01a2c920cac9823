/**
 * virtio-blk over a write-behind cache (its writer on the other end of a MessageChannel):
 * FLUSH completes when the writer's flush does, writes without room wait in order, and a
 * snapshot's quiesce waits for both.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { serveWriter } from '../../backends/write-behind/serve-writer.ts';
import { WriteBehindCache } from '../../backends/write-behind/write-behind-cache.ts';
import { BlkConfigOffset } from './config.ts';
import { VirtioBlkReqType as T, VirtioBlkStatus as S } from './spec.ts';
import { BlkHarness, outhdr, segment } from './testing.ts';

const pattern = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (i + seed * 13) & 0xff);
const ports: MessagePort[] = [];
afterEach(() => {
  for (const p of ports.splice(0)) p.close();
});

function behind(opts: { maxBytes?: number; fault?: MemoryBlockBackend['fault']; sendBytes?: number } = {}) {
  const medium = new MemoryBlockBackend(1 << 20, { trackDurability: true, coalesceRequests: true, fault: opts.fault });
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  serveWriter(port2, medium);
  const cache = new WriteBehindCache(medium, port1, { maxBytes: opts.maxBytes, sendAfterMs: 60_000, sendBytes: opts.sendBytes });
  return { medium, cache, h: BlkHarness.create({ backend: cache }) };
}

describe('virtio-blk over the write-behind cache', () => {
  it('FLUSH completes only once the writer has made the writes before it durable', async () => {
    const { medium, h } = behind();
    const write = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 8), pattern(4096, 1)], writable: [1] });
    const flush = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    const first = h.kick();
    expect(first.map((u) => u.head)).toEqual([write.head]); // the write completes from the cache
    expect(h.device.outstandingWork).toMatch(/flush/);
    expect(medium.durable!.subarray(4096, 8192)).toEqual(new Uint8Array(4096));
    await vi.waitFor(() => expect(h.queue.used().map((u) => u.head)).toEqual([flush.head]), { timeout: 5000 });
    expect(h.status(flush)).toBe(S.VIRTIO_BLK_S_OK);
    expect(medium.durable!.subarray(4096, 8192)).toEqual(pattern(4096, 1));
    expect(h.device.outstandingWork).toBeUndefined();
    expect(h.device.stats.asyncFlushes).toBe(1);
  });

  it('a FLUSH the writer fails is IOERR, and the host hears why', async () => {
    const { h } = behind({ fault: (op) => (op === 'write' ? 'quota' : undefined) });
    h.write(0, pattern(4096, 1));
    const flush = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    expect(h.kick()).toEqual([]);
    await vi.waitFor(() => expect(h.queue.used().length).toBe(1), { timeout: 5000 });
    expect(h.status(flush)).toBe(S.VIRTIO_BLK_S_IOERR);
    expect(h.backendErrors.map((e) => e.kind)).toEqual(['quota']);
  });

  it('writes with no room in the cache wait, in order with what follows, until the writer frees it', async () => {
    const { cache, h } = behind({ maxBytes: 8192 });
    const subs = [0, 8, 16].map((sector, i) => h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, sector), pattern(4096, i + 1)], writable: [1] }));
    const read = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 16)], writable: [4096, 1] });
    const first = h.kick();
    expect(first.map((u) => u.head)).toEqual([subs[0]!.head, subs[1]!.head]);
    expect(h.device.outstandingWork).toMatch(/room/);
    expect(h.device.stats.backendWaits).toBe(1);
    await vi.waitFor(() => expect(h.queue.used().map((u) => u.head)).toEqual([subs[2]!.head, read.head]), { timeout: 5000 });
    expect(h.writableBytes(read).subarray(0, 4096)).toEqual(pattern(4096, 3)); // the read came after the write it follows
    expect(cache.stats.waitsForRoom).toBe(1);
  });

  it('write-through: a write completes only after the writer flushed it', async () => {
    const { medium, h } = behind();
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
    const write = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 0), pattern(4096, 5)], writable: [1] });
    const read = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 64)], writable: [512, 1] });
    expect(h.kick().map((u) => u.head)).toEqual([read.head]); // reads need no flush
    await vi.waitFor(() => expect(h.queue.used().map((u) => u.head)).toEqual([write.head]), { timeout: 5000 });
    expect(medium.durable!.subarray(0, 4096)).toEqual(pattern(4096, 5));
  });

  it("quiesce waits for a held FLUSH and the cache's blocks; a reset drops held chains", async () => {
    const { medium, cache, h } = behind();
    h.write(0, pattern(4096, 7));
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    h.kick();
    h.write(8, pattern(4096, 8)); // after the FLUSH: cached only
    await h.device.settleNow();
    expect(h.device.outstandingWork).toBeUndefined();
    expect(cache.cachedWriteBytes).toBe(0);
    expect(medium.durable!.subarray(4096, 8192)).toEqual(pattern(4096, 8));
    expect(h.queue.used().length).toBe(1); // the held FLUSH completed

    h.write(16, pattern(4096, 9));
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    h.kick();
    h.device.reset();
    await cache.whenIdle();
    expect(h.device.outstandingWork).toBeUndefined();
    expect(h.queue.used()).toEqual([]); // the reset discarded the chain: nothing completes into the ring
  });

  it('any batch of writes, reads, zeroes and FLUSHes completes OK, in order, within the slab, and settles to the model', async () => {
    const DISK = 1 << 20;
    const request = fc.oneof(
      fc.record({ kind: fc.constant('out' as const), sector: fc.nat(DISK / 512 - 64), sectors: fc.integer({ min: 1, max: 40 }), seed: fc.nat(200) }),
      fc.record({ kind: fc.constant('in' as const), sector: fc.nat(DISK / 512 - 64), sectors: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('zero' as const), sector: fc.nat(DISK / 512 - 64), sectors: fc.integer({ min: 1, max: 24 }) }),
      fc.record({ kind: fc.constant('flush' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(request, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 6, max: 24 }), async (batches, slabBlocks) => {
        const { medium, cache, h } = behind({ maxBytes: slabBlocks * 4096, sendBytes: 8192 });
        const model = new Uint8Array(DISK);
        for (const batch of batches) {
          const subs = batch.map((r) => {
            if (r.kind === 'out') {
              const data = pattern(r.sectors * 512, r.seed);
              model.set(data, r.sector * 512);
              return { r, sub: h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, r.sector), data], writable: [1] }) };
            }
            if (r.kind === 'in') return { r, sub: h.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, r.sector)], writable: [r.sectors * 512, 1] }), expected: model.slice(r.sector * 512, (r.sector + r.sectors) * 512) };
            if (r.kind === 'zero') {
              model.fill(0, r.sector * 512, (r.sector + r.sectors) * 512);
              return { r, sub: h.add({ readable: [outhdr(T.VIRTIO_BLK_T_WRITE_ZEROES), segment(r.sector, r.sectors)], writable: [1] }) };
            }
            return { r, sub: h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] }), durable: model.slice() };
          });
          const done = new Set(h.kick().map((u) => u.head));
          await vi.waitFor(
            () => {
              for (const u of h.queue.used()) done.add(u.head);
              expect(done.size).toBe(subs.length);
            },
            { timeout: 10_000, interval: 2 },
          );
          expect(cache.cachedWriteBytes).toBeLessThanOrEqual(slabBlocks * 4096);
          for (const { sub, expected } of subs) {
            expect(h.status(sub)).toBe(S.VIRTIO_BLK_S_OK);
            if (expected) expect(Buffer.compare(h.writableBytes(sub).subarray(0, expected.length), expected)).toBe(0);
          }
          const lastFlush = subs.filter((s) => s.durable).pop();
          // Everything before the last FLUSH is durable; what came after may be too.
          if (lastFlush && !subs.slice(subs.indexOf(lastFlush) + 1).some((s) => s.r.kind !== 'in')) {
            expect(Buffer.compare(medium.durable!, lastFlush.durable!)).toBe(0);
          }
          h.driver.recycleBuffers();
        }
        await h.device.settleNow();
        expect(h.device.outstandingWork).toBeUndefined();
        expect(Buffer.compare(medium.durable!, model)).toBe(0);
      }),
      { numRuns: 40 },
    );
  });
});
