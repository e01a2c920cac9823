import { describe, expect, it } from 'vitest';
import {
  DeviceStatus,
  Feature,
  IsrBit,
  RingEventFlags,
  VIRTQ_DESC_F_AVAIL as AVAIL,
  VIRTQ_DESC_F_INDIRECT as INDIRECT,
  VIRTQ_DESC_F_NEXT as NEXT,
  VIRTQ_DESC_F_USED as USED,
  VIRTQ_DESC_F_WRITE as WRITE,
  features,
} from '../constants.ts';
import { maxDescriptorReadsPerKick } from '../budget.ts';
import { DriverMock } from '../testing/driver-mock.ts';
import { LoopbackDevice } from '../testing/loopback-device.ts';
import { PackedDriverQueue } from '../testing/packed-driver-queue.ts';
import { VirtqueueError } from './errors.ts';
import { PackedQueue } from './packed-queue.ts';
import { offWrap } from './packed-layout.ts';
import { ArrayMemory } from '../testing/array-memory.ts';
import { PACKED, PACKED_ALL as ALL, PACKED_NO_EVENT_IDX as NO_EVENT_IDX, packedLoopback, type PackedLoopbackOptions } from '../testing/packed-loopback.ts';

const setup = (opts: Omit<PackedLoopbackOptions, 'memorySize'> = {}) => packedLoopback(opts);

describe('transport: offering and negotiating VIRTIO_F_RING_PACKED', () => {
  it('offers bit 34 only when created with ring packed, and builds a PackedQueue only when the driver takes it', () => {
    const split = DriverMock.create(new LoopbackDevice());
    expect(split.deviceFeatures() & PACKED).toBe(0n);
    const offered = DriverMock.create(new LoopbackDevice(), { pci: { ring: 'packed' } });
    expect(offered.deviceFeatures() & PACKED).toBe(PACKED);
    offered.initRings({ features: ALL & ~PACKED });
    expect(offered.fn.queue(0)!.layout).toBe('split');
    offered.initRings({ features: ALL });
    expect(offered.fn.queue(0)!.layout).toBe('packed');
    // Refused where not offered: FEATURES_OK stays clear.
    expect(split.negotiate(ALL)).toBe(false);
  });

  it('accepts a queue size that is not a power of 2 on a packed ring only (§4.1.4.3.2)', () => {
    const { t, q, engine } = setup({ queueSize: 6 });
    expect(engine.size).toBe(6);
    for (let round = 0; round < 5; round++) {
      q.add({ writable: [4] });
      q.add({ readable: [Uint8Array.of(round)], writable: [1] });
      q.kick();
      expect(q.used()).toHaveLength(2);
    }
    expect(t.errors).toEqual([]);
    const split = DriverMock.create(new LoopbackDevice({ maxQueueSize: 8 }), { memorySize: 1 << 16 });
    split.negotiate();
    expect(() => split.setupQueue(0, { size: 6 })).not.toThrow();
    expect(split.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
  });
});

describe('PackedQueue: normal operation', () => {
  it('pops a chain, reads the Buffer ID from its last descriptor and writes one used descriptor', () => {
    const { device, t, q, engine } = setup();
    const sub = q.add({ readable: [Uint8Array.of(1, 2), Uint8Array.of(3)], writable: [2, 4] });
    expect(q.kick()).toBe(true);
    const chain = device.popped[0]!.chain;
    expect(chain.headIndex).toBe(sub.head);
    expect(chain).toMatchObject({ readableLength: 3, writableLength: 6, indirect: false });
    expect(q.used()).toEqual([{ head: sub.head, len: 3, data: Uint8Array.of(1, 2, 3) }]);
    // One used descriptor at slot 0 with AVAIL = USED = 1 and WRITE; the position skips all 4 slots.
    expect(t.memory.readU16(q.slotAddr(0) + 14)).toBe(AVAIL | USED | WRITE);
    expect(engine.state()).toMatchObject({ nextAvail: 4, nextUsed: 4, availWrap: true, usedWrap: true, inFlight: 0 });
    expect(t.errors).toEqual([]);
  });

  it('clears WRITE in a used descriptor when nothing was written (§2.8.3)', () => {
    const { t, q } = setup();
    q.add({ readable: [Uint8Array.of(9)] });
    q.kick();
    expect(q.used()).toEqual([{ head: expect.any(Number), len: 0, data: new Uint8Array(0) }]);
    expect(t.memory.readU16(q.slotAddr(0) + 14)).toBe(AVAIL | USED);
  });

  it('wraps around the ring many times, flipping both wrap counters, with lists that straddle the end', () => {
    const { t, q, engine, device } = setup({ size: 4 });
    let total = 0;
    for (let round = 0; round < 9; round++) {
      const subs = [q.add({ readable: [Uint8Array.of(round)], writable: [1, 1] }), q.add({ writable: [2] })];
      q.kick();
      const used = q.used();
      expect(used.map((u) => u.head).sort()).toEqual(subs.map((s) => s.head).sort());
      expect(used.find((u) => u.head === subs[0]!.head)!.data).toEqual(Uint8Array.of(round));
      total += 4;
    }
    expect(device.popped).toHaveLength(18);
    expect(engine.state()).toMatchObject({ nextAvail: total % 4, availWrap: Math.floor(total / 4) % 2 === 0 });
    expect(t.errors).toEqual([]);
  });

  it('completes out of order: used descriptors go in completion order, each skipping its own list (§2.8.6)', () => {
    const { device, t, q, engine } = setup({ held: true });
    const a = q.add({ writable: [1] });
    const b = q.add({ readable: [Uint8Array.of(7)], writable: [1, 1] });
    const c = q.add({ writable: [2] });
    q.kick();
    expect(device.held).toHaveLength(3);
    expect(engine.inFlightChains()).toEqual(
      [
        { id: a.head, firstSlot: 0, slots: 1, writableLength: 1 },
        { id: b.head, firstSlot: 1, slots: 3, writableLength: 2 },
        { id: c.head, firstSlot: 4, slots: 1, writableLength: 2 },
      ].sort((x, y) => x.id - y.id),
    );
    device.complete((h) => h.chain.headIndex === b.head);
    device.complete((h) => h.chain.headIndex === c.head);
    device.complete((h) => h.chain.headIndex === a.head);
    expect(q.used().map((u) => u.head)).toEqual([b.head, c.head, a.head]);
    // b's used descriptor sits where a's list began, c's at slot 3, a's at slot 4.
    expect(t.memory.readU16(q.slotAddr(0) + 12)).toBe(b.head);
    expect(t.memory.readU16(q.slotAddr(3) + 12)).toBe(c.head);
    expect(t.memory.readU16(q.slotAddr(4) + 12)).toBe(a.head);
    expect(t.errors).toEqual([]);
  });

  it('follows an indirect table: one ring slot, entries in order, only WRITE read', () => {
    const { device, t, q, engine } = setup();
    const sub = q.add({ readable: [Uint8Array.of(5, 6, 7)], writable: [1, 1, 1], indirect: true });
    q.kick();
    expect(device.popped[0]!.chain).toMatchObject({ indirect: true, readableLength: 3, writableLength: 3 });
    expect(q.used()).toEqual([{ head: sub.head, len: 3, data: Uint8Array.of(5, 6, 7) }]);
    expect(engine.state()).toMatchObject({ nextAvail: 1, nextUsed: 1 });
    expect(t.errors).toEqual([]);
  });

  it('counts pending chains by list ends, and the inspector gate holds pops back (freeze and step)', () => {
    const { t, q, engine, device } = setup({ held: true });
    const gate = { frozen: true, credits: 0 };
    engine.gate = gate;
    q.add({ writable: [1] });
    q.add({ readable: [Uint8Array.of(1)], writable: [1, 1] });
    q.add({ writable: [2], indirect: true });
    q.kick();
    expect(device.popped).toHaveLength(0);
    gate.frozen = false;
    expect(engine.pending()).toBe(3);
    gate.frozen = true;
    gate.credits = 1;
    expect(engine.pending()).toBe(1);
    t.fn.serviceQueue(0);
    expect(device.popped).toHaveLength(1);
    gate.frozen = false;
    t.fn.serviceQueue(0);
    expect(device.popped).toHaveLength(3);
    expect(engine.pending()).toBe(0);
    expect(t.errors).toEqual([]);
  });

  it('resumes at a restored position on an odd lap (the wrap counters start at 0)', () => {
    const { t, q, engine } = setup({ size: 4, startIdx: 4 * 3 + 2 });
    expect(engine.state()).toMatchObject({ nextAvail: 2, availWrap: false, nextUsed: 2, usedWrap: false });
    for (let round = 0; round < 3; round++) {
      q.add({ writable: [1, 1] });
      q.add({ writable: [3] });
      q.kick();
      expect(q.used()).toHaveLength(2);
    }
    expect(t.errors).toEqual([]);
  });
});

describe('PackedQueue: event suppression (§2.8.10)', () => {
  it('with EVENT_IDX publishes DESC at the next slot it will read, so a batch needs one kick', () => {
    const { device, q } = setup({ held: true });
    q.add({ writable: [1] });
    expect(q.kick()).toBe(true);
    expect(q.deviceEvent).toEqual({ flags: RingEventFlags.DESC, offWrap: offWrap(1, true) });
    device.complete();
    q.used();
    q.add({ writable: [1] });
    q.add({ writable: [1] });
    expect(q.kick()).toBe(true);
    expect(q.deviceEvent.offWrap).toBe(offWrap(3, true));
  });

  it('disableNotifications writes DISABLE and the driver stops kicking; enable reports waiting chains', () => {
    const { t, q, engine } = setup({ held: true });
    engine.disableNotifications();
    expect(q.deviceEvent.flags).toBe(RingEventFlags.DISABLE);
    q.add({ writable: [1] });
    expect(q.kick()).toBe(false);
    expect(engine.enableNotifications()).toBe(true);
    expect(q.deviceEvent).toEqual({ flags: RingEventFlags.DESC, offWrap: offWrap(0, true) });
    expect(engine.pending()).toBe(1);
    expect(t.errors).toEqual([]);
  });

  it('without EVENT_IDX: ENABLE / DISABLE only', () => {
    const { q, engine } = setup({ features: NO_EVENT_IDX, held: true });
    engine.disableNotifications();
    expect(q.deviceEvent.flags).toBe(RingEventFlags.DISABLE);
    engine.enableNotifications();
    expect(q.deviceEvent.flags).toBe(RingEventFlags.ENABLE);
  });

  it('interrupts per the driver event suppression: DISABLE none, ENABLE each batch, DESC when the named slot is used', () => {
    const { device, t, q } = setup({ held: true, size: 8 });
    const batch = (n: number) => {
      for (let i = 0; i < n; i++) q.add({ writable: [1] });
      q.kick();
      device.complete();
      q.used();
      const raised = t.irq.level;
      t.readIsr();
      return raised;
    };
    q.setDriverEventFlags(RingEventFlags.DISABLE);
    expect(batch(2)).toBe(false);
    q.setDriverEventFlags(RingEventFlags.ENABLE);
    expect(batch(1)).toBe(true);
    // DESC at slot 6 (this lap): slots 3..4 used → no; 5..6 → yes.
    q.setDriverEventOffWrap(offWrap(6, true));
    q.setDriverEventFlags(RingEventFlags.DESC);
    expect(batch(2)).toBe(false);
    expect(batch(2)).toBe(true);
    // DESC at slot 1 of the next lap (wrap 0): slot 7 → no; 0..1 after wrapping → yes.
    q.setDriverEventOffWrap(offWrap(1, false));
    expect(batch(1)).toBe(false);
    expect(batch(2)).toBe(true);
    expect(t.errors).toEqual([]);
  });

  it('armInterrupt (DESC at the next used slot) gets exactly the next completion signalled', () => {
    const { device, t, q } = setup({ held: true });
    q.add({ writable: [1] });
    q.add({ writable: [1] });
    q.kick();
    q.armInterrupt();
    device.complete();
    expect(t.irq.level).toBe(true);
    expect(t.readIsr() & IsrBit.QUEUE).toBe(IsrBit.QUEUE);
  });
});

describe('PackedQueue: a hostile driver breaks only its own queue', () => {
  const BUF = 0x8000;
  const TABLE = 0x9000;
  type Build = (t: DriverMock, q: PackedDriverQueue) => void;
  const avail = (wrap = true) => PackedDriverQueue.availBits(wrap);
  const cases: Array<[string, string, Build, bigint?]> = [
    ['buffer id ≥ queue size', 'chain at slot 0: buffer id 8 ≥ queue size 8', (_t, q) => q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 8, flags: avail() })],
    ['buffer beyond RAM', 'descriptor 0: buffer [0xfff0, +32) is outside guest RAM', (_t, q) => q.writeRaw(q.slotAddr(0), { addr: 0xfff0, len: 32, id: 0, flags: WRITE | avail() })],
    ['high address bits', 'descriptor 0: address 0x1_00008000 is beyond 4 GiB', (_t, q) => q.writeRaw(q.slotAddr(0), { addr: BUF, hi: 1, len: 4, id: 0, flags: avail() })],
    ['list runs into an unavailable descriptor', 'descriptor 1: in the chain at slot 0 but not available', (_t, q) => {
      q.writeRaw(q.slotAddr(1), { addr: BUF, len: 4, id: 0, flags: avail(false) });
      q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 0, flags: NEXT | avail() });
    }],
    ['list longer than the ring', 'chain at slot 0 runs past 8 free ring slots', (_t, q) => {
      for (let i = 7; i >= 0; i--) q.writeRaw(q.slotAddr(i), { addr: BUF, len: 4, id: 0, flags: NEXT | avail() });
    }],
    ['readable after writable', 'descriptor 1: driver-readable descriptor after a writable one', (_t, q) => {
      q.writeRaw(q.slotAddr(1), { addr: BUF, len: 4, id: 0, flags: avail() });
      q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 0, flags: WRITE | NEXT | avail() });
    }],
    ['INDIRECT without the feature', 'descriptor 0: INDIRECT but VIRTIO_F_RING_INDIRECT_DESC not negotiated', (_t, q) => {
      q.writeRaw(q.slotAddr(0), { addr: TABLE, len: 16, id: 0, flags: INDIRECT | avail() });
    }, features(Feature.VIRTIO_F_VERSION_1) | PACKED],
    ['INDIRECT in a NEXT list', 'descriptor 1: INDIRECT inside a NEXT list', (_t, q) => {
      q.writeRaw(q.slotAddr(1), { addr: TABLE, len: 16, id: 0, flags: INDIRECT | avail() });
      q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 0, flags: NEXT | avail() });
    }],
    ['INDIRECT with NEXT', 'descriptor 0: INDIRECT inside a NEXT list', (_t, q) => {
      q.writeRaw(q.slotAddr(1), { addr: BUF, len: 4, id: 0, flags: avail() });
      q.writeRaw(q.slotAddr(0), { addr: TABLE, len: 16, id: 0, flags: INDIRECT | NEXT | avail() });
    }],
    ['indirect length not a multiple of 16', 'descriptor 0: indirect table length 20 is not a nonzero multiple of 16', (_t, q) => {
      q.writeRaw(q.slotAddr(0), { addr: TABLE, len: 20, id: 0, flags: INDIRECT | avail() });
    }],
    ['indirect table longer than the queue', 'descriptor 0: indirect table of 9 descriptors is longer than the queue size 8', (_t, q) => {
      q.writeRaw(q.slotAddr(0), { addr: TABLE, len: 16 * 9, id: 0, flags: INDIRECT | avail() });
    }],
    ['indirect entry beyond RAM', 'indirect descriptor 1 (slot 0): buffer [0x10000, +1) is outside guest RAM', (t, q) => {
      q.writeRaw(TABLE, { addr: BUF, len: 4, id: 0, flags: 0 });
      q.writeRaw(TABLE + 16, { addr: 0x10000, len: 1, id: 0, flags: WRITE });
      q.writeRaw(q.slotAddr(0), { addr: TABLE, len: 32, id: 0, flags: INDIRECT | avail() });
    }],
    ['buffer id already in flight', 'chain at slot 1: buffer id 3 is already in flight', (_t, q) => {
      q.writeRaw(q.slotAddr(1), { addr: BUF, len: 4, id: 3, flags: avail() });
      q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 3, flags: avail() });
    }],
  ];

  for (const [name, reason, build, feats] of cases) {
    it(`refuses ${name}: DEVICE_NEEDS_RESET, the queue stops, a reset recovers`, () => {
      const { device, t, q, engine } = setup({ size: 8, features: feats ?? ALL, held: true });
      build(t, q);
      q.notify();
      expect(t.errors[0]).toContain(reason);
      expect(engine.broken).toBeInstanceOf(VirtqueueError);
      expect(t.status & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
      expect(engine.pop()).toBeNull();
      // An honest bring-up works again.
      device.autoComplete = true;
      const [again] = t.initRings({ features: ALL });
      const sub = again!.add({ writable: [3] });
      again!.kick();
      expect(again!.used()).toEqual([expect.objectContaining({ head: sub.head, len: 3 })]);
    });
  }

  it('ignores descriptors that are not available: zeroed, used, or of the other lap', () => {
    const { t, q, engine } = setup();
    q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 0, flags: AVAIL | USED });
    q.notify();
    q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 0, flags: avail(false) });
    q.notify();
    expect(engine.requests).toBe(0);
    expect(t.errors).toEqual([]);
  });

  it('a kick pops at most queue-size chains: used descriptors never read as available (the bound of budget.ts)', () => {
    const { t, q, engine, device } = setup({ size: 8 });
    for (let i = 0; i < 8; i++) q.add({ writable: [1] });
    const before = engine.descriptorsVisited;
    q.notify();
    // Each pop completes at once, so the device writes a used descriptor (AVAIL = USED) into
    // slot 0 before it looks there again under the flipped wrap counter: the walk stops.
    expect(device.popped).toHaveLength(8);
    expect(engine.descriptorsVisited - before).toBe(8);
    expect(engine.state()).toMatchObject({ nextAvail: 0, availWrap: false, inFlight: 0 });
    expect(q.used()).toHaveLength(8);
    expect(t.errors).toEqual([]);
  });

  it('a list that wraps onto slots still in flight is refused (the driver overwrote them)', () => {
    const { t, q, device } = setup({ size: 8, held: true });
    for (let i = 0; i < 6; i++) q.add({ writable: [1] });
    q.kick();
    expect(device.held).toHaveLength(6);
    // Slots 6, 7 then 0.. of the next lap, all claiming to be one list.
    q.writeRaw(q.slotAddr(0), { addr: BUF, len: 4, id: 7, flags: avail(false) });
    q.writeRaw(q.slotAddr(7), { addr: BUF, len: 4, id: 0, flags: NEXT | avail(true) });
    q.writeRaw(q.slotAddr(6), { addr: BUF, len: 4, id: 0, flags: NEXT | avail(true) });
    q.notify();
    expect(t.errors[0]).toContain('chain at slot 6 runs past 2 free ring slots');
  });

  it('refuses a configuration outside RAM or misaligned', () => {
    const memory = new ArrayMemory(4096);
    const base = { index: 0, size: 8, descRing: 0, driverEvent: 256, deviceEvent: 260, eventIdx: true, indirectDesc: true };
    expect(() => new PackedQueue(memory, { ...base, descRing: 8 })).toThrow('not 16-byte aligned');
    expect(() => new PackedQueue(memory, { ...base, driverEvent: 258 })).toThrow('not 4-byte aligned');
    expect(() => new PackedQueue(memory, { ...base, deviceEvent: 4096 })).toThrow('outside guest RAM');
    expect(() => new PackedQueue(memory, { ...base, size: 0 })).toThrow('queue size 0');
    expect(() => new PackedQueue(memory, { ...base, size: 6 })).not.toThrow();
  });

  it('pushUsed of a buffer not in flight or beyond its capacity is a device bug (throws)', () => {
    const { q, engine } = setup({ held: true });
    const sub = q.add({ writable: [2] });
    q.kick();
    expect(() => engine.pushUsed(sub.head + 1, 0)).toThrow('not in flight');
    expect(() => engine.pushUsed(sub.head, 3)).toThrow('holds 2 writable bytes');
    expect(engine.inFlightIds()).toEqual([sub.head]);
  });
});
