/**
 * Properties of virtio-blk under random traffic (fast-check):
 *  - any mix of valid and invalid requests: nothing escapes the BAR handlers, the device is
 *    never put in DEVICE_NEEDS_RESET, every chain comes back, the backend is never asked
 *    for a byte outside the image, and guest memory changes only inside the chains'
 *    writable buffers (and the used ring);
 *  - valid writes and reads, split at random and batched at random, agree with a model disk.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Region } from '../virtio/queue/descriptor-chain.ts';
import { DeviceStatus } from '../virtio/constants.ts';
import type { BlockBackend } from '../backends/block-backend.ts';
import { MemoryBlockBackend } from '../backends/memory-block-backend.ts';
import { VirtioBlkReqType as T } from './blk-spec.ts';
import { BlkHarness, outhdr, pieces, segment } from './blk-testing.ts';

const DISK_SECTORS = 256;
const DISK = DISK_SECTORS * 512;

/** Passes everything through, but remembers any request outside the image. */
class RangeAssertingBackend implements BlockBackend {
  readonly violations: string[] = [];
  constructor(readonly inner: MemoryBlockBackend) {}
  get size() {
    return this.inner.size;
  }
  get readOnly() {
    return this.inner.readOnly;
  }
  private check(op: string, offset: number, length: number) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      this.violations.push(`${op} [${offset}, +${length})`);
    }
  }
  read(offset: number, dst: Uint8Array) {
    this.check('read', offset, dst.length);
    this.inner.read(offset, dst);
  }
  write(offset: number, src: Uint8Array) {
    this.check('write', offset, src.length);
    this.inner.write(offset, src);
  }
  flush() {
    this.inner.flush();
  }
  discard(offset: number, length: number) {
    this.check('discard', offset, length);
    this.inner.discard(offset, length);
  }
  writeZeroes(offset: number, length: number) {
    this.check('writeZeroes', offset, length);
    this.inner.writeZeroes(offset, length);
  }
  close() {
    this.inner.close();
  }
}

const sectorArb = fc.oneof(
  fc.integer({ min: 0, max: DISK_SECTORS + 4 }).map(BigInt),
  fc.integer({ min: DISK_SECTORS - 9, max: DISK_SECTORS + 1 }).map(BigInt), // the edge

  fc.constantFrom(2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);
const typeArb = fc.oneof(
  fc.constantFrom(T.VIRTIO_BLK_T_IN, T.VIRTIO_BLK_T_OUT, T.VIRTIO_BLK_T_FLUSH, T.VIRTIO_BLK_T_GET_ID, T.VIRTIO_BLK_T_DISCARD, T.VIRTIO_BLK_T_WRITE_ZEROES),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const segmentArb = fc
  .record({ sector: sectorArb, numSectors: fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 0xffffffff })), flags: fc.constantFrom(0, 0, 0, 1, 2, 0x80000000) })
  .map((s) => segment(s.sector, s.numSectors, s.flags));

/** Anything: header possibly cut short, data of any size and direction. */
const junkArb = fc.record({
  type: typeArb,
  sector: sectorArb,
  headerLen: fc.oneof(fc.constant(16), fc.integer({ min: 0, max: 16 })),
  headerSplit: fc.integer({ min: 0, max: 16 }),
  readableData: fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.integer({ min: 0, max: 4 }).map((n) => new Uint8Array(n * 512).fill(0x33)),
    fc.uint8Array({ maxLength: 1100 }),
    fc.array(segmentArb, { minLength: 1, maxLength: 40 }).map((segs) => Uint8Array.from(segs.flatMap((s) => [...s]))),
  ),
  readableSplit: fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 3 }),
  writable: fc.oneof(
    fc.constant<number[]>([1]),
    fc.integer({ min: 0, max: 4 }).map((n) => [n * 512 + 1]),
    fc.array(fc.integer({ min: 0, max: 1100 }), { maxLength: 4 }),
  ),
  indirect: fc.boolean(),
});

/** Well-formed in shape (right directions, whole sectors/segments), with edgy sectors and sizes. */
const shapedArb = fc
  .record({
    type: fc.constantFrom(T.VIRTIO_BLK_T_IN, T.VIRTIO_BLK_T_OUT, T.VIRTIO_BLK_T_FLUSH, T.VIRTIO_BLK_T_GET_ID, T.VIRTIO_BLK_T_DISCARD, T.VIRTIO_BLK_T_WRITE_ZEROES),
    sector: sectorArb,
    sectors: fc.integer({ min: 0, max: 9 }),
    segments: fc.array(
      fc.record({ sector: sectorArb, numSectors: fc.integer({ min: 0, max: 10 }), flags: fc.constantFrom(0, 0, 0, 1) }).map((x) => segment(x.sector, x.numSectors, x.flags)),
      { minLength: 1, maxLength: 4 },
    ),
    split: fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 3 }),
    indirect: fc.boolean(),
  })
  .map((r) => {
    const len = r.sectors * 512;
    const base = { type: r.type, sector: r.sector, headerLen: 16, headerSplit: 16, readableSplit: r.split, indirect: r.indirect };
    switch (r.type) {
      case T.VIRTIO_BLK_T_IN:
        return { ...base, readableData: new Uint8Array(0), writable: [...pieces(new Uint8Array(len), r.split).map((p) => p.length), 1] };
      case T.VIRTIO_BLK_T_OUT:
        return { ...base, readableData: new Uint8Array(len).fill(0x77), writable: [1] };
      case T.VIRTIO_BLK_T_GET_ID:
        return { ...base, readableData: new Uint8Array(0), writable: [20, 1] };
      case T.VIRTIO_BLK_T_FLUSH:
        return { ...base, readableData: new Uint8Array(0), writable: [1] };
      default:
        return { ...base, readableData: Uint8Array.from(r.segments.flatMap((x) => [...x])), writable: [1] };
    }
  });

const requestArb = fc.oneof(junkArb, shapedArb);

function inside(regions: readonly Region[], addr: number): boolean {
  return regions.some((r) => addr >= r.addr && addr < r.addr + r.len);
}

describe('virtio-blk properties', () => {
  it('random requests never escape, never reach outside the image, touch only writable buffers', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 12 }), fc.boolean(), fc.boolean(), (requests, readOnly, writeThrough) => {
        const inner = new MemoryBlockBackend(DISK, { readOnly });
        const backend = new RangeAssertingBackend(inner);
        const h = BlkHarness.create({ backend, memorySize: 1 << 20 });
        if (writeThrough) h.driver.writeConfig(32, 1, 0);
        const subs = [];
        for (const r of requests) {
          const header = outhdr(r.type, r.sector).subarray(0, r.headerLen);
          const split = Math.min(r.headerSplit, header.length);
          const readable = [header.subarray(0, split), header.subarray(split), ...pieces(r.readableData, r.readableSplit)].filter((b) => b.length > 0);
          if (readable.length === 0 && r.writable.every((n) => n === 0)) continue; // the mock cannot send an empty chain
          subs.push(h.add({ readable, writable: r.writable, indirect: r.indirect }));
        }
        if (subs.length === 0) return;
        const before = h.driver.memory.bytes.slice();
        h.queue.kick();
        const used = h.queue.used();
        expect(h.driver.errors).toEqual([]);
        expect(h.driver.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBe(0);
        expect(h.driver.memory.rejected).toEqual([]);
        expect(backend.violations).toEqual([]);
        expect(used.map((u) => u.head).sort()).toEqual(subs.map((s) => s.head).sort());
        const writable = subs.flatMap((s) => s.writable);
        const bufferStart = h.driver.memory.size >>> 2;
        const bytes = h.driver.memory.bytes;
        for (let a = bufferStart; a < bytes.length; a++) {
          if (bytes[a] !== before[a] && !inside(writable, a)) throw new Error(`device wrote guest byte 0x${a.toString(16)} outside any writable buffer`);
        }
        for (const s of subs) {
          const total = s.writable.reduce((n, r) => n + r.len, 0);
          if (total > 0) expect([0, 1, 2]).toContain(h.status(s));
        }
        if (readOnly) expect(inner.counts.write + inner.counts.discard + inner.counts.writeZeroes).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('valid writes and reads, split and batched at random, agree with a model disk', () => {
    const opArb = fc.record({
      write: fc.boolean(),
      sector: fc.integer({ min: 0, max: DISK_SECTORS - 1 }),
      sectors: fc.integer({ min: 0, max: 8 }),
      split: fc.array(fc.integer({ min: 1, max: 1500 }), { maxLength: 4 }),
      seed: fc.integer({ min: 1, max: 1 << 30 }),
      indirect: fc.boolean(),
      kickAfter: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), (ops) => {
        const backend = new MemoryBlockBackend(DISK);
        const h = BlkHarness.create({ backend, memorySize: 1 << 20 });
        const model = new Uint8Array(DISK);
        let pending: Array<{ sub: ReturnType<BlkHarness['add']>; expect?: Uint8Array }> = [];
        const settle = () => {
          h.queue.kick();
          h.queue.used();
          for (const p of pending) {
            expect(h.status(p.sub)).toBe(0);
            if (p.expect) expect(h.writableBytes(p.sub).subarray(0, -1)).toEqual(p.expect);
          }
          pending = [];
          h.driver.recycleBuffers();
        };
        for (const op of ops) {
          const sectors = Math.min(op.sectors, DISK_SECTORS - op.sector);
          const len = sectors * 512;
          if (op.write) {
            const data = new Uint8Array(len).map((_, i) => (op.seed * (i + 1)) >>> 3);
            model.set(data, op.sector * 512);
            pending.push({ sub: h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, op.sector), ...pieces(data, op.split)], writable: [1], indirect: op.indirect }) });
          } else {
            const lens = pieces(new Uint8Array(len), op.split).map((p) => p.length);
            lens.push(1);
            // Reads see every write queued before them, even in the same kick.
            pending.push({
              sub: h.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, op.sector)], writable: lens, indirect: op.indirect }),
              expect: model.slice(op.sector * 512, op.sector * 512 + len),
            });
          }
          if (op.kickAfter || h.queue.freeDescriptors < 16) settle();
        }
        settle();
        expect(Buffer.compare(backend.bytes, model)).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});
