import { describe, expect, it } from 'vitest';
import { BlkFeature, Feature, featureBit, features } from '../../virtio/constants.ts';
import { CommonCfg } from '../../virtio/pci/layout.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { measure } from '../../virtio/testing/work-meter.ts';
import type { DescriptorChain } from '../../virtio/queue/descriptor-chain.ts';
import type { BlockBackend } from '../../backends/block-backend.ts';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { BLK_DRAIN_BYTES, BLK_FLUSH_COST, BLK_MAX_REQUEST_BYTES, blkKickBudgetBytes, checkLimits } from './budget.ts';
import { BlkConfigOffset, DEFAULT_BLK_LIMITS } from './config.ts';
import { VirtioBlk } from './blk.ts';
import { executeBlkRequest } from './io.ts';
import { parseBlkRequest } from './request.ts';
import { VirtioBlkReqType as T, VirtioBlkStatus as S } from './spec.ts';
import { BlkHarness, aliasIndirect, outhdr } from './testing.ts';

const MiB = 1 << 20;
const OK = S.VIRTIO_BLK_S_OK;
const IOERR = S.VIRTIO_BLK_S_IOERR;

/** A disk of any size that stores nothing: reads fill with 0x5a, writes are dropped. */
function sparseDisk(size: number): BlockBackend {
  return { size, readOnly: false, read: (_at, dst) => dst.fill(0x5a), write() {}, flush() {}, discard() {}, writeZeroes() {}, close() {} };
}

/** An indirect chain: header, `n` writable descriptors all naming [addr, +len), then a status byte. */
function aliasedRequest(h: BlkHarness, type: number, n: number, addr: number, len: number, sector = 0) {
  const sub = h.add({ readable: [outhdr(type, sector)], writable: [...Array.from({ length: n }, () => 16), 1], indirect: true });
  aliasIndirect(h.queue, sub, Array.from({ length: n }, (_, k) => k + 1), addr, len);
  return sub;
}

describe('virtio-blk bounded work: GET_ID', () => {
  it('writes the 20-byte id, not the whole (aliased) buffer; used.len 20; status still last', () => {
    const h = BlkHarness.create({ serial: 'vd-id' });
    const region = h.driver.buffers.alloc(MiB);
    h.driver.memory.bytes.fill(0x77, region, region + MiB);
    // 200 descriptors naming the same 1 MiB: 200 MiB of "buffer" in 1 MiB of RAM.
    const sub = aliasedRequest(h, T.VIRTIO_BLK_T_GET_ID, 200, region, MiB);
    const work = measure(h.driver.memory, () => h.queue.kick());
    const [used] = h.queue.used();
    expect(h.status(sub)).toBe(OK);
    expect(used.len).toBe(20);
    const bytes = h.driver.memory.bytes;
    expect(new TextDecoder().decode(bytes.subarray(region, region + 20))).toBe('vd-id' + '\0'.repeat(15));
    expect(bytes.subarray(region + 20, region + MiB).every((b) => b === 0x77)).toBe(true);
    expect(work.bytes).toBeLessThan(8192); // ring walk + header + 20 + status, not 200 MiB
  });
});

describe('virtio-blk bounded work: request size', () => {
  it('used.len never passes 2^32 − 1: a >4 GiB IN is refused, not wrapped', () => {
    const memory = new ArrayMemory(2 * MiB);
    memory.write(0, outhdr(T.VIRTIO_BLK_T_IN, 0));
    const writable = [...Array.from({ length: 4097 }, () => ({ addr: MiB, len: MiB })), { addr: 64, len: 1 }];
    const chain: DescriptorChain = {
      headIndex: 0,
      readable: [{ addr: 0, len: 16 }],
      writable,
      readableLength: 16,
      writableLength: writable.reduce((s, r) => s + r.len, 0),
      indirect: true,
    };
    const backend = sparseDisk(2 ** 34);
    const req = parseBlkRequest(memory, chain, { capacitySectors: 2 ** 34 / 512, limits: DEFAULT_BLK_LIMITS });
    if (req.kind !== 'request') throw new Error('expected a request');
    const out = executeBlkRequest(req, { memory, backend, serial: new Uint8Array(0), readOnly: false, discard: true, writeZeroes: true });
    expect(out.status).toBe(IOERR);
    expect(out.usedLen).toBeLessThanOrEqual(0xffffffff);
    expect(out.usedLen).toBe(0);
  });

  it('IN/OUT data over seg_max × size_max is IOERR without touching the disk; at the limit it works', () => {
    const limit = DEFAULT_BLK_LIMITS.segMax * DEFAULT_BLK_LIMITS.sizeMax;
    expect(limit).toBeLessThanOrEqual(BLK_MAX_REQUEST_BYTES);
    const backend = new MemoryBlockBackend(20 * MiB);
    const h = BlkHarness.create({ backend, memorySize: 24 * MiB });
    const region = h.driver.buffers.alloc(MiB);
    // 17 aliased MiB: over the limit.
    const big = aliasedRequest(h, T.VIRTIO_BLK_T_IN, 17, region, MiB);
    h.kick();
    expect(h.status(big)).toBe(IOERR);
    expect(backend.counts.read).toBe(0);
    expect(h.device.lastRequestError).toMatch(/over seg_max × size_max/);
    // Exactly seg_max pieces of size_max: fine; one more sector in the last piece: refused.
    // (A 257th descriptor would be the queue's to refuse: a chain longer than the queue.)
    const pieces = Array.from({ length: DEFAULT_BLK_LIMITS.segMax }, () => DEFAULT_BLK_LIMITS.sizeMax);
    expect(h.run({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 0)], writable: [...pieces, 1], indirect: true }).status).toBe(OK);
    const over = [...pieces.slice(1), DEFAULT_BLK_LIMITS.sizeMax + 512];
    expect(h.run({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 0)], writable: [...over, 1], indirect: true }).status).toBe(IOERR);
  });

  it.each([
    ['1280 KiB (max_sectors_kb) in size_max pieces', 1280 << 10, 64 << 10],
    ['seg_max 4 KiB pages', DEFAULT_BLK_LIMITS.segMax * 4096, 4096],
  ])('what Linux sends still works: %s, both ways', (_, len, piece) => {
    const h = BlkHarness.create({ backend: new MemoryBlockBackend(4 * MiB), memorySize: 8 * MiB });
    const data = Uint8Array.from({ length: len }, (_, i) => (i * 31 + 7) & 0xff);
    const pieces = Array.from({ length: len / piece - 1 }, () => piece);
    expect(h.write(8, data, pieces, true)).toBe(OK);
    const r = h.read(8, len, pieces, true);
    expect(r.status).toBe(OK);
    expect(Buffer.from(r.data).equals(Buffer.from(data))).toBe(true);
  });

  it('refuses limits that would let one request move more than 16 MiB', () => {
    expect(() => checkLimits(DEFAULT_BLK_LIMITS)).not.toThrow();
    expect(() => new VirtioBlk({ backend: new MemoryBlockBackend(4096), limits: { sizeMax: MiB } })).toThrow(/seg_max × size_max/);
    expect(() => new VirtioBlk({ backend: new MemoryBlockBackend(4096), limits: { maxDiscardSeg: 32 } })).toThrow(/max_discard_seg/);
    expect(() => new VirtioBlk({ backend: new MemoryBlockBackend(4096), limits: { maxWriteZeroesSeg: 2 } })).toThrow(/max_write_zeroes_seg/);
  });
});

describe('virtio-blk bounded work: one pass per kick', () => {
  function manual() {
    const jobs: Array<() => void> = [];
    return { defer: (job: () => void) => void jobs.push(job), runOne: () => jobs.shift()?.(), jobs };
  }

  it('a pass moves at most BLK_DRAIN_BYTES; the rest is served by a later job, in order', () => {
    const s = manual();
    const h = BlkHarness.create({ defer: s.defer, backend: new MemoryBlockBackend(8 * MiB), memorySize: 4 * MiB });
    const region = h.driver.buffers.alloc(MiB);
    // Four reads of 8 MiB each (8 aliased MiB): 32 MiB, two passes' worth.
    const subs = [0, 1, 2, 3].map(() => aliasedRequest(h, T.VIRTIO_BLK_T_IN, 8, region, MiB));
    h.queue.kick();
    expect(s.jobs).toHaveLength(1);
    const first = measure(h.driver.memory, () => s.runOne());
    expect(h.queue.used().map((u) => u.head)).toEqual([subs[0].head, subs[1].head]);
    expect(first.bytes).toBeLessThanOrEqual(blkKickBudgetBytes(DEFAULT_BLK_LIMITS, 256));
    expect(s.jobs).toHaveLength(1); // the leftover pass
    expect(h.device.stats.passesLater).toBe(1);
    s.runOne();
    expect(h.queue.used().map((u) => u.head)).toEqual([subs[2].head, subs[3].head]);
    expect(subs.every((sub) => h.status(sub) === OK)).toBe(true);
    expect(s.jobs).toHaveLength(0);
  });

  it('a pass issues at most 64 FLUSHes (each a backend flush); the rest wait for the next pass', () => {
    const s = manual();
    const backend = new MemoryBlockBackend(MiB);
    const h = BlkHarness.create({ defer: s.defer, backend });
    const subs = Array.from({ length: 100 }, () => h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] }));
    h.queue.kick();
    s.runOne();
    expect(backend.counts.flush).toBe(BLK_DRAIN_BYTES / BLK_FLUSH_COST);
    expect(h.queue.used()).toHaveLength(64);
    s.runOne();
    expect(h.queue.used()).toHaveLength(36);
    expect(subs.every((sub) => h.status(sub) === OK)).toBe(true);
  });

  it('without defer the leftovers are served in a microtask, and a kick in between keeps the order', async () => {
    const h = BlkHarness.create({ backend: new MemoryBlockBackend(8 * MiB), memorySize: 4 * MiB });
    const region = h.driver.buffers.alloc(MiB);
    const subs = [0, 1, 2].map(() => aliasedRequest(h, T.VIRTIO_BLK_T_IN, 8, region, MiB));
    h.queue.kick();
    expect(h.queue.used()).toHaveLength(2);
    // A small request queued meanwhile waits behind the leftover 8 MiB read.
    const flush = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    h.queue.kick();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(h.queue.used().map((u) => u.head)).toEqual([subs[2].head, flush.head]);
  });

  it('a reset drops the leftovers: the later pass does nothing to the reset device', () => {
    const s = manual();
    const h = BlkHarness.create({ defer: s.defer, backend: new MemoryBlockBackend(8 * MiB), memorySize: 4 * MiB });
    const region = h.driver.buffers.alloc(MiB);
    for (let i = 0; i < 3; i++) aliasedRequest(h, T.VIRTIO_BLK_T_IN, 8, region, MiB);
    h.queue.kick();
    s.runOne();
    const reads = (h.backend as MemoryBlockBackend).counts.read;
    h.driver.write(CommonCfg.DEVICE_STATUS, 1, 0);
    expect(() => s.runOne()).not.toThrow();
    expect((h.backend as MemoryBlockBackend).counts.read).toBe(reads);
    expect(BLK_DRAIN_BYTES).toBe(16 * MiB);
  });
});

describe('virtio-blk §5.2.5: writeback after FEATURES_OK', () => {
  const ring = features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_INDIRECT_DESC, Feature.VIRTIO_F_RING_EVENT_IDX);

  it('CONFIG_WCE without FLUSH: the device starts writeback at 0 (featuresAccepted)', () => {
    const device = new VirtioBlk({ backend: new MemoryBlockBackend(4096) });
    expect(device.config.writeback).toBe(true);
    device.featuresAccepted(ring | featureBit(BlkFeature.VIRTIO_BLK_F_CONFIG_WCE));
    expect(device.config.writeback).toBe(false);
    // With FLUSH the default (write-back) stays.
    const withFlush = new VirtioBlk({ backend: new MemoryBlockBackend(4096) });
    withFlush.featuresAccepted(ring | features(BlkFeature.VIRTIO_BLK_F_CONFIG_WCE, BlkFeature.VIRTIO_BLK_F_FLUSH));
    expect(withFlush.config.writeback).toBe(true);
  });

  it('through the transport: the driver reads writeback 0 and writes are durable at once', () => {
    const backend = new MemoryBlockBackend(1 * MiB, { trackDurability: true });
    const offered = new VirtioBlk({ backend: new MemoryBlockBackend(4096) }).deviceFeatures;
    const h = BlkHarness.create({ backend, features: (offered | ring) & ~featureBit(BlkFeature.VIRTIO_BLK_F_FLUSH) });
    expect(h.driver.readConfig(BlkConfigOffset.WRITEBACK, 1)).toBe(0);
    expect(h.device.writeback).toBe(false);
    expect(h.write(0, new Uint8Array(512).fill(9))).toBe(OK);
    expect(backend.durable!.subarray(0, 512).every((b) => b === 9)).toBe(true);
    // A reset restores the default, and the next FEATURES_OK sets it again.
    h.driver.init({ features: h.driver.features });
    h.device.featuresAccepted(h.driver.features);
    expect(h.driver.readConfig(BlkConfigOffset.WRITEBACK, 1)).toBe(0);
  });
});
