import { describe, expect, it } from 'vitest';
import {
  VIRTQ_DESC_F_AVAIL as AVAIL,
  VIRTQ_DESC_F_INDIRECT as INDIRECT,
  VIRTQ_DESC_F_NEXT as NEXT,
  VIRTQ_DESC_F_USED as USED,
  VIRTQ_DESC_F_WRITE as WRITE,
} from '../constants.ts';
import { offWrap } from '../queue/packed-layout.ts';
import { PACKED_NO_EVENT_IDX as NO_EVENT_IDX, packedLoopback, type PackedLoopbackOptions } from '../testing/packed-loopback.ts';
import { measure } from '../testing/work-meter.ts';
import { snapshotFunction } from './function-snapshot.ts';
import { PACKED_LIMITS } from './packed-snapshot.ts';
import { DEFAULT_LIMITS } from './queue-snapshot.ts';
import type { EventSuppressView, PackedRingView, QueueSnapshot } from './types.ts';

function setup(opts: Pick<PackedLoopbackOptions, 'size' | 'held' | 'features' | 'memorySize'> = {}) {
  const { device, t, q, engine } = packedLoopback(opts);
  const snap = (): QueueSnapshot => snapshotFunction(t.fn).queues[0]!;
  const ring = (s = snap()): PackedRingView => {
    if (!s.packed) throw new Error('no packed view');
    return s.packed;
  };
  return { device, t, q, engine, snap, ring };
}
const ev = (v: PackedRingView['driverEvent']) => v as EventSuppressView;
const states = (r: PackedRingView) => Object.fromEntries(r.slots.map((s) => [s.slot, s.state]));

describe('packed queue snapshot (§2.8)', () => {
  it('draws the driver ahead of the device, then both positions and wrap counters past the wrap', () => {
    const { device, q, snap, ring } = setup({ held: true });
    const a = q.add({ readable: [Uint8Array.of(1)], writable: [4] }); // slots 0–1
    const b = q.add({ writable: [4] }); // slot 2
    let s = snap();
    let r = ring(s);
    expect(r.device).toEqual({ nextAvail: 0, availWrap: true, nextUsed: 0, usedWrap: true });
    expect(r.driver).toEqual({ nextAvail: 3, wrap: true, exact: true });
    expect(s).toMatchObject({ pending: 2, inFlight: 0, descriptors: [] });
    expect(s.avail).toHaveProperty('unreadable'); // no avail ring drawn as split
    expect(s.chains).toEqual([
      { head: a.head, state: 'pending', descriptors: [0, 1] },
      { head: b.head, state: 'pending', descriptors: [2] },
    ]);
    expect(r.map).toBe('aaa·····');
    expect(r.slots.find((x) => x.slot === 0)).toMatchObject({ flags: AVAIL | NEXT, state: 'available' });
    expect(r.slots.find((x) => x.slot === 1)).toMatchObject({ id: a.head, flags: AVAIL | WRITE });

    q.kick();
    r = ring();
    expect(r.device).toMatchObject({ nextAvail: 3, nextUsed: 0 });
    expect(r).toMatchObject({ inFlightIds: [a.head, b.head], inFlightSlots: 3, availableSlots: 0, map: 'fff·····' });

    device.complete();
    q.used();
    r = ring();
    // Used descriptors at 0 (a, skipping its 2 slots) and 2 (b); slot 1 keeps a's stale tail.
    expect(r.map).toBe('u·u·····');
    expect(r.slots.find((x) => x.slot === 0)).toMatchObject({ id: a.head, flags: AVAIL | USED | WRITE, state: 'used' });

    for (let i = 0; i < 4; i++) q.add({ writable: [2] }); // slots 3–6
    q.kick();
    device.complete();
    q.used();
    const c = q.add({ readable: [Uint8Array.of(9)], writable: [2] }); // slots 7 and 0: straddles the end
    s = snap();
    r = ring(s);
    expect(r.device).toEqual({ nextAvail: 7, availWrap: true, nextUsed: 7, usedWrap: true });
    expect(r.driver).toEqual({ nextAvail: 1, wrap: false, exact: true });
    // Slot 0 made available on the next lap: AVAIL = 0 = the flipped wrap counter, USED = 1.
    expect(r.slots.find((x) => x.slot === 0)).toMatchObject({ flags: USED | WRITE, state: 'available' });
    expect(s.chains[0]).toEqual({ head: c.head, state: 'pending', descriptors: [7, 0] });

    q.kick();
    device.complete();
    s = snap();
    r = ring(s);
    expect(r.device).toEqual({ nextAvail: 1, availWrap: false, nextUsed: 1, usedWrap: false });
    expect(r.driver).toMatchObject({ nextAvail: 1, wrap: false });
    // Slot 7's used descriptor was written on the lap before (AVAIL = USED = 1); slot 0 was skipped.
    expect(states(r)[7]).toBe('used');
    expect(states(r)[0]).toBe('free');
    expect(s.counters).toMatchObject({ requests: 7, completions: 7 });
  });

  it('lists buffers in flight by Buffer ID with their slots, and a buffer used out of order', () => {
    const { device, q, snap, ring } = setup({ held: true });
    const a = q.add({ writable: [4, 4, 4] }); // slots 0–2
    const b = q.add({ writable: [4] }); // slot 3
    const c = q.add({ writable: [4] }); // slot 4
    q.kick();
    device.complete((h) => h.chain.headIndex === b.head);
    const s = snap();
    const r = ring(s);
    expect(r.inFlightIds).toEqual([a.head, c.head].sort((x, y) => x - y));
    expect(s.inFlight).toBe(2);
    // b's used descriptor overwrote a's first slot; the used position moved one slot (b's size).
    expect(r.device).toMatchObject({ nextUsed: 1, nextAvail: 5 });
    expect(r.map).toBe('uffff···');
    expect(r.slots.find((x) => x.slot === 0)).toMatchObject({ id: b.head, state: 'used' });
    // a still holds slots 0–2 (its first now shows b's used descriptor); b's slot 3 waits to be passed.
    expect(s.chains).toEqual([
      { head: a.head, state: 'in-flight', descriptors: [0, 1, 2] },
      { head: c.head, state: 'in-flight', descriptors: [4] },
      { head: b.head, state: 'used', descriptors: [0] },
    ]);
  });

  it('decodes both event suppression structures: ENABLE / DISABLE / DESC with off_wrap, and the reserved value', () => {
    const { t, q, engine, ring } = setup();
    q.add({ writable: [4] });
    q.kick();
    // EVENT_IDX: the device asks for a kick when slot 1 (wrap 1) becomes available.
    expect(ev(ring().deviceEvent)).toEqual({ flags: 2, mode: 'DESC', offWrap: offWrap(1, true), offset: 1, wrap: true });
    expect(ev(ring().driverEvent)).toMatchObject({ mode: 'ENABLE', flags: 0 });
    q.used();
    q.armInterrupt();
    expect(ev(ring().driverEvent)).toEqual({ flags: 2, mode: 'DESC', offWrap: 0x8001, offset: 1, wrap: true });
    q.setDriverEventFlags(1);
    expect(ev(ring().driverEvent).mode).toBe('DISABLE');
    q.setDriverEventFlags(0xfff3);
    q.setDriverEventOffWrap(0x0005);
    expect(ev(ring().driverEvent)).toEqual({ flags: 0xfff3, mode: 'reserved', offWrap: 5, offset: 5, wrap: false });
    engine.disableNotifications();
    expect(ev(ring().deviceEvent).mode).toBe('DISABLE');
    expect(t.errors).toEqual([]);

    const plain = setup({ features: NO_EVENT_IDX });
    plain.q.add({ writable: [4] });
    plain.q.kick();
    expect(ev(plain.ring().deviceEvent).mode).toBe('ENABLE');
  });

  it('freeze holds lists back, step serves exactly one, resume the rest: the gate is the split ring’s', () => {
    const { t, q, snap, ring } = setup();
    const gate = t.fn.gates[0]!;
    gate.frozen = true;
    for (let i = 0; i < 3; i++) q.add({ writable: [8] });
    q.kick();
    expect(snap()).toMatchObject({ pending: 3, frozen: true });
    expect(ring().map).toBe('aaa·····');
    gate.credits++;
    t.fn.serviceQueue(0);
    expect(q.used()).toHaveLength(1);
    expect(snap().pending).toBe(2);
    expect(ring().map).toBe('uaa·····');
    gate.frozen = false;
    t.fn.serviceQueue(0);
    expect(q.used()).toHaveLength(2);
    expect(snap()).toMatchObject({ pending: 0, frozen: false, counters: { kicks: 1, requests: 3 } });
  });

  it('never throws on garbage rings: random bytes, endless NEXT runs, indirect tables outside RAM; looking breaks nothing', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
    for (let round = 0; round < 60; round++) {
      const { device, t, q, engine, snap, ring } = setup({ held: true });
      for (let i = 0; i < 1 + Math.floor(rnd() * 3); i++) q.add({ writable: [4] });
      q.kick();
      const bytes = t.memory.bytes;
      const ringBytes = bytes.subarray(q.addr.desc, q.addr.desc + 16 * engine.size);
      for (let k = 0; k < ringBytes.length; k++) if (rnd() < 0.5) ringBytes[k] = Math.floor(rnd() * 256);
      // Every slot available under wrap 1 with NEXT (a list longer than any cap), one INDIRECT at 3 GiB.
      if (round % 3 === 0) for (let i = 0; i < engine.size; i++) q.writeRaw(q.slotAddr(i), { addr: 0x1000, len: 16, id: 0xffff, flags: AVAIL | NEXT });
      if (round % 3 === 1) q.writeRaw(q.slotAddr(engine.state().nextUsed), { addr: 0xc0000000, len: 64, id: 3, flags: AVAIL | INDIRECT });
      const s = snap();
      const r = ring(s);
      expect(() => JSON.stringify(s)).not.toThrow();
      expect(r.slots.length).toBeLessThanOrEqual(DEFAULT_LIMITS.descriptors);
      expect(s.chains.length).toBeLessThanOrEqual(DEFAULT_LIMITS.chains);
      expect(s.chains.every((c) => c.descriptors.length <= DEFAULT_LIMITS.chainLength + 1)).toBe(true);
      expect(r.map.length).toBe(engine.size);
      for (const row of r.slots) if (row.indirect && 'unreadable' in row.indirect) expect(row.indirect.unreadable).toMatch(/outside guest RAM/);
      expect(t.memory.rejected).toEqual([]);
      expect(t.errors).toEqual([]); // looking is not touching
      device.complete(() => false);
    }
  });

  it('bounded work per snapshot: a 32768-slot ring full of available descriptors is not read whole', () => {
    const { t, q, engine, snap, ring } = setup({ size: 32768, memorySize: 4 << 20 });
    for (let i = 0; i < engine.size; i++) q.writeRaw(q.slotAddr(i), { addr: 0x1000, len: 16, id: i & 0x7fff, flags: AVAIL | (i % 2 ? 0 : NEXT) });
    let s: QueueSnapshot | undefined;
    const work = measure(t.memory, () => {
      s = snap();
    });
    const r = ring(s);
    expect(r.availableSlots).toBe(PACKED_LIMITS.scan);
    expect(r.driver.exact).toBe(false);
    expect(s!.pending).toBe(PACKED_LIMITS.scan / 2);
    expect(r.map.length).toBe(PACKED_LIMITS.map);
    expect(r.slots.length).toBe(DEFAULT_LIMITS.descriptors);
    // Flag scan + map + rows and chains (5 reads per descriptor) + 4 event fields: far below one lap.
    const bound =
      PACKED_LIMITS.scan + PACKED_LIMITS.map + 5 * (DEFAULT_LIMITS.descriptors + DEFAULT_LIMITS.chains * DEFAULT_LIMITS.chainLength) + 4 + 16;
    expect(work.accesses).toBeLessThanOrEqual(bound);
    expect(bound).toBeLessThan(engine.size / 2);
    expect(t.errors).toEqual([]);
  });
});
