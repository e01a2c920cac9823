import { describe, expect, it, vi } from 'vitest';
import { BlkFeature, DeviceStatus, Feature, IsrBit, featureBit, features } from '../../virtio/constants.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { BlkConfigOffset, BLK_CONFIG_SIZE } from './config.ts';
import { VirtioBlk } from './blk.ts';
import { VirtioBlkReqType as T, VirtioBlkStatus as S } from './spec.ts';
import { BlkHarness, outhdr, pieces, segment } from './testing.ts';
import { CommonCfg } from '../../virtio/pci/layout.ts';

const OK = S.VIRTIO_BLK_S_OK;
const IOERR = S.VIRTIO_BLK_S_IOERR;
const UNSUPP = S.VIRTIO_BLK_S_UNSUPP;

function pattern(len: number, seed = 1): Uint8Array {
  const b = new Uint8Array(len);
  let x = seed * 2654435761;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Distinct guest bytes covered by `written` notices. */
function noticedBytes(notices: readonly { addr: number; len: number }[]): number {
  const covered = new Set<number>();
  for (const { addr, len } of notices) for (let i = 0; i < len; i++) covered.add(addr + i);
  return covered.size;
}

const ALL_BUT = (...drop: number[]) => {
  const offered = new VirtioBlk({ backend: new MemoryBlockBackend(4096) }).deviceFeatures;
  return (
    (offered & ~features(...drop)) |
    features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_INDIRECT_DESC, Feature.VIRTIO_F_RING_EVENT_IDX)
  );
};

describe('virtio-blk: identity, features and config space', () => {
  it('is a modern PCI storage function, device id 2, one queue of 256', () => {
    const t = DriverMock.create(new VirtioBlk({ backend: new MemoryBlockBackend(1 << 20) }));
    const dv = new DataView(t.fn.configSpace.buffer);
    expect(dv.getUint16(0, true)).toBe(0x1af4);
    expect(dv.getUint16(2, true)).toBe(0x1042);
    expect(dv.getUint32(8, true) >>> 8).toBe(0x018000);
    expect(t.fn.numQueues).toBe(1);
    const [q] = t.init();
    expect(q.size).toBe(256);
    expect(t.caps.device?.length).toBe(BLK_CONFIG_SIZE);
  });

  it('offers the blk features (RO only when read-only; then no DISCARD/WRITE_ZEROES)', () => {
    const rw = DriverMock.create(new VirtioBlk({ backend: new MemoryBlockBackend(4096) })).deviceFeatures();
    for (const bit of ['SIZE_MAX', 'SEG_MAX', 'BLK_SIZE', 'FLUSH', 'TOPOLOGY', 'CONFIG_WCE', 'DISCARD', 'WRITE_ZEROES'] as const) {
      expect(rw & featureBit(BlkFeature[`VIRTIO_BLK_F_${bit}`]), bit).not.toBe(0n);
    }
    expect(rw & featureBit(BlkFeature.VIRTIO_BLK_F_RO)).toBe(0n);
    expect(rw & featureBit(BlkFeature.VIRTIO_BLK_F_MQ)).toBe(0n);
    expect(rw & featureBit(Feature.VIRTIO_F_RING_INDIRECT_DESC)).not.toBe(0n);
    expect(rw & featureBit(Feature.VIRTIO_F_RING_EVENT_IDX)).not.toBe(0n);
    const ro = DriverMock.create(new VirtioBlk({ backend: new MemoryBlockBackend(4096, { readOnly: true }) })).deviceFeatures();
    expect(ro & featureBit(BlkFeature.VIRTIO_BLK_F_RO)).not.toBe(0n);
    expect(ro & features(BlkFeature.VIRTIO_BLK_F_DISCARD, BlkFeature.VIRTIO_BLK_F_WRITE_ZEROES)).toBe(0n);
  });

  it.each([false, true])('lays out struct virtio_blk_config (byte-split access: %s)', (byteAccess) => {
    const t = DriverMock.create(new VirtioBlk({ backend: new MemoryBlockBackend(64 << 20) }), { byteAccess });
    const O = BlkConfigOffset;
    expect(t.readConfig(O.CAPACITY, 4)).toBe(131072);
    expect(t.readConfig(O.CAPACITY + 4, 4)).toBe(0);
    expect(t.readConfig(O.SIZE_MAX, 4)).toBe(64 << 10);
    expect(t.readConfig(O.SEG_MAX, 4)).toBe(254);
    expect(t.readConfig(O.GEOMETRY_CYLINDERS, 4)).toBe(0);
    expect(t.readConfig(O.BLK_SIZE, 4)).toBe(512);
    expect(t.readConfig(O.PHYSICAL_BLOCK_EXP, 1)).toBe(3);
    expect(t.readConfig(O.ALIGNMENT_OFFSET, 1)).toBe(0);
    expect(t.readConfig(O.MIN_IO_SIZE, 2)).toBe(8);
    expect(t.readConfig(O.OPT_IO_SIZE, 4)).toBe(0);
    expect(t.readConfig(O.WRITEBACK, 1)).toBe(1);
    expect(t.readConfig(O.MAX_DISCARD_SECTORS, 4)).toBe(32768);
    expect(t.readConfig(O.MAX_DISCARD_SEG, 4)).toBe(1);
    expect(t.readConfig(O.DISCARD_SECTOR_ALIGNMENT, 4)).toBe(8);
    expect(t.readConfig(O.MAX_WRITE_ZEROES_SECTORS, 4)).toBe(32768);
    expect(t.readConfig(O.MAX_WRITE_ZEROES_SEG, 4)).toBe(1);
    expect(t.readConfig(O.WRITE_ZEROES_MAY_UNMAP, 1)).toBe(0);
    // Read-only fields ignore the driver.
    t.writeConfig(O.CAPACITY, 4, 7);
    expect(t.readConfig(O.CAPACITY, 4)).toBe(131072);
  });

  it('refuses a capacity that is not whole sectors, and a serial over 20 bytes', () => {
    const odd = new MemoryBlockBackend(1024);
    Object.defineProperty(odd, 'size', { value: 1000 });
    expect(() => new VirtioBlk({ backend: odd })).toThrow(/multiple of 512/);
    expect(() => new VirtioBlk({ backend: new MemoryBlockBackend(512), serial: 'x'.repeat(21) })).toThrow(/at most 20/);
  });
});

describe('virtio-blk: data path', () => {
  it('round-trips IN/OUT with multi-segment, split-header and indirect chains, zero copy', () => {
    const h = BlkHarness.create();
    const data = pattern(8192);
    // Header split over two descriptors, data in odd pieces, status in its own buffer.
    const w = h.run({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 3).subarray(0, 5), outhdr(T.VIRTIO_BLK_T_OUT, 3).subarray(5), ...pieces(data, [100, 412, 3000])], writable: [1] });
    expect(w.status).toBe(OK);
    expect(w.used.len).toBe(1);
    expect((h.backend as MemoryBlockBackend).bytes.subarray(3 * 512, 3 * 512 + 8192)).toEqual(data);
    // Status byte sharing a descriptor with the read data.
    const notices = h.driver.memory.writtenNotices;
    const before = notices.length;
    const r = h.run({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 3)], writable: [1000, 8192 - 1000 + 1], indirect: true });
    expect(r.status).toBe(OK);
    expect(r.used.len).toBe(8193);
    expect(r.data).toEqual(data);
    // The read reported every data byte it wrote into guest RAM (for v86's JIT caches).
    expect(noticedBytes(notices.slice(before))).toBe(8192);
    expect(h.write(100, pattern(4096, 7), [512, 512], true)).toBe(OK);
    const beforeSplit = notices.length;
    expect(h.read(100, 4096, [7 * 512]).data).toEqual(pattern(4096, 7));
    expect(noticedBytes(notices.slice(beforeSplit))).toBe(4096);
    expect(h.device.stats.bytesWritten).toBe(8192 + 4096);
    expect(h.device.stats.bytesRead).toBe(8192 + 4096);
    expect(h.driver.errors).toEqual([]);
    expect(h.driver.memory.rejected).toEqual([]);
  });

  it('reads and writes the last sector, and zero-length transfers at capacity', () => {
    const h = BlkHarness.create({ size: 64 * 512 });
    expect(h.write(63, pattern(512, 3))).toBe(OK);
    expect(h.read(63, 512).data).toEqual(pattern(512, 3));
    expect(h.read(64, 0).status).toBe(OK);
    expect(h.read(65, 0).status).toBe(IOERR);
  });

  it('answers GET_ID with the serial, NUL-padded, truncated to the buffer', () => {
    const h = BlkHarness.create({ serial: 'my-disk' });
    const r = h.run({ readable: [outhdr(T.VIRTIO_BLK_T_GET_ID)], writable: [20, 1] });
    expect(r.status).toBe(OK);
    expect(r.used.len).toBe(21);
    expect(new TextDecoder().decode(r.data)).toBe('my-disk' + '\0'.repeat(13));
    const short = h.run({ readable: [outhdr(T.VIRTIO_BLK_T_GET_ID)], writable: [3, 1] });
    expect(new TextDecoder().decode(short.data)).toBe('my-');
    const full = BlkHarness.create({ serial: '01234567890123456789' });
    expect(new TextDecoder().decode(full.run({ readable: [outhdr(T.VIRTIO_BLK_T_GET_ID)], writable: [21] }).data)).toBe('01234567890123456789');
    expect(h.device.stats.getId).toBe(2);
  });

  it('serves many requests per kick with one interrupt', () => {
    const h = BlkHarness.create();
    const subs = [];
    for (let i = 0; i < 64; i++) {
      subs.push(h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, i * 8), pattern(4096, i)], writable: [1] }));
    }
    const raises = h.driver.irq.raises;
    expect(h.queue.kick()).toBe(true);
    expect(h.queue.notifies).toBe(1);
    expect(h.driver.irq.raises - raises).toBe(1);
    expect(h.driver.readIsr()).toBe(IsrBit.QUEUE);
    expect(h.queue.used()).toHaveLength(64);
    expect(subs.every((s) => h.status(s) === OK)).toBe(true);
    expect(h.device.stats.batches).toBe(1);
    expect(h.device.stats.maxBatch).toBe(64);
    expect(h.driver.fn.stats.interrupts).toBe(1);
    h.driver.recycleBuffers();
    // EVENT_IDX: a driver that asked to hear only after 4 completions gets no interrupt for 3.
    h.queue.setUsedEvent(h.queue.usedIdx + 3);
    for (let i = 0; i < 3; i++) h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    h.queue.kick();
    expect(h.driver.fn.stats.interrupts).toBe(1);
    expect(h.queue.used()).toHaveLength(3);
  });
});

describe('virtio-blk: cache modes and FLUSH', () => {
  const durableHarness = (opts: { features?: bigint } = {}) => {
    const backend = new MemoryBlockBackend(1 << 20, { trackDurability: true });
    return { backend, h: BlkHarness.create({ backend, ...opts }) };
  };

  it('write-back (default): writes reach the backend at once, durable only at FLUSH', () => {
    const { backend, h } = durableHarness();
    expect(h.device.writeback).toBe(true);
    expect(h.write(0, pattern(512, 5))).toBe(OK);
    expect(backend.bytes.subarray(0, 512)).toEqual(pattern(512, 5));
    expect(backend.durable!.subarray(0, 512)).toEqual(new Uint8Array(512));
    expect(backend.counts.flush).toBe(0);
    expect(h.flush()).toBe(OK);
    expect(backend.durable!.subarray(0, 512)).toEqual(pattern(512, 5));
    expect(backend.counts.flush).toBe(1);
  });

  it('FLUSH covers the writes before it in the same kick, not the ones after', () => {
    const { backend, h } = durableHarness();
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 0), pattern(512, 1)], writable: [1] });
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 1), pattern(512, 2)], writable: [1] });
    h.kick();
    expect(backend.durable!.subarray(0, 512)).toEqual(pattern(512, 1));
    expect(backend.durable!.subarray(512, 1024)).toEqual(new Uint8Array(512));
  });

  it('write-through (writeback byte 0): one flush per batch before any write completes', () => {
    const { backend, h } = durableHarness();
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
    expect(h.device.writeback).toBe(false);
    expect(h.driver.readConfig(BlkConfigOffset.WRITEBACK, 1)).toBe(0);
    expect(backend.counts.flush).toBe(1); // leaving write-back flushed once
    backend.counts.flush = 0;
    for (let i = 0; i < 5; i++) h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, i), pattern(512, i)], writable: [1] });
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 0)], writable: [513] });
    const used = h.kick();
    expect(used).toHaveLength(6);
    expect(backend.counts.flush).toBe(1);
    expect(backend.durable!.subarray(0, 5 * 512)).toEqual(backend.bytes.subarray(0, 5 * 512));
    // Reads alone do not flush.
    h.read(0, 512);
    expect(backend.counts.flush).toBe(1);
  });

  it('the WCE toggle: back to write-back, nonzero normalised to 1, flush when leaving write-back, reset restores', () => {
    const { backend, h } = durableHarness();
    h.write(0, pattern(512, 9));
    expect(backend.counts.flush).toBe(0);
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0); // leaving write-back flushes what is cached
    expect(backend.counts.flush).toBe(1);
    expect(backend.durable!.subarray(0, 512)).toEqual(pattern(512, 9));
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 7);
    expect(h.driver.readConfig(BlkConfigOffset.WRITEBACK, 1)).toBe(1);
    expect(h.device.writeback).toBe(true);
    h.write(1, pattern(512, 10));
    expect(backend.counts.flush).toBe(1);
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
    h.driver.init();
    expect(h.driver.readConfig(BlkConfigOffset.WRITEBACK, 1)).toBe(1);
  });

  it('without CONFIG_WCE: write-back iff FLUSH was negotiated', () => {
    const noWce = durableHarness({ features: ALL_BUT(BlkFeature.VIRTIO_BLK_F_CONFIG_WCE) });
    expect(noWce.h.device.writeback).toBe(true);
    const noFlush = durableHarness({ features: ALL_BUT(BlkFeature.VIRTIO_BLK_F_CONFIG_WCE, BlkFeature.VIRTIO_BLK_F_FLUSH) });
    expect(noFlush.h.device.writeback).toBe(false);
    noFlush.h.write(0, pattern(512, 4));
    expect(noFlush.backend.durable!.subarray(0, 512)).toEqual(pattern(512, 4));
  });

  it('a failed write-through flush fails the batch’s writes (not its reads)', () => {
    const backend = new MemoryBlockBackend(1 << 20, { fault: (op) => (op === 'flush' ? 'io' : undefined) });
    const h = BlkHarness.create({ backend });
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
    h.backendErrors.length = 0; // the flush on leaving write-back failed too
    const w = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 0), pattern(512)], writable: [1] });
    const r = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 0)], writable: [513] });
    h.kick();
    expect(h.status(w)).toBe(IOERR);
    expect(h.status(r)).toBe(OK);
    expect(h.backendErrors.map((e) => e.kind)).toEqual(['io']);
  });
});

describe('virtio-blk: DISCARD and WRITE_ZEROES', () => {
  // Multi-range limits (the defaults allow one range per request), still ≤ 16 MiB per request.
  const limits = { maxDiscardSeg: 32, maxDiscardSectors: 1024, maxWriteZeroesSeg: 8, maxWriteZeroesSectors: 4096 };
  const filled = () => {
    const backend = new MemoryBlockBackend(1 << 20);
    backend.bytes.fill(0xab);
    return { backend, h: BlkHarness.create({ backend, limits }) };
  };
  const req = (type: number, ...segs: Uint8Array[]) => ({ readable: [outhdr(type), ...segs], writable: [1] });

  it.each([
    ['DISCARD', T.VIRTIO_BLK_T_DISCARD],
    ['WRITE_ZEROES', T.VIRTIO_BLK_T_WRITE_ZEROES],
  ])('%s zeroes exactly the segments’ ranges', (_n, type) => {
    const { backend, h } = filled();
    expect(h.run(req(type, segment(2, 3), segment(100, 1))).status).toBe(OK);
    const b = backend.bytes;
    expect(b[2 * 512 - 1]).toBe(0xab);
    expect(b.subarray(2 * 512, 5 * 512).every((x) => x === 0)).toBe(true);
    expect(b[5 * 512]).toBe(0xab);
    expect(b.subarray(100 * 512, 101 * 512).every((x) => x === 0)).toBe(true);
    expect(b[101 * 512]).toBe(0xab);
    expect(h.device.stats.bytesZeroed).toBe(4 * 512);
  });

  it('enforces limits, ranges and flags', () => {
    const { backend, h } = filled();
    const D = T.VIRTIO_BLK_T_DISCARD;
    const WZ = T.VIRTIO_BLK_T_WRITE_ZEROES;
    const cap = 2048;
    const cases: Array<[string, ReturnType<typeof req>, number]> = [
      ['discard with unmap', req(D, segment(0, 1, 1)), UNSUPP],
      ['discard unknown flag', req(D, segment(0, 1, 2)), UNSUPP],
      ['write-zeroes unknown flag', req(WZ, segment(0, 1, 4)), UNSUPP],
      ['flags win over a bad range', req(WZ, segment(cap, 1, 2)), UNSUPP],
      ['33 discard segments', req(D, ...Array.from({ length: 33 }, (_, i) => segment(i, 1))), IOERR],
      ['9 write-zeroes segments', req(WZ, ...Array.from({ length: 9 }, (_, i) => segment(i, 1))), IOERR],
      ['segment over max sectors', req(D, segment(0, 1025)), IOERR],
      ['beyond capacity', req(WZ, segment(cap - 1, 2)), IOERR],
      ['sector overflow', req(WZ, segment(2n ** 64n - 1n, 2)), IOERR],
      ['no segments', req(D), IOERR],
      ['partial segment', { readable: [outhdr(D), segment(0, 1).subarray(0, 12)], writable: [1] }, IOERR],
      ['writable data', { readable: [outhdr(D), segment(0, 1)], writable: [512, 1] }, IOERR],
    ];
    for (const [name, spec, status] of cases) expect(h.run(spec).status, name).toBe(status);
    expect(backend.counts.discard + backend.counts.writeZeroes).toBe(0);
    expect(backend.bytes.every((x) => x === 0xab)).toBe(true);
    // Allowed: unmap on write-zeroes (still zeroes), at the limits, up to the last sector.
    expect(h.run(req(WZ, segment(cap - 8, 8, 1))).status).toBe(OK);
    expect(h.run(req(D, ...Array.from({ length: 32 }, (_, i) => segment(i, 1)))).status).toBe(OK);
    expect(backend.bytes.subarray((cap - 8) * 512).every((x) => x === 0)).toBe(true);
  });

  it('is UNSUPP when the driver did not negotiate it', () => {
    const h = BlkHarness.create({ features: ALL_BUT(BlkFeature.VIRTIO_BLK_F_DISCARD, BlkFeature.VIRTIO_BLK_F_WRITE_ZEROES) });
    expect(h.run(req(T.VIRTIO_BLK_T_DISCARD, segment(0, 1))).status).toBe(UNSUPP);
    expect(h.run(req(T.VIRTIO_BLK_T_WRITE_ZEROES, segment(0, 1))).status).toBe(UNSUPP);
  });
});

describe('virtio-blk: bad requests get a status, never a crash', () => {
  it.each<[string, { readable: Uint8Array[]; writable: number[] }, number, number, RegExp]>([
    // name, request, status, used len, why (lastRequestError)
    ['header of 8 bytes', { readable: [outhdr(T.VIRTIO_BLK_T_IN).subarray(0, 8)], writable: [513] }, IOERR, 0, /^header is 8 bytes, not 16$/],
    ['header of 15 bytes, status only', { readable: [outhdr(T.VIRTIO_BLK_T_FLUSH).subarray(0, 15)], writable: [1] }, IOERR, 1, /^header is 15 bytes/],
    ['no readable bytes at all', { readable: [], writable: [513] }, IOERR, 0, /^header is 0 bytes/],
    ['IN of 100 bytes', { readable: [outhdr(T.VIRTIO_BLK_T_IN)], writable: [100, 1] }, IOERR, 0, /data length 100 is not a multiple of 512/],
    ['OUT of 513 bytes', { readable: [outhdr(T.VIRTIO_BLK_T_OUT), new Uint8Array(513)], writable: [1] }, IOERR, 1, /data length 513 is not a multiple of 512/],
    ['IN past capacity', { readable: [outhdr(T.VIRTIO_BLK_T_IN, 2047)], writable: [1024, 1] }, IOERR, 0, /sectors \[2047, \+2\) beyond capacity 2048/],
    ['IN at sector 2^64-1', { readable: [outhdr(T.VIRTIO_BLK_T_IN, 2n ** 64n - 1n)], writable: [512, 1] }, IOERR, 0, /beyond capacity 2048/],
    ['OUT at sector 2^53', { readable: [outhdr(T.VIRTIO_BLK_T_OUT, 2n ** 53n), new Uint8Array(512)], writable: [1] }, IOERR, 1, /sectors \[9007199254740992, \+1\) beyond capacity/],
    ['IN with readable data', { readable: [outhdr(T.VIRTIO_BLK_T_IN), new Uint8Array(512)], writable: [512, 1] }, IOERR, 0, /^IN with 512 driver-readable bytes/],
    ['OUT with writable data', { readable: [outhdr(T.VIRTIO_BLK_T_OUT), new Uint8Array(512)], writable: [512, 1] }, IOERR, 0, /^OUT with 512 driver-writable bytes/],
    ['FLUSH with data', { readable: [outhdr(T.VIRTIO_BLK_T_FLUSH), new Uint8Array(512)], writable: [1] }, IOERR, 1, /^FLUSH with 512 driver-readable bytes/],
    ['FLUSH with writable data', { readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [512, 1] }, IOERR, 0, /^FLUSH with 512 driver-writable bytes/],
    ['GET_ID without a buffer', { readable: [outhdr(T.VIRTIO_BLK_T_GET_ID)], writable: [1] }, IOERR, 1, /^GET_ID without a buffer/],
    ['GET_ID with readable data', { readable: [outhdr(T.VIRTIO_BLK_T_GET_ID), new Uint8Array(4)], writable: [21] }, IOERR, 0, /^GET_ID with 4 driver-readable bytes/],
    ['GET_LIFETIME', { readable: [outhdr(T.VIRTIO_BLK_T_GET_LIFETIME)], writable: [9] }, UNSUPP, 0, /^request type 10 is not supported$/],
    ['SECURE_ERASE', { readable: [outhdr(T.VIRTIO_BLK_T_SECURE_ERASE), segment(0, 1)], writable: [1] }, UNSUPP, 1, /^request type 14 is not supported$/],
    ['type 0xffffffff', { readable: [outhdr(0xffffffff)], writable: [1] }, UNSUPP, 1, /^request type 4294967295 is not supported$/],
  ])('%s', (_name, spec, status, len, why) => {
    const backend = new MemoryBlockBackend(1 << 20);
    backend.bytes.fill(0x5a);
    const h = BlkHarness.create({ backend });
    const r = h.run(spec);
    expect(r.status).toBe(status);
    expect(r.used.len).toBe(len);
    expect(backend.counts.read + backend.counts.write).toBe(0);
    expect(backend.bytes.every((x) => x === 0x5a)).toBe(true);
    expect(h.driver.errors).toEqual([]);
    expect(h.driver.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBe(0);
    expect(h.device.lastRequestError).toMatch(why);
    // The device keeps working.
    expect(h.write(0, pattern(512))).toBe(OK);
  });

  it('returns a chain without any writable byte with len 0 and writes nothing', () => {
    const h = BlkHarness.create();
    const sub = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT), new Uint8Array(512).fill(1)], writable: [] });
    const before = h.driver.memory.bytes.slice();
    const [used] = h.kick();
    expect(used).toEqual({ head: sub.head, len: 0, data: new Uint8Array(0) });
    expect(h.device.stats.unanswerable).toBe(1);
    // Only the used ring changed.
    const ringEnd = h.driver.memory.size >>> 2;
    expect(Buffer.compare(h.driver.memory.bytes.subarray(ringEnd), before.subarray(ringEnd))).toBe(0);
    expect(h.driver.errors).toEqual([]);
  });

  it('read-only: writes, discards and write-zeroes are IOERR and never reach the backend', () => {
    const backend = new MemoryBlockBackend(1 << 20, { readOnly: true });
    backend.bytes.set(pattern(512, 8));
    const h = BlkHarness.create({ backend });
    expect(h.write(0, pattern(512))).toBe(IOERR);
    for (const type of [T.VIRTIO_BLK_T_DISCARD, T.VIRTIO_BLK_T_WRITE_ZEROES]) {
      // Offered features lack them, but a rogue driver may still send them.
      expect(h.run({ readable: [outhdr(type), segment(0, 1)], writable: [1] }).status).toBe(IOERR);
    }
    expect(h.read(0, 512).data).toEqual(pattern(512, 8));
    expect(h.flush()).toBe(OK);
    expect(backend.counts.write + backend.counts.discard + backend.counts.writeZeroes + backend.counts.flush).toBe(0);
  });
});

describe('virtio-blk: backend failures', () => {
  it('an I/O error on read is IOERR to the guest and an event to the host', () => {
    // Any read touching sector 1 fails (one coalesced call, or piece by piece).
    const backend = new MemoryBlockBackend(1 << 20, { fault: (op, offset, length) => (op === 'read' && offset <= 512 && 512 < offset + length ? 'io' : undefined) });
    const h = BlkHarness.create({ backend });
    const r = h.read(0, 2048, [512, 512]);
    expect(r.status).toBe(IOERR);
    expect(h.backendErrors).toEqual([{ kind: 'io', message: expect.stringContaining('injected io') }]);
    expect(h.read(4, 512).status).toBe(OK);
    expect(h.driver.errors).toEqual([]);
  });

  it("'quota' (storage full): IOERR for each write, one host event per kick", () => {
    let full = true;
    const backend = new MemoryBlockBackend(1 << 20, { fault: (op) => (full && op === 'write' ? 'quota' : undefined) });
    const h = BlkHarness.create({ backend });
    const subs = [0, 1, 2].map((i) => h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, i), pattern(512, i)], writable: [1] }));
    h.kick();
    expect(subs.map((s) => h.status(s))).toEqual([IOERR, IOERR, IOERR]);
    expect(h.backendErrors.map((e) => e.kind)).toEqual(['quota']);
    expect(h.device.stats.quotaErrors).toBe(3);
    expect(h.device.stats.ioErrors).toBe(3);
    full = false;
    expect(h.write(0, pattern(512))).toBe(OK);
  });

  it('a non-BlockBackendError throw is an I/O error too, and a throwing host callback is contained', () => {
    const backend = new MemoryBlockBackend(1 << 20);
    backend.read = () => {
      throw new TypeError('bug');
    };
    const h = BlkHarness.create({
      backend,
      onBackendError: () => {
        throw new Error('host bug');
      },
    });
    expect(h.read(0, 512).status).toBe(IOERR);
    expect(h.backendErrors).toEqual([{ kind: 'io', message: 'bug' }]);
    expect(h.driver.errors).toEqual([]);
  });
});

describe('virtio-blk: stats', () => {
  it('counts requests by type, bytes, errors and host time', () => {
    const h = BlkHarness.create();
    // A clock that moves 0.25 ms per reading: each request's parsing and execution are timed.
    let clock = 0;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => (clock += 0.25));
    h.write(0, pattern(1024));
    h.read(0, 1024);
    h.flush();
    h.run({ readable: [outhdr(99)], writable: [1] });
    h.read(1 << 20, 512);
    const s = h.device.stats.toRecord();
    expect(s).toMatchObject({
      requests: 5,
      requestsIn: 2,
      requestsOut: 1,
      requestsFlush: 1,
      requestsUnsupported: 1,
      bytesRead: 1024,
      bytesWritten: 1024,
      ioErrors: 1,
      unsupp: 1,
      batches: 5,
    });
    now.mockRestore();
    expect(s.hostMs).toBe(5 * 2 * 0.25);
    expect(s.hostUsPerRequest).toBe(500);
  });
});

describe('virtio-blk: deferred kicks (served at the end of the time slice)', () => {
  /** A scheduler the test runs by hand, standing in for queueMicrotask. */
  function manual() {
    const jobs: Array<() => void> = [];
    return { defer: (job: () => void) => void jobs.push(job), run: () => jobs.splice(0).forEach((j) => j()), jobs };
  }

  for (const [label, eventIdx] of [
    ['with EVENT_IDX', true],
    ['without EVENT_IDX (NO_NOTIFY)', false],
  ] as const) {
    it(`${label}: one kick and one interrupt serve a whole queue-depth batch`, () => {
      const s = manual();
      const h = BlkHarness.create({ defer: s.defer, features: eventIdx ? undefined : ALL_BUT() & ~features(Feature.VIRTIO_F_RING_EVENT_IDX) });
      const subs = [h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 0), pattern(4096, 0)], writable: [1] })];
      expect(h.queue.kick()).toBe(true);
      expect(h.queue.used()).toHaveLength(0); // not served inside the notify write
      // The guest keeps queueing before the slice ends: its kicks are suppressed.
      for (let i = 1; i < 32; i++) {
        subs.push(h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, i * 8), pattern(4096, i)], writable: [1] }));
        expect(h.queue.kick()).toBe(false);
      }
      expect(s.jobs).toHaveLength(1);
      s.run();
      expect(h.queue.used()).toHaveLength(32);
      expect(subs.every((sub) => h.status(sub) === OK)).toBe(true);
      expect(h.queue.notifies).toBe(1);
      expect(h.driver.fn.stats.interrupts).toBe(1);
      h.driver.recycleBuffers();
      // Notifications are back on: the next request kicks again and is served.
      const next = h.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 0)], writable: [4096, 1] });
      expect(h.queue.kick()).toBe(true);
      s.run();
      expect(h.status(next)).toBe(OK);
      expect(h.writableBytes(next).subarray(0, 4096)).toEqual(pattern(4096, 0));
    });
  }

  it('a malformed ring found in a deferred drain is reported, never thrown', () => {
    const s = manual();
    const h = BlkHarness.create({ defer: s.defer });
    h.queue.publish(999); // a head beyond the queue size
    h.queue.notify();
    expect(() => s.run()).not.toThrow();
    expect(h.driver.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
    expect(h.driver.fn.lastError).toMatch(/head 999/);
  });

  it('a drain scheduled before a reset does nothing to the reset device', () => {
    const s = manual();
    const h = BlkHarness.create({ defer: s.defer });
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    h.queue.kick();
    h.driver.write(CommonCfg.DEVICE_STATUS, 1, 0); // reset
    expect(() => s.run()).not.toThrow();
    expect(h.device.stats.batches).toBe(0);
  });
});

describe('virtio-blk: a multi-piece request is one backend call', () => {
  const PAGE = 4096;
  const split = (len: number, piece: number) => Array.from({ length: len / piece - 1 }, () => piece);
  // Deep equality over megabytes is slow in expect(); compare as Buffers.
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

  it('a 1 MiB write in 128 guest pieces reaches the backend as one write, and reads back as one read', () => {
    const h = BlkHarness.create({ backend: new MemoryBlockBackend(4 << 20, { coalesceRequests: true }) });
    const backend = h.backend as MemoryBlockBackend;
    const data = pattern(1 << 20, 3);
    expect(h.write(8, data, split(1 << 20, 2 * PAGE))).toBe(OK);
    expect(backend.counts.write).toBe(1);
    expect(same(backend.bytes.subarray(8 * 512, 8 * 512 + (1 << 20)), data)).toBe(true);
    const notices = h.driver.memory.writtenNotices.length;
    const r = h.read(8, 1 << 20, split(1 << 20, 2 * PAGE));
    expect(r.status).toBe(OK);
    expect(backend.counts.read).toBe(1);
    expect(same(r.data, data)).toBe(true);
    // Every piece the read filled was reported (v86's JIT drops code compiled from it).
    expect(h.driver.memory.writtenNotices.length - notices).toBeGreaterThanOrEqual(128);
  });

  it('over the 4 MiB bounce buffer it goes piece by piece, with the same bytes', () => {
    const h = BlkHarness.create({ backend: new MemoryBlockBackend(8 << 20, { coalesceRequests: true }), memorySize: 16 << 20 });
    const backend = h.backend as MemoryBlockBackend;
    const len = (4 << 20) + (64 << 10);
    const data = pattern(len, 5);
    expect(h.write(0, data, split(len, 64 << 10))).toBe(OK);
    expect(backend.counts.write).toBe(len / (64 << 10));
    expect(same(h.read(0, len, split(len, 64 << 10)).data, data)).toBe(true);
  });

  it('a failed coalesced read is IOERR and leaves the guest buffers untouched', () => {
    const backend = new MemoryBlockBackend(1 << 20, { coalesceRequests: true, fault: (op) => (op === 'read' ? 'io' : undefined) });
    backend.bytes.set(pattern(8192, 9));
    const h = BlkHarness.create({ backend });
    const r = h.read(0, 8192, [PAGE]);
    expect(r.status).toBe(IOERR);
    expect(r.data.every((b) => b === 0xee)).toBe(true); // DriverMock's poison: nothing written
  });

  it('a failed coalesced write is IOERR, reported to the host, and the next write works', () => {
    let fail = true;
    const backend = new MemoryBlockBackend(1 << 20, { coalesceRequests: true, fault: (op) => (op === 'write' && fail ? 'io' : undefined) });
    const h = BlkHarness.create({ backend });
    expect(h.write(0, pattern(8192), [PAGE])).toBe(IOERR);
    expect(h.backendErrors.map((e) => e.kind)).toEqual(['io']);
    fail = false;
    expect(h.write(0, pattern(8192), [PAGE])).toBe(OK);
    expect(backend.bytes.subarray(0, 8192)).toEqual(pattern(8192));
  });

  it('a backend that does not ask for it (memory) is served piece by piece, zero copy', () => {
    const h = BlkHarness.create({ size: 1 << 20 });
    const backend = h.backend as MemoryBlockBackend;
    expect(h.write(0, pattern(8 * PAGE), split(8 * PAGE, PAGE))).toBe(OK);
    expect(backend.counts.write).toBe(8);
    expect(h.read(0, 8 * PAGE, split(8 * PAGE, PAGE)).data).toEqual(pattern(8 * PAGE));
    expect(backend.counts.read).toBe(8);
  });
});
