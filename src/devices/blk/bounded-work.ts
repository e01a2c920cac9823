/**
 * virtio-blk's "bounded work" property (README, Reliability): rings built to cost the most —
 * GET_ID and IN/OUT buffers where every descriptor aliases the same RAM, indirect tables of
 * queue size, data just under and over the request cap, maximal DISCARD/WRITE_ZEROES ranges,
 * flushes — and every job the device runs for them (the kick, each pass) stays within the
 * descriptor's kickBudget in guest RAM bytes (beyond the ring walk), within BLK_DRAIN_BYTES of
 * disk bytes and 64 + 1 backend flushes, and under WORK_MS_BOUND; every chain still comes
 * back, once, with a status.
 */
import fc from 'fast-check';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import { assertWithinBudget, measure, worstCases } from '../../virtio/testing/work-meter.ts';
import type { DriverRing, Submitted } from '../../virtio/testing/driver-mock.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import type { BlockBackend } from '../../backends/block-backend.ts';
import { BLK_DRAIN_BYTES, BLK_FLUSH_COST } from './budget.ts';
import { BlkConfigOffset, DEFAULT_BLK_LIMITS } from './config.ts';
import { blkDevice } from './index.ts';
import { SECTOR_SIZE, VirtioBlkReqType as T } from './spec.ts';
import { addAliasedIndirect } from '../testing/aliased-chain.ts';
import { BlkHarness, outhdr, segment } from './testing.ts';

const MiB = 1 << 20;
/** A sparse disk this large: every range the limits allow lands inside it. */
const DISK_BYTES = 64 * 1024 * MiB;
/** The one guest buffer the aliased descriptors name. */
const REGION = MiB;

/** Stores nothing, but fills reads (real work, so the time bound means something) and counts disk bytes. */
class CountingSparseDisk implements BlockBackend {
  readonly size = DISK_BYTES;
  readonly readOnly = false;
  bytes = 0;
  flushes = 0;
  read(_offset: number, dst: Uint8Array): void {
    dst.fill(0x5a);
    this.bytes += dst.length;
  }
  write(_offset: number, src: Uint8Array): void {
    this.bytes += src.length;
  }
  flush(): void {
    this.flushes++;
  }
  discard(_offset: number, length: number): void {
    this.bytes += length;
  }
  writeZeroes(_offset: number, length: number): void {
    this.bytes += length;
  }
  close(): void {}
  /** Disk bytes and flushes since the last call. */
  take(): { diskBytes: number; flushes: number } {
    const taken = { diskBytes: this.bytes, flushes: this.flushes };
    this.bytes = 0;
    this.flushes = 0;
    return taken;
  }
}

const sectorArb = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: DISK_BYTES / SECTOR_SIZE - 32768 }));
/** Bytes per aliased descriptor: sector multiples mostly, the whole region often. */
const pieceArb = fc.oneof(fc.constant(REGION), fc.integer({ min: 1, max: REGION / SECTOR_SIZE }).map((n) => n * SECTOR_SIZE), fc.integer({ min: 1, max: REGION }));

const requestArb = fc.oneof(
  // GET_ID with up to queue-size descriptors on one buffer.
  fc.record({ kind: fc.constant('get-id' as const), n: fc.integer({ min: 1, max: 254 }), piece: pieceArb }),
  // IN/OUT of up to 254 aliased pieces: under, at and far over seg_max × size_max.
  fc.record({ kind: fc.constantFrom('in' as const, 'out' as const), n: fc.integer({ min: 1, max: 254 }), piece: pieceArb, sector: sectorArb }),
  fc.record({ kind: fc.constantFrom('discard' as const, 'write-zeroes' as const), sector: sectorArb, sectors: fc.oneof(fc.constant(DEFAULT_BLK_LIMITS.maxDiscardSectors), fc.integer({ min: 0, max: 40000 })) }),
  fc.record({ kind: fc.constant('flush' as const) }),
);
type RequestCase = typeof requestArb extends fc.Arbitrary<infer R> ? R : never;

/** Header, `n` descriptors over one region and a status byte, in one indirect table. */
function submit(h: BlkHarness<DriverRing>, r: RequestCase, region: number): { sub: Submitted; descriptors: number } {
  switch (r.kind) {
    case 'get-id':
    case 'in':
    case 'out': {
      const type = r.kind === 'in' ? T.VIRTIO_BLK_T_IN : r.kind === 'out' ? T.VIRTIO_BLK_T_OUT : T.VIRTIO_BLK_T_GET_ID;
      const head = [outhdr(type, r.kind === 'get-id' ? 0 : r.sector)];
      const sub = addAliasedIndirect(h.driver, h.queue, { head, count: r.n, addr: region, len: r.piece, write: r.kind !== 'out', tail: [1] });
      return { sub, descriptors: r.n + 2 };
    }
    case 'discard':
    case 'write-zeroes': {
      const type = r.kind === 'discard' ? T.VIRTIO_BLK_T_DISCARD : T.VIRTIO_BLK_T_WRITE_ZEROES;
      return { sub: h.add({ readable: [outhdr(type), segment(r.sector, r.sectors)], writable: [1], indirect: true }), descriptors: 3 };
    }
    case 'flush':
      return { sub: h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1], indirect: true }), descriptors: 2 };
  }
}

/** `ring`: the layout the driver negotiates; packed cases report as "blk packed: per kick". */
export function blkBoundedWorkProperty(ring: RingLayout = 'split'): fc.IProperty<[RequestCase[], boolean]> {
  const prefix = ring === 'packed' ? 'blk packed: per kick' : 'blk: per kick';
  return fc.property(fc.array(requestArb, { minLength: 1, maxLength: 64, size: 'max' }), fc.boolean(), (requests, writeThrough) => {
    const jobs: Array<() => void> = [];
    const disk = new CountingSparseDisk();
    const h = BlkHarness.create({ backend: disk, memorySize: 4 * MiB, defer: (job) => void jobs.push(job), ring });
    if (h.queue.layout !== ring) fail(`blk: negotiated a ${h.queue.layout} ring, not ${ring}`);
    if (writeThrough) h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
    const region = h.driver.buffers.alloc(REGION);
    const subs: Submitted[] = [];
    let descriptors = 0;
    for (const r of requests) {
      const { sub, descriptors: n } = submit(h, r, region);
      subs.push(sub);
      descriptors += n;
    }
    // The ring walk is the queue engine's budget, not the device's: each descriptor read
    // (16 bytes), the indirect head, avail/used entries and indices.
    const ringBytes = 16 * (descriptors + subs.length) + 32 * subs.length + 64;
    // Flushes: the pass's FLUSH requests, and its own write-through flush.
    const budgets = { bytes: blkDevice.kickBudget!.bytes + ringBytes, diskBytes: BLK_DRAIN_BYTES, flushes: BLK_DRAIN_BYTES / BLK_FLUSH_COST + 1 };
    const memory: ArrayMemory = h.driver.memory;
    const where = `${requests.length} requests: ${requests.map((r) => r.kind).join(',')}`;
    const step = (what: string, action: () => void) => {
      const work = measure(memory, action, () => disk.take());
      worstCases.noteWork(prefix, work, where, budgets);
      assertWithinBudget(`blk ${what}`, work, budgets);
    };
    step('kick', () => h.queue.kick());
    for (let n = 0; jobs.length > 0; n++) {
      if (n > 2 * subs.length + 2) fail(`blk: ${n} deferred jobs for ${subs.length} requests`);
      step(`job ${n}`, jobs.shift()!);
    }
    if (h.driver.errors.length > 0) fail(`blk: device reset: ${h.driver.errors[0]}`);
    const used = h.queue.used();
    if (used.length !== subs.length) fail(`blk: ${used.length} of ${subs.length} chains came back`);
    for (const u of used) if (u.len > BLK_DRAIN_BYTES + 1) fail(`blk: used.len ${u.len}`);
    for (const sub of subs) if (![0, 1, 2].includes(h.status(sub))) fail(`blk: status ${h.status(sub)}`);
  });
}
