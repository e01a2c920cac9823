import { describe, expect, it } from 'vitest';
import {
  VIRTQ_DESC_F_INDIRECT as INDIRECT,
  VIRTQ_DESC_F_NEXT as NEXT,
  VIRTQ_DESC_F_WRITE as WRITE,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_USED_F_NO_NOTIFY,
} from '../constants.ts';
import { NO_EVENT_IDX, loopbackQueue } from '../testing/loopback-driver.ts';
import { snapshotFunction } from './function-snapshot.ts';
import { snapshotQueue } from './queue-snapshot.ts';
import type { SplitQueue } from '../queue/split-queue.ts';
import { Timeline } from './timeline.ts';
import type { AvailView, DescRow, QueueSnapshot, UsedView } from './types.ts';

function setup(opts: { features?: bigint; startIdx?: number; held?: boolean } = {}) {
  const { device, t, q } = loopbackQueue(opts);
  const snap = (): QueueSnapshot => snapshotQueue(t.fn.queue(0) as SplitQueue, 'q0', t.fn.queueCounters[0]!);
  return { device, t, q: q!, snap };
}
const avail = (s: QueueSnapshot) => s.avail as AvailView;
const used = (s: QueueSnapshot) => s.used as UsedView;

describe('queue snapshot', () => {
  it('follows the 16-bit indices across the wrap at 65535', () => {
    const { device, q, snap } = setup({ startIdx: 65534, held: true });
    for (let i = 0; i < 3; i++) q.add({ writable: [16] });
    let s = snap();
    expect(avail(s).idx).toBe(1); // 65534 + 3 wrapped
    expect(s.lastAvailIdx).toBe(65534);
    expect(s.pending).toBe(3);
    expect(s.chains.map((c) => c.state)).toEqual(['pending', 'pending', 'pending']);
    expect(avail(s).entries.slice(-3).map((e) => e.pos)).toEqual([65534, 65535, 0]);

    q.kick();
    s = snap();
    expect(s.lastAvailIdx).toBe(1);
    expect(s.pending).toBe(0);
    expect(s.inFlight).toBe(3);
    expect(s.chains.every((c) => c.state === 'in-flight')).toBe(true);

    device.complete();
    s = snap();
    expect(used(s).idx).toBe(1);
    expect(used(s).entries.slice(-3).map((e) => e.pos)).toEqual([65534, 65535, 0]);
    expect(used(s).entries.slice(-3).every((e) => e.len === 16)).toBe(true);
    expect(s.counters).toMatchObject({ requests: 3, completions: 3 });
  });

  it('draws an indirect chain: one INDIRECT descriptor, its table expanded', () => {
    const { q, snap } = setup({ held: true });
    const sub = q.add({ readable: [new Uint8Array(16)], writable: [512, 1], indirect: true });
    const s = snap();
    const row = s.descriptors.find((d) => d.index === sub.head)!;
    expect(row.flags & INDIRECT).toBeTruthy();
    expect(row.len).toBe(48);
    const table = row.indirect as readonly DescRow[];
    expect(table.map((d) => d.len)).toEqual([16, 512, 1]);
    expect(table.map((d) => d.flags)).toEqual([NEXT, NEXT | WRITE, WRITE]);
    expect(s.chains[0]).toEqual({ head: sub.head, state: 'pending', descriptors: [sub.head] });
  });

  it('shows NO_NOTIFY / NO_INTERRUPT without EVENT_IDX, and counts what they suppressed', () => {
    const { t, q, snap } = setup({ features: NO_EVENT_IDX });
    t.fn.queue(0)!.disableNotifications();
    q.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    q.add({ writable: [8] });
    expect(q.kick()).toBe(false); // NO_NOTIFY: the driver did not kick
    t.fn.queue(0)!.enableNotifications();
    q.add({ writable: [8] });
    q.kick();
    const s = snap();
    expect(used(s).flags).toBe(0);
    expect(avail(s).flags).toBe(VRING_AVAIL_F_NO_INTERRUPT);
    expect(avail(s).usedEvent).toBeUndefined();
    expect(s.counters).toEqual({ kicks: 1, requests: 2, interrupts: 0, completions: 2 });
  });

  it('shows used_event / avail_event under EVENT_IDX', () => {
    const { q, snap } = setup();
    q.setUsedEvent(5);
    q.add({ writable: [8] });
    q.kick();
    const s = snap();
    expect(avail(s).usedEvent).toBe(5);
    expect(used(s).availEvent).toBe(1);
    expect(s.counters.interrupts).toBe(0); // used idx 1 did not pass used_event 5
    const noNotify = snapshotQueue(setup({ features: NO_EVENT_IDX }).t.fn.queue(0) as SplitQueue, 'q', { kicks: 0, interrupts: 0 });
    expect((noNotify.used as UsedView).flags & VRING_USED_F_NO_NOTIFY).toBe(0);
  });

  it('never throws on garbage: bad heads, loops and tables outside RAM become marks', () => {
    const { t, q, snap } = setup({ held: true });
    q.writeDesc(q.addr.desc, 0, 0x2000, 8, NEXT, 1);
    q.writeDesc(q.addr.desc, 1, 0x2000, 8, NEXT, 0); // loop
    q.writeDesc(q.addr.desc, 2, 0xfffffff0, 64, INDIRECT, 0); // indirect table outside RAM
    q.publish(0);
    q.publish(2);
    q.publish(200); // head ≥ size
    const s = snap();
    expect(s.chains.map((c) => c.truncated)).toEqual(['loop back to 0', undefined, 'index 200 ≥ queue size']);
    expect(s.descriptors.find((d) => d.index === 2)!.indirect).toHaveProperty('unreadable');
    expect(t.errors).toEqual([]); // looking is not touching: the queue is not broken
  });
});

describe('function snapshot and timeline', () => {
  it('names status bits and features, and records kick → pop → complete → interrupt', () => {
    let now = 100;
    const { t, q } = setup();
    const timeline = new Timeline({ completed: (_m, _q, chain, len) => ({ detail: `${len} of ${chain?.writableLength}` }) }, 8, () => now++);
    t.fn.tracer = timeline;
    q.add({ writable: [32] });
    q.kick();
    const s = snapshotFunction(t.fn, { queueNames: ['requestq'] }, timeline.takeNew());
    expect(s.statusNames).toEqual(['ACKNOWLEDGE', 'DRIVER', 'DRIVER_OK', 'FEATURES_OK']);
    expect(s.features.find((f) => f.name === 'VIRTIO_F_RING_EVENT_IDX')).toMatchObject({ offered: true, accepted: true });
    expect(s.queues[0]!.name).toBe('requestq');
    expect(s.events.map((e) => e.kind)).toEqual(['kick', 'pop', 'complete', 'interrupt']);
    expect(s.events[2]).toMatchObject({ queue: 0, len: 32, detail: '32 of 32', t: 102 });
    expect(timeline.takeNew()).toEqual([]); // only what is new
    // A bounded ring: a burst larger than it keeps the newest.
    for (let i = 0; i < 5; i++) {
      q.add({ writable: [4] });
      q.kick();
    }
    const burst = timeline.takeNew();
    expect(burst.length).toBe(8);
    expect(burst.at(-1)!.kind).toBe('complete'); // used_event stayed behind: no interrupt
    t.fn.tracer = undefined;
    expect(t.fn.queue(0)!.observer).toBeUndefined();
  });

  it('freeze holds chains back, step serves exactly one, resume serves the rest', () => {
    const { t, q, snap } = setup();
    const gate = t.fn.gates[0]!;
    gate.frozen = true;
    for (let i = 0; i < 3; i++) q.add({ writable: [8] });
    q.kick();
    expect(snap()).toMatchObject({ pending: 3, frozen: true });
    expect(q.used()).toEqual([]);
    gate.credits++;
    t.fn.serviceQueue(0);
    expect(q.used().length).toBe(1);
    expect(snap().pending).toBe(2);
    gate.frozen = false;
    t.fn.serviceQueue(0);
    expect(q.used().length).toBe(2);
    expect(snap()).toMatchObject({ pending: 0, frozen: false, counters: { kicks: 1, requests: 3 } });
  });

  it('records each device_status change as a status event: reset, ACKNOWLEDGE → DRIVER → FEATURES_OK → DRIVER_OK', () => {
    const { t } = setup();
    const timeline = new Timeline({}, 64, () => 0);
    t.fn.tracer = timeline;
    t.init(); // resets first, as a driver probe does
    const ev = timeline.takeNew().filter((e) => e.kind === 'reset' || e.kind === 'status');
    expect(ev.map((e) => e.fields?.status ?? e.kind)).toEqual(['reset', 0x01, 0x03, 0x0b, 0x0f]);
    expect(ev.at(-1)!.detail).toBe('0x0f: ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK');
    // A write that changes nothing (bits only accumulate) records nothing.
    t.status = 0x0f;
    expect(timeline.takeNew()).toEqual([]);
  });
});
