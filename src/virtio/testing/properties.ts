/**
 * Ring properties on both layouts (split §2.7, packed §2.8), shared by the unit tests (bounded runs) and bench/fuzz.ts (long
 * campaigns). Each returns a fast-check property; callers choose numRuns and seed. The
 * register-level fuzzing of the transport lives in transport-properties.ts.
 */
import fc from 'fast-check';
import { Feature, featureBit } from '../constants.ts';
import type { RingLayout } from '../queue/virtqueue.ts';
import { RingEventFlags } from '../constants.ts';
import { DriverMock, type DriverQueue } from './driver-mock.ts';
import { PackedDriverQueue } from './packed-driver-queue.ts';
import { Timeline } from '../inspect/timeline.ts';
import { checkInspector, checkInvariants, errorsSinceReset, fail, recordReasons, type NamedProperty } from './invariants.ts';
import { LoopbackDevice, loopbackOutput } from './loopback-device.ts';
import { loopbackBoundedWorkNamedProperty } from './bounded-work-properties.ts';

const VERSION_1 = featureBit(Feature.VIRTIO_F_VERSION_1);
const INDIRECT = featureBit(Feature.VIRTIO_F_RING_INDIRECT_DESC);
const EVENT_IDX = featureBit(Feature.VIRTIO_F_RING_EVENT_IDX);
const PACKED = featureBit(Feature.VIRTIO_F_RING_PACKED);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- 1. valid traffic: every chain completes exactly once, with the right bytes ---------

const chainArb = fc.record({
  readable: fc.array(fc.uint8Array({ maxLength: 48 }), { maxLength: 3 }),
  writable: fc.array(fc.integer({ min: 0, max: 48 }), { maxLength: 3 }),
  indirect: fc.boolean(),
});

const validTrafficArb = fc.record({
  sizeLog: fc.integer({ min: 0, max: 7 }),
  eventIdx: fc.boolean(),
  indirect: fc.boolean(),
  start: fc.oneof(fc.constant(0), fc.integer({ min: 65500, max: 65535 }), fc.integer({ min: 0, max: 65535 })),
  byteAccess: fc.boolean(),
  barKind: fc.constantFrom<'io' | 'mem'>('io', 'mem'),
  batches: fc.array(
    fc.record({
      chains: fc.array(chainArb, { minLength: 1, maxLength: 10 }),
      held: fc.boolean(),
      order: fc.array(fc.nat(), { maxLength: 10 }),
    }),
    { minLength: 1, maxLength: 6 },
  ),
});

/** `ring`: the layout the driver negotiates (the function offers packed only for 'packed'). */
export function validTrafficProperty(ring: RingLayout = 'split'): fc.IProperty<any> {
  return fc.property(validTrafficArb, (c) => {
    const device = new LoopbackDevice({ maxQueueSize: 1 << c.sizeLog });
    const t = DriverMock.create(device, { byteAccess: c.byteAccess, pci: { barKind: c.barKind, ring } });
    const wanted = VERSION_1 | (c.indirect ? INDIRECT : 0n) | (c.eventIdx ? EVENT_IDX : 0n) | (ring === 'packed' ? PACKED : 0n);
    const [q] = t.initRings({ features: wanted, startIdx: c.start });
    if (t.fn.negotiatedFeatures !== wanted) fail('negotiation did not take the requested features');
    if (t.fn.queue(0)?.layout !== ring) fail(`the device built a ${t.fn.queue(0)?.layout} queue, not ${ring}`);
    const size = q.size;
    let totalPopped = 0;

    for (const batch of c.batches) {
      // Like Linux's virtqueue_enable_cb: interrupt me for the next used entry.
      q.armInterrupt();
      device.autoComplete = !batch.held;
      const expected = new Map<number, { data: Uint8Array }>();
      const allowed: Array<[number, number]> = q.deviceWritableAreas();
      for (const spec of batch.chains) {
        const parts = spec.readable.length + spec.writable.length;
        if (parts === 0) continue;
        // §2.7.5.3.1 / §2.8.17: no chain longer than the queue size, indirect ones included.
        const indirect = spec.indirect && c.indirect && parts <= size;
        if (q.freeDescriptors < (indirect ? 1 : parts)) continue;
        const sub = q.add({ readable: spec.readable, writable: spec.writable, indirect });
        const capacity = spec.writable.reduce((s, n) => s + n, 0);
        expected.set(sub.head, { data: loopbackOutput(sub.head, concat(spec.readable), capacity) });
        for (const r of sub.writable) allowed.push([r.addr, r.addr + r.len]);
      }
      if (expected.size === 0) continue;

      const notices = t.memory.writtenNotices.length;
      t.memory.log.length = 0;
      t.memory.tracing = true;
      const kicked = q.kick();
      if (batch.held) {
        // Complete in an arbitrary order, one at a time.
        const held = [...device.held].sort(
          (a, b) => (batch.order[a.chain.headIndex % 10] ?? 0) - (batch.order[b.chain.headIndex % 10] ?? 0),
        );
        for (const h of held) device.complete((x) => x === h);
      }
      t.memory.tracing = false;

      totalPopped += expected.size;
      if (device.popped.length !== totalPopped) {
        fail(`device saw ${device.popped.length} chains, driver submitted ${totalPopped} (kicked: ${kicked})`);
      }
      const used = q.used();
      if (used.length !== expected.size) fail(`${used.length} used elements for ${expected.size} chains`);
      for (const u of used) {
        const want = expected.get(u.head) ?? fail(`head ${u.head} used twice or never submitted`);
        expected.delete(u.head);
        if (u.len !== want.data.length) fail(`head ${u.head}: used len ${u.len}, expected ${want.data.length}`);
        if (!u.data.every((b, i) => b === want.data[i])) fail(`head ${u.head}: wrong bytes`);
      }
      // The device wrote only the used ring and the chains' writable buffers.
      const inside = (addr: number, len: number) => allowed.some(([lo, hi]) => addr >= lo && addr + len <= hi);
      for (const w of t.memory.log) {
        if (w.op === 'write' && !inside(w.addr, w.len)) fail(`device wrote [0x${w.addr.toString(16)}, +${w.len})`);
      }
      for (const w of t.memory.writtenNotices.slice(notices)) {
        if (!inside(w.addr, w.len)) fail(`device reported a write at [0x${w.addr.toString(16)}, +${w.len})`);
      }
      // used_event asked for an interrupt, so one must be pending now.
      if (!t.irq.level || (t.readIsr() & 1) === 0) fail('no queue interrupt after completions');
      if (t.irq.level) fail('reading ISR did not lower the line');
      t.recycleBuffers();
    }
    if (t.errors.length > 0) fail(`unexpected error: ${t.errors[0]}`);
    checkInvariants(t);
  });
}

// ---- 2. garbage rings: never a throw, never outside RAM, always recoverable --------------

const MEM = 1 << 16;
const GARBAGE_TABLE = 0xc000; // random descriptors here, for indirect tables to point at

function descArb(size: number) {
  return fc.record({
    addr: fc.oneof(
      fc.integer({ min: 0, max: MEM - 1 }),
      fc.integer({ min: 0, max: 255 }).map((i) => GARBAGE_TABLE + 16 * i),
      fc.integer({ min: MEM - 64, max: MEM + 64 }),
      fc.integer({ min: 0, max: 0xffffffff }),
    ),
    hi: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) }),
    len: fc.oneof(
      fc.integer({ min: 0, max: 128 }),
      fc.constantFrom(16, 32, 64, 4096, 0xfffffff0, 0xffffffff),
      fc.integer({ min: 0, max: 0xffffffff }),
    ),
    flags: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 0xffff })),
    next: fc.oneof(fc.integer({ min: 0, max: Math.max(0, size - 1) }), fc.integer({ min: 0, max: 0xffff })),
  });
}

type Desc = { addr: number; hi: number; len: number; flags: number; next: number };

function writeRawDesc(t: DriverMock, at: number, d: Desc): void {
  t.memory.writeU32(at, d.addr >>> 0);
  t.memory.writeU32(at + 4, d.hi >>> 0);
  t.memory.writeU32(at + 8, d.len >>> 0);
  t.memory.writeU16(at + 12, d.flags);
  t.memory.writeU16(at + 14, d.next);
}

/** A garbage campaign's queue: size 1..64, features, the driver's start position from `start`. */
const ringSetupArb = (start: fc.Arbitrary<number>) =>
  fc.record({
    sizeLog: fc.integer({ min: 0, max: 6 }),
    eventIdx: fc.boolean(),
    indirect: fc.boolean(),
    start,
    /** With the inspector watching: its tracer on every pop, its snapshot after each round. */
    inspect: fc.boolean(),
  });

const garbageArb = ringSetupArb(fc.oneof(fc.constant(0), fc.integer({ min: 65520, max: 65535 })))
  .chain((setup) => {
    const size = 1 << setup.sizeLog;
    return fc.record({
      setup: fc.constant(setup),
      garbageTable: fc.array(descArb(4), { maxLength: 32 }), // small `next`: walks stay in the table
      rounds: fc.array(
        fc.record({
          descs: fc.array(fc.tuple(fc.integer({ min: 0, max: size - 1 }), descArb(size)), { maxLength: size }),
          validChains: fc.integer({ min: 0, max: 2 }),
          heads: fc.array(fc.oneof(fc.integer({ min: 0, max: size - 1 }), fc.integer({ min: 0, max: 0xffff })), {
            maxLength: size + 1,
          }),
          availJump: fc.oneof(
            { weight: 5, arbitrary: fc.constant(0) },
            { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
          ),
          held: fc.boolean(),
          resetAfter: fc.boolean(),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    });
  });

/** After a reset, the device must work again for an honest driver. */
function checkRecovery(t: DriverMock, device: LoopbackDevice): void {
  device.autoComplete = true;
  const [q] = t.init();
  const sub = q.add({ writable: [3] });
  q.kick();
  const used = q.used();
  if (used.length !== 1 || used[0].head !== sub.head || used[0].len !== 3) fail('device did not recover after reset');
  if (errorsSinceReset(t) > 0) fail(`error after recovery: ${t.errors.at(-1)}`);
}

export function garbageRingProperty(coverage = new Map<string, number>()): fc.IProperty<any> {
  return fc.property(garbageArb, ({ setup, garbageTable, rounds }) => {
    const device = new LoopbackDevice({ maxQueueSize: 1 << setup.sizeLog });
    const t = DriverMock.create(device, { memorySize: MEM });
    const wanted = VERSION_1 | (setup.indirect ? INDIRECT : 0n) | (setup.eventIdx ? EVENT_IDX : 0n);
    let [q] = t.init({ features: wanted, startIdx: setup.start });
    garbageTable.forEach((d, i) => writeRawDesc(t, GARBAGE_TABLE + 16 * i, d));
    const timeline = setup.inspect ? new Timeline() : undefined;
    t.fn.tracer = timeline;

    for (const round of rounds) {
      device.autoComplete = !round.held;
      for (let i = 0; i < round.validChains && q.freeDescriptors >= 2; i++) {
        q.add({ readable: [Uint8Array.of(i)], writable: [4], indirect: setup.indirect && i === 1 });
      }
      for (const [index, d] of round.descs) writeRawDesc(t, q.addr.desc + 16 * index, d);
      for (const head of round.heads) q.publish(head);
      if (round.availJump) {
        q.availIdx = (q.availIdx + round.availJump) & 0xffff;
        t.memory.writeU16(q.addr.avail + 2, q.availIdx);
      }
      q.notify();
      device.complete();
      checkInvariants(t);
      if (timeline) checkInspector(t, {}, timeline);
      if (round.resetAfter) {
        checkRecovery(t, device);
        q = t.queues[0] as DriverQueue;
      }
    }
    checkRecovery(t, device);
    checkInvariants(t);
    recordReasons(t, coverage);
  });
}

// ---- 2b. garbage packed rings ----------------------------------------------------------

const packedGarbageArb = ringSetupArb(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 200 })))
  .chain((setup) => {
    const size = 1 << setup.sizeLog;
    const slotDesc = fc.record({
      slot: fc.integer({ min: 0, max: size - 1 }),
      desc: descArb(size),
      id: fc.oneof(fc.integer({ min: 0, max: size }), fc.integer({ min: 0, max: 0xffff })),
      // Mostly available for one lap or the other, so walks get past the first check.
      availability: fc.constantFrom<'this' | 'other' | 'raw'>('this', 'this', 'other', 'raw'),
    });
    return fc.record({
      setup: fc.constant(setup),
      garbageTable: fc.array(descArb(4), { maxLength: 32 }),
      rounds: fc.array(
        fc.record({
          descs: fc.array(slotDesc, { maxLength: size + 2 }),
          validChains: fc.integer({ min: 0, max: 2 }),
          driverEvent: fc.record({ flags: fc.integer({ min: 0, max: 0xffff }), offWrap: fc.integer({ min: 0, max: 0xffff }) }),
          held: fc.boolean(),
          resetAfter: fc.boolean(),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    });
  });

/** After a reset, a packed ring must work again for an honest driver. */
function checkPackedRecovery(t: DriverMock, device: LoopbackDevice, features: bigint): PackedDriverQueue {
  device.autoComplete = true;
  const [q] = t.initRings({ features });
  if (!(q instanceof PackedDriverQueue)) return fail('recovery did not negotiate a packed ring');
  const sub = q.add({ writable: [3] });
  q.kick();
  const used = q.used();
  if (used.length !== 1 || used[0].head !== sub.head || used[0].len !== 3) fail('packed device did not recover after reset');
  if (errorsSinceReset(t) > 0) fail(`error after recovery: ${t.errors.at(-1)}`);
  return q;
}

/**
 * A hostile driver on a packed ring: random descriptors in random slots, flagged available
 * for this lap, the other one or anything, random Buffer IDs, random driver event
 * suppression. Never a throw out of the transport, never memory outside RAM, every error
 * with DEVICE_NEEDS_RESET, and a reset always recovers.
 */
export function packedGarbageRingProperty(coverage = new Map<string, number>()): fc.IProperty<any> {
  return fc.property(packedGarbageArb, ({ setup, garbageTable, rounds }) => {
    const device = new LoopbackDevice({ maxQueueSize: 1 << setup.sizeLog });
    const t = DriverMock.create(device, { memorySize: MEM, pci: { ring: 'packed' } });
    const wanted = VERSION_1 | PACKED | (setup.indirect ? INDIRECT : 0n) | (setup.eventIdx ? EVENT_IDX : 0n);
    let [ring] = t.initRings({ features: wanted, startIdx: setup.start });
    if (!(ring instanceof PackedDriverQueue)) return fail('the device did not build a packed ring');
    let q: PackedDriverQueue = ring;
    garbageTable.forEach((d, i) => writeRawDesc(t, GARBAGE_TABLE + 16 * i, d));
    const timeline = setup.inspect ? new Timeline() : undefined;
    t.fn.tracer = timeline;

    for (const round of rounds) {
      device.autoComplete = !round.held;
      for (let i = 0; i < round.validChains && q.freeDescriptors >= 2; i++) {
        q.add({ readable: [Uint8Array.of(i)], writable: [4], indirect: setup.indirect && i === 1 });
      }
      for (const { slot, desc, id, availability } of round.descs) {
        const wrapBits =
          availability === 'raw' ? desc.flags & 0x8080 : PackedDriverQueue.availBits(availability === 'this' ? q.availWrap : !q.availWrap);
        q.writeRaw(q.slotAddr(slot), { addr: desc.addr, hi: desc.hi, len: desc.len, id, flags: (desc.flags & ~0x8080) | wrapBits });
      }
      q.setDriverEventOffWrap(round.driverEvent.offWrap);
      q.setDriverEventFlags(round.driverEvent.flags);
      q.notify();
      device.complete();
      checkInvariants(t);
      if (timeline) checkInspector(t, {}, timeline);
      if (round.resetAfter) q = checkPackedRecovery(t, device, wanted);
    }
    checkPackedRecovery(t, device, wanted);
    checkInvariants(t);
    recordReasons(t, coverage);
    // The engine's own answer is asked too: the bytes the driver reads back stay sane.
    if (q.deviceEvent.flags > RingEventFlags.DESC) fail(`device wrote event flags ${q.deviceEvent.flags}`);
  });
}

export function virtioProperties(): NamedProperty[] {
  const coverage = new Map<string, number>();
  const packedCoverage = new Map<string, number>();
  return [
    { name: 'ring: valid traffic completes every chain exactly once', property: validTrafficProperty() },
    { name: 'packed ring: valid traffic completes every chain exactly once', property: validTrafficProperty('packed') },
    { name: 'packed ring: garbage rings never escape and always recover', property: packedGarbageRingProperty(packedCoverage), coverage: packedCoverage },
    { name: 'ring: garbage rings never escape and always recover', property: garbageRingProperty(coverage), coverage },
    loopbackBoundedWorkNamedProperty(),
    loopbackBoundedWorkNamedProperty('packed'),
  ];
}

