/**
 * virtio-blk under random requests (fast-check), shared by the unit tests and the long
 * campaign (bench/fuzz.ts):
 *  - garbage: any header type and sector, data of any size and direction, split over any
 *    descriptors (indirect or not, zero-length ones, even readable-after-writable), on a
 *    disk that may be read-only, write-through, or failing. Nothing escapes the BAR
 *    handlers; the backend is never asked for a byte outside the image; guest memory
 *    changes only inside the chains' writable buffers; every well-formed chain comes back
 *    with a status; a misordered one (§2.7.4.2) and only that resets the device. Then an
 *    honest write and read (after a reset if one was needed) complete with the right bytes.
 *  - valid writes and reads, split and batched at random, agree with a model disk.
 * Each runs on split rings and, named "… (packed)", on packed ones (§2.8): the device never
 * knows the layout, so the same checks hold (a misordered chain breaks a packed ring too, §2.8.17).
 */
import fc from 'fast-check';
import type { Region } from '../../virtio/queue/descriptor-chain.ts';
import { BlkFeature, DeviceStatus, Feature, featureBit } from '../../virtio/constants.ts';
import type { DriverRing, Submitted } from '../../virtio/testing/driver-mock.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { RING_LAYOUTS, onRing, ringFeatures } from '../testing/ring-layout.ts';
import { Timeline } from '../../virtio/inspect/timeline.ts';
import { bump, checkInspector, checkInvariants, fail, maskNumbers, type NamedProperty } from '../../virtio/testing/invariants.ts';
import type { BlockBackend } from '../../backends/block-backend.ts';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { BlkConfigOffset } from './config.ts';
import { VirtioBlkReqType as T } from './spec.ts';
import { BlkHarness, outhdr, pieces, segment } from './testing.ts';
import { VirtioBlk } from './blk.ts';
import { inspectorView } from '../inspector-view.ts';
import { blkDevice } from './index.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { blkBoundedWorkProperty } from './bounded-work.ts';

export const DISK_SECTORS = 256;
const DISK = DISK_SECTORS * 512;

/** Passes everything through, but remembers any request outside the image. */
export class RangeAssertingBackend implements BlockBackend {
  readonly violations: string[] = [];
  constructor(readonly inner: MemoryBlockBackend) {}
  get size() {
    return this.inner.size;
  }
  get readOnly() {
    return this.inner.readOnly;
  }
  get coalesceRequests() {
    return this.inner.coalesceRequests;
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
const knownTypes = [T.VIRTIO_BLK_T_IN, T.VIRTIO_BLK_T_OUT, T.VIRTIO_BLK_T_FLUSH, T.VIRTIO_BLK_T_GET_ID, T.VIRTIO_BLK_T_DISCARD, T.VIRTIO_BLK_T_WRITE_ZEROES];
const typeArb = fc.oneof(
  fc.constantFrom(...knownTypes, T.VIRTIO_BLK_T_GET_LIFETIME, T.VIRTIO_BLK_T_SECURE_ERASE),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const segmentArb = fc
  .record({
    sector: sectorArb,
    numSectors: fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 0xffffffff })),
    flags: fc.constantFrom(0, 0, 0, 1, 2, 0x80000000),
  })
  .map((s) => segment(s.sector, s.numSectors, s.flags));

/** Descriptor order overrides: mostly none; sometimes a writable buffer before readable ones. */
const orderArb = fc.oneof({ weight: 6, arbitrary: fc.constant<boolean[]>([]) }, { weight: 1, arbitrary: fc.array(fc.boolean(), { maxLength: 4 }) });

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
  readableSplit: fc.array(fc.integer({ min: 0, max: 700 }), { maxLength: 3 }),
  writable: fc.oneof(
    fc.constant<number[]>([1]),
    fc.integer({ min: 0, max: 4 }).map((n) => [n * 512 + 1]),
    fc.array(fc.integer({ min: 0, max: 1100 }), { maxLength: 4 }),
  ),
  indirect: fc.boolean(),
  order: orderArb,
});

/** Well-formed in shape (right directions, whole sectors/segments), with edgy sectors and sizes. */
const shapedArb = fc
  .record({
    type: fc.constantFrom(...knownTypes),
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
    const base = { type: r.type, sector: r.sector, headerLen: 16, headerSplit: 16, readableSplit: r.split, indirect: r.indirect, order: [] as boolean[] };
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
type RequestCase = typeof junkArb extends fc.Arbitrary<infer R> ? R : never;

/** The device-type features a driver may leave out (VERSION_1 and the ring ones stay). */
const OPTIONAL_BLK_FEATURES = [
  BlkFeature.VIRTIO_BLK_F_FLUSH,
  BlkFeature.VIRTIO_BLK_F_CONFIG_WCE,
  BlkFeature.VIRTIO_BLK_F_DISCARD,
  BlkFeature.VIRTIO_BLK_F_WRITE_ZEROES,
  BlkFeature.VIRTIO_BLK_F_SEG_MAX,
  BlkFeature.VIRTIO_BLK_F_SIZE_MAX,
];
const RING_FEATURES = featureBit(Feature.VIRTIO_F_VERSION_1) | featureBit(Feature.VIRTIO_F_RING_INDIRECT_DESC) | featureBit(Feature.VIRTIO_F_RING_EVENT_IDX);

function inside(regions: readonly Region[], addr: number): boolean {
  return regions.some((r) => addr >= r.addr && addr < r.addr + r.len);
}

/** Addresses from `from` on where `after` differs from `before` (compared a word at a time). */
function* changedBytes(before: Uint8Array, after: Uint8Array, from: number): Generator<number> {
  const w0 = new Uint32Array(before.buffer, 0, before.length >>> 2);
  const w1 = new Uint32Array(after.buffer, after.byteOffset, after.length >>> 2);
  for (let w = from >>> 2; w < w0.length; w++) {
    if (w0[w] === w1[w]) continue;
    for (let a = 4 * w; a < 4 * w + 4; a++) if (before[a] !== after[a]) yield a;
  }
}

/** The chain as the mock lays it out: does a readable descriptor follow a writable one? */
function misordered(readableCount: number, writableCount: number, order: readonly boolean[]): boolean {
  let r = readableCount;
  let w = writableCount;
  let sawWritable = false;
  for (const write of order) {
    if (write ? w === 0 : r === 0) continue;
    if (write) w--;
    else r--;
    if (write) sawWritable = true;
    else if (sawWritable) return true;
  }
  return sawWritable && r > 0;
}

function layOut(r: RequestCase): { readable: Uint8Array[]; writable: number[] } {
  const header = outhdr(r.type, r.sector).subarray(0, r.headerLen);
  const split = Math.min(r.headerSplit, header.length);
  const readable = [header.subarray(0, split), header.subarray(split), ...pieces(r.readableData, r.readableSplit)].filter((b, i) => b.length > 0 || i >= 2);
  return { readable, writable: r.writable };
}

/** An honest write and read-back through `q` (a read only, on a read-only disk). */
function honestRoundTrip(h: BlkHarness<DriverRing>, q: DriverRing, inner: MemoryBlockBackend, sector: number, sectors: number, settle = () => {}): void {
  const len = sectors * 512;
  const data = Uint8Array.from({ length: len }, (_, i) => (sector * 13 + i * 5 + 1) & 0xff);
  const status = (s: Submitted) => {
    const last = s.writable.at(-1)!;
    return h.driver.memory.bytes[last.addr + last.len - 1];
  };
  if (!inner.readOnly) {
    const w = q.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, sector), ...pieces(data, [100])], writable: [1] });
    q.kick();
    settle();
    if (q.used().length !== 1 || status(w) !== 0) fail('honest write did not complete with OK after garbage');
  } else {
    data.set(inner.bytes.subarray(sector * 512, sector * 512 + len));
  }
  const r = q.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, sector)], writable: [...pieces(new Uint8Array(len), [700]).map((p) => p.length), 1] });
  q.kick();
  settle();
  if (q.used().length !== 1 || status(r) !== 0) fail('honest read did not complete with OK after garbage');
  let at = 0;
  for (const region of r.writable.slice(0, -1)) {
    const got = h.driver.memory.bytes.subarray(region.addr, region.addr + region.len);
    if (!got.every((b, i) => b === data[at + i])) fail(`honest read returned the wrong bytes at sector ${sector}`);
    at += region.len;
  }
  if (!inner.bytes.subarray(sector * 512, sector * 512 + len).every((b, i) => b === data[i])) fail('the disk does not hold what was written');
  h.driver.recycleBuffers();
}

/** `ring`: the layout the driver negotiates (every check holds on both, §2.7.4.2 / §2.8.17 alike). */
export function blkGarbageProperty(coverage = new Map<string, number>(), ring: RingLayout = 'split'): fc.IProperty<any> {
  return fc.property(
    fc.record({
      requests: fc.array(requestArb, { minLength: 1, maxLength: 12 }),
      readOnly: fc.boolean(),
      writeThrough: fc.boolean(),
      dropFeatures: fc.subarray(OPTIONAL_BLK_FEATURES),
      /** Per backend operation, whether it fails (then the disk is healthy again). */
      faults: fc.oneof({ weight: 3, arbitrary: fc.constant<boolean[]>([]) }, { weight: 1, arbitrary: fc.array(fc.boolean(), { maxLength: 12 }) }),
      honest: fc.record({ sector: fc.integer({ min: 0, max: DISK_SECTORS - 8 }), sectors: fc.integer({ min: 1, max: 8 }) }),
      /** With the inspector watching: its decoders run on every request. */
      inspect: fc.boolean(),
      /** Kicks served later, as the lab's machine does (queueMicrotask). */
      deferred: fc.boolean(),
      /** Multi-piece requests through the bounce buffer, as file and OPFS disks ask. */
      coalesce: fc.boolean(),
      /** Discard / write-zeroes limits, default or tight. */
      limits: fc.option(
        fc.record({
          maxDiscardSeg: fc.integer({ min: 1, max: 4 }),
          maxDiscardSectors: fc.integer({ min: 1, max: 16 }),
          maxWriteZeroesSeg: fc.integer({ min: 1, max: 4 }),
          maxWriteZeroesSectors: fc.integer({ min: 1, max: 16 }),
        }),
      ),
    }),
    ({ requests, readOnly, writeThrough, dropFeatures, faults, honest, inspect, deferred, coalesce, limits }) => {
      const inner = new MemoryBlockBackend(DISK, { readOnly, coalesceRequests: coalesce });
      const faultQueue = [...faults];
      inner.fault = () => (faultQueue.shift() ? 'io' : undefined);
      const backend = new RangeAssertingBackend(inner);
      let features = ringFeatures(RING_FEATURES | new VirtioBlk({ backend }).deviceFeatures, ring);
      for (const bit of dropFeatures) features &= ~featureBit(bit);
      const later = deferred ? manualDefer() : undefined;
      const h = BlkHarness.create({ backend, memorySize: 1 << 19, features, defer: later?.defer, limits: limits ?? undefined, ring });
      const t = h.driver;
      if (h.queue.layout !== ring) fail(`negotiated a ${h.queue.layout} ring, not ${ring}`);
      const inspector = inspect ? inspectorView(blkDevice, h.device) : undefined;
      const timeline = inspector && new Timeline(inspector.decoder);
      t.fn.tracer = timeline;
      if (writeThrough) t.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
      const subs: Submitted[] = [];
      let broken = false;
      for (const r of requests) {
        const { readable, writable } = layOut(r);
        if (readable.length === 0 && writable.length === 0) continue; // the mock cannot send an empty chain
        if (h.queue.freeDescriptors < readable.length + writable.length) break;
        broken ||= misordered(readable.length, writable.length, r.order);
        subs.push(h.queue.add({ readable, writable, indirect: r.indirect, order: r.order }));
      }
      if (subs.length === 0) return;
      const before = t.memory.bytes.slice();
      h.queue.kick();
      later?.settle();
      const used = h.queue.used();
      checkInvariants(t);
      if (inspector) checkInspector(t, inspector.view, timeline);
      if (backend.violations.length > 0) fail(`backend asked for ${backend.violations[0]} (disk is ${DISK} bytes)`);
      const needsReset = (t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET) !== 0;
      if (needsReset !== broken) fail(`misordered chain: ${broken}, DEVICE_NEEDS_RESET: ${needsReset} (${t.errors.join('; ')})`);
      const writable = subs.flatMap((s) => s.writable);
      for (const a of changedBytes(before, t.memory.bytes, t.memory.size >>> 2)) {
        if (!inside(writable, a)) fail(`device wrote guest byte 0x${a.toString(16)} outside any writable buffer`);
      }
      if (!broken) {
        if (used.map((u) => u.head).sort().join() !== subs.map((s) => s.head).sort().join()) fail('not every chain came back');
        for (const s of subs) {
          const total = s.writable.reduce((n, r) => n + r.len, 0);
          if (total > 0 && ![0, 1, 2].includes(h.status(s))) fail(`status byte ${h.status(s)}`);
        }
      }
      if (readOnly && inner.counts.write + inner.counts.discard + inner.counts.writeZeroes > 0) fail('a read-only disk was written');
      const stats = h.device.stats.toRecord();
      for (const key of ['requestsIn', 'requestsOut', 'requestsFlush', 'requestsGetId', 'requestsDiscard', 'requestsWriteZeroes', 'requestsUnsupported', 'requestsUnanswerable', 'ioErrors', 'unsupp', 'backendErrors']) {
        if (stats[key]) bump(coverage, key, stats[key]);
      }
      if (h.device.lastRequestError) bump(coverage, `last refusal: ${maskNumbers(h.device.lastRequestError)}`);
      if (broken) bump(coverage, 'misordered chain reset the device');

      // Honest work afterwards, on a healthy disk; a reset first if the device asked for one.
      inner.fault = undefined;
      const q = needsReset ? t.initRings({ features })[0] : h.queue;
      t.recycleBuffers();
      honestRoundTrip(h, q, inner, honest.sector, honest.sectors, later?.settle);
      checkInvariants(t);
    },
  );
}

export function blkModelProperty(ring: RingLayout = 'split'): fc.IProperty<any> {
  const opArb = fc.record({
    write: fc.boolean(),
    sector: fc.integer({ min: 0, max: DISK_SECTORS - 1 }),
    sectors: fc.integer({ min: 0, max: 8 }),
    split: fc.array(fc.integer({ min: 1, max: 1500 }), { maxLength: 4 }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
    indirect: fc.boolean(),
    kickAfter: fc.boolean(),
  });
  return fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.boolean(), (ops, coalesceRequests) => {
    const backend = new MemoryBlockBackend(DISK, { coalesceRequests });
    const h = BlkHarness.create({ backend, memorySize: 1 << 20, ring });
    if (h.queue.layout !== ring) fail(`negotiated a ${h.queue.layout} ring, not ${ring}`);
    const model = new Uint8Array(DISK);
    let pending: Array<{ sub: Submitted; expect?: Uint8Array }> = [];
    const settle = () => {
      h.queue.kick();
      h.queue.used();
      for (const p of pending) {
        if (h.status(p.sub) !== 0) fail(`status ${h.status(p.sub)} for a valid request`);
        if (p.expect && !h.writableBytes(p.sub).subarray(0, -1).every((b, i) => b === p.expect![i])) fail('read returned the wrong bytes');
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
    if (Buffer.compare(backend.bytes, model) !== 0) fail('the disk differs from the model');
  });
}

/** Every property on split rings, then on packed ones ("… (packed)"). */
export function blkProperties(): NamedProperty[] {
  return RING_LAYOUTS.flatMap((ring) => {
    const coverage = new Map<string, number>();
    return [
      { name: onRing('blk: garbage requests stay inside the image and the chains, then honest I/O works', ring), property: blkGarbageProperty(coverage, ring), coverage },
      { name: onRing('blk: valid writes and reads agree with a model disk', ring), property: blkModelProperty(ring) },
      { name: onRing('blk: bounded work per kick on aliased, maximal and over-cap requests', ring), property: blkBoundedWorkProperty(ring) },
    ];
  });
}
