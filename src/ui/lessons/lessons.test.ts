/**
 * Every lesson's checks against snapshots recorded from the running lab (fixtures/, written by
 * `RECORD_LESSON_FIXTURES=1 npx playwright test e2e/lessons.spec.ts`): the right answer, read
 * off the snapshot the way the learner reads the panel, passes; a wrong one fails and says
 * where to look.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DeviceStats } from '../../vm/protocol.ts';
import type { DescRow, FunctionSnapshot, QueueSnapshot, TimelineEvent, UsedView } from '../../virtio/inspect/types.ts';
import { target } from '../inspector/targets.ts';
import { LESSONS } from './lessons/index.ts';
import { wireFrames } from './lessons/07-net-offloads.ts';
import type { Check, LessonView, Verdict } from './types.ts';

interface Recorded {
  fn: FunctionSnapshot;
  events: TimelineEvent[];
  devices: DeviceStats[];
}

const load = (name: string): Recorded => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8')) as Recorded;

function view(name: string, startName?: string): LessonView {
  const r = load(name);
  const v: LessonView = { fn: r.fn, events: r.events, devices: r.devices, port: 8080, seed: 0.5 };
  if (!startName) return v;
  const s = load(startName);
  return { ...v, start: { fn: s.fn, devices: s.devices, lastSeq: s.events.at(-1)?.seq ?? 0 } };
}

function check(lesson: string, step: number): Check {
  const l = LESSONS.find((x) => x.id === lesson)!;
  return l.steps[step - 1]!.check;
}
function answer(lesson: string, step: number, v: LessonView, a: string | number): Verdict {
  const c = check(lesson, step);
  if (c.kind === 'click') return c.verify(v, String(a));
  return c.verify(v, Number(a));
}
const right = (verdict: Verdict) => expect(verdict).toMatchObject({ ok: true });
const wrong = (verdict: Verdict) => {
  expect(verdict.ok).toBe(false);
  expect(verdict.ok ? '' : verdict.why).not.toBe('');
};

const q = (v: LessonView, i = 0): QueueSnapshot => v.fn.queues[i]!;
const used = (v: LessonView, i = 0) => q(v, i).used as UsedView;
const pending = (v: LessonView, i = 0) => q(v, i).chains.filter((c) => c.state === 'pending').map((c) => c.head);
const row = (v: LessonView, index: number, i = 0) => q(v, i).descriptors.find((d) => d.index === index)!;

describe('lesson list', () => {
  it('has eight lessons of 4–10 steps, unique ids, each step citing its source', () => {
    expect(LESSONS).toHaveLength(8);
    expect(new Set(LESSONS.map((l) => l.id)).size).toBe(8);
    // Found by file name, in file-name order: the learner's path.
    expect(LESSONS.map((l) => l.id)).toEqual(['devices', 'block-read', 'indices', 'notifications', 'indirect', 'net-receive', 'net-offloads', 'reset']);
    for (const l of LESSONS) {
      expect(l.steps.length).toBeGreaterThanOrEqual(4);
      expect(l.steps.length).toBeLessThanOrEqual(10);
      for (const s of l.steps) expect(s.cite.some((c) => /§\d/.test(c))).toBe(true);
    }
  });
});

describe('1 devices (rng after unbind + bind)', () => {
  const v = view('rng-rebound');
  it('BAR0 base', () => {
    right(answer('devices', 1, v, v.fn.pci!.bar0));
    wrong(answer('devices', 1, v, v.fn.pci!.bar0 + 0x40));
  });
  it('DRIVER_OK is the live bit', () => {
    right(answer('devices', 2, v, target.statusBit('DRIVER_OK')));
    expect(answer('devices', 2, v, target.statusBit('FEATURES_OK'))).toMatchObject({ ok: false, look: target.statusBit('DRIVER_OK') });
  });
  it('device_status as shown', () => {
    right(answer('devices', 3, v, v.fn.status));
    wrong(answer('devices', 3, v, 1));
  });
  it('the timeline event where negotiation finished (status 0x0b), not DRIVER_OK', () => {
    const status = v.events.filter((e) => e.kind === 'status');
    expect(status.map((e) => e.fields?.status)).toEqual(expect.arrayContaining([1, 3, 0x0b, 0x0f]));
    right(answer('devices', 4, v, target.event(status.find((e) => e.fields?.status === 0x0b)!.seq)));
    expect(answer('devices', 4, v, target.event(status.find((e) => e.fields?.status === 0x0f)!.seq))).toMatchObject({ ok: false, why: expect.stringContaining('DRIVER_OK') });
    wrong(answer('devices', 4, v, target.event(v.events.find((e) => e.kind === 'kick')?.seq ?? -1)));
  });
  it('features accepted', () => {
    right(answer('devices', 5, v, v.fn.features.filter((f) => f.accepted).length));
    wrong(answer('devices', 5, v, v.fn.features.length + 1));
  });
});

describe('2 block-read (a frozen 4 KiB read, then stepped)', () => {
  const frozen = view('blk-frozen-read');
  const stepped = view('blk-stepped-read', 'blk-frozen-read');
  // The request the e2e made: the pending chain whose indirect table is header, 4096, status.
  const head = pending(frozen).find((h) => (row(frozen, h).indirect as DescRow[] | undefined)?.map((r) => r.len).join() === '16,4096,1')!;
  it('pending, on a frozen queue', () => {
    expect(q(frozen).frozen).toBe(true);
    right(answer('block-read', 1, frozen, q(frozen).pending));
    wrong(answer('block-read', 1, frozen, q(frozen).pending + 1));
  });
  it('the head of the pending chain, not a row inside its table', () => {
    expect(head).toBeDefined();
    right(answer('block-read', 2, frozen, target.desc(0, head)));
    wrong(answer('block-read', 2, frozen, target.indirectDesc(0, head, 0)));
  });
  it('the data descriptor: writable, not the header or the status byte', () => {
    right(answer('block-read', 3, frozen, target.indirectDesc(0, head, 1)));
    expect(answer('block-read', 3, frozen, target.indirectDesc(0, head, 0))).toMatchObject({ ok: false, why: expect.stringContaining('no W') });
    expect(answer('block-read', 3, frozen, target.indirectDesc(0, head, 2))).toMatchObject({ ok: false, why: expect.stringContaining('status') });
  });
  it('the used element of the stepped chain, and its len 4097', () => {
    const e = used(stepped).entries.find((x) => x.id === head && x.len === 4097)!;
    expect(e).toBeDefined();
    right(answer('block-read', 4, stepped, target.usedEntry(0, e.pos)));
    wrong(answer('block-read', 4, stepped, target.usedEntry(0, (e.pos - 1) & 0xffff)));
    right(answer('block-read', 5, stepped, 4097));
    wrong(answer('block-read', 5, stepped, 4096));
  });
  it('after resume: pending, and a frozen queue is told to resume', () => {
    const resumed = view('blk-wrapped');
    right(answer('block-read', 6, resumed, q(resumed).pending));
    expect(answer('block-read', 6, frozen, q(frozen).pending)).toMatchObject({ ok: false, look: target.control(0, 'resume') });
  });
});

describe('3 indices (including the wrap)', () => {
  const frozen = view('blk-frozen-read');
  it('avail.idx, last_avail_idx, pending = avail.idx − last_avail_idx, used.idx', () => {
    const a = q(frozen).avail as { idx: number };
    right(answer('indices', 1, frozen, a.idx));
    wrong(answer('indices', 1, frozen, a.idx + 1));
    right(answer('indices', 2, frozen, q(frozen).lastAvailIdx));
    expect((a.idx - q(frozen).lastAvailIdx) & 0xffff).toBe(q(frozen).pending);
    right(answer('indices', 3, frozen, q(frozen).pending));
    right(answer('indices', 4, frozen, used(frozen).idx));
    wrong(answer('indices', 4, frozen, a.idx + 7));
  });
  it('used.idx after the wrap: small again, and only once it really wrapped', () => {
    const wrapped = view('blk-wrapped', 'blk-before-wrap');
    const before = view('blk-before-wrap');
    const served = q(wrapped).counters.completions - q(before).counters.completions;
    expect(used(before).idx + served).toBeGreaterThanOrEqual(65536); // the recording did wrap
    expect(used(wrapped).idx).toBe((used(before).idx + served) & 0xffff);
    right(answer('indices', 5, wrapped, used(wrapped).idx));
    wrong(answer('indices', 5, wrapped, used(wrapped).idx + 65536));
    // Before fio ran far enough it is not wrapped, whatever the learner types.
    const notYet = view('blk-before-wrap', 'blk-frozen-read');
    expect(answer('indices', 5, notYet, used(notYet).idx)).toMatchObject({ ok: false, why: expect.stringContaining('Not wrapped yet') });
  });
});

describe('4 notifications (fio at depth 32)', () => {
  const after = view('blk-after-qd32', 'blk-before-qd32');
  const d = {
    requests: q(after).counters.requests - q(view('blk-before-qd32')).counters.requests,
    kicks: q(after).counters.kicks - q(view('blk-before-qd32')).counters.kicks,
  };
  it('requests so far', () => {
    right(answer('notifications', 1, after, q(after).counters.requests));
    wrong(answer('notifications', 1, after, q(after).counters.kicks));
  });
  it('requests per kick at depth 32, from the counters since Run', () => {
    expect(d.kicks).toBeLessThan(d.requests / 2);
    right(answer('notifications', 3, after, Math.round(d.requests / d.kicks)));
    wrong(answer('notifications', 3, after, 1));
  });
  it('avail_event is the device’s field; EVENT_IDX the feature', () => {
    right(answer('notifications', 4, after, target.availEvent(0)));
    expect(answer('notifications', 4, after, target.usedEvent(0))).toMatchObject({ ok: false, look: target.availEvent(0) });
    right(answer('notifications', 5, after, target.feature('VIRTIO_F_RING_EVENT_IDX')));
    wrong(answer('notifications', 5, after, target.feature('VIRTIO_F_RING_INDIRECT_DESC')));
  });
});

describe('5 indirect (a frozen 256 KiB read)', () => {
  const frozen = view('blk-frozen-256k');
  const big = pending(frozen).map((h) => row(frozen, h)).sort((a, b) => b.len - a.len)[0]!;
  it('the INDIRECT ring descriptor and the size of its table', () => {
    const entries = big.len / 16;
    expect(entries).toBeGreaterThan(16); // more than the inspector draws
    expect((big.indirect as DescRow[]).length).toBe(16);
    right(answer('indirect', 3, frozen, target.desc(0, big.index)));
    wrong(answer('indirect', 3, frozen, target.indirectDesc(0, big.index, 1)));
    right(answer('indirect', 4, frozen, entries));
    wrong(answer('indirect', 4, frozen, 16)); // the rows drawn, not the table
  });
  it('its used len after resume', () => {
    const after = view('blk-after-256k', 'blk-frozen-256k');
    right(answer('indirect', 5, after, 262145));
    wrong(answer('indirect', 5, after, 262144));
  });
});

describe('6 net-receive (after a ping)', () => {
  const v = view('net-ping');
  const reply = v.events.find((e) => e.kind === 'complete' && /ICMP echo reply/.test(e.detail ?? ''))!;
  it('posted buffers and their size', () => {
    right(answer('net-receive', 1, v, q(v).pending));
    const len = row(v, pending(v)[0]!).len;
    right(answer('net-receive', 2, v, len));
    wrong(answer('net-receive', 2, v, len + 1));
  });
  it('the echo reply’s completion and its len (12-byte header + 98-byte frame)', () => {
    right(answer('net-receive', 4, v, target.event(reply.seq)));
    const tx = v.events.find((e) => e.queue === 1 && e.kind === 'pop')!;
    expect(answer('net-receive', 4, v, target.event(tx.seq))).toMatchObject({ ok: false, why: expect.stringContaining('transmitq') });
    right(answer('net-receive', 5, v, 110));
    wrong(answer('net-receive', 5, v, 98));
  });
});

describe('7 net-offloads (during a 2 MiB upload)', () => {
  const v = view('net-tso', 'net-before-upload');
  const gso = v.events.filter((e) => (wireFrames(e) ?? 0) > 1);
  it('a gso super-frame row, and the frames it becomes', () => {
    expect(gso.length).toBeGreaterThan(0);
    right(answer('net-offloads', 3, v, target.event(gso.at(-1)!.seq)));
    wrong(answer('net-offloads', 3, v, target.event(v.events.find((e) => e.queue === 0)!.seq)));
    right(answer('net-offloads', 4, v, wireFrames(gso.at(-1)!)!));
    wrong(answer('net-offloads', 4, v, 1));
  });
  it('features', () => {
    right(answer('net-offloads', 1, v, target.feature('VIRTIO_NET_F_CSUM')));
    wrong(answer('net-offloads', 1, v, target.feature('VIRTIO_NET_F_GUEST_CSUM')));
    right(answer('net-offloads', 2, v, target.feature('VIRTIO_NET_F_HOST_TSO4')));
  });
});

describe('8 reset', () => {
  const broken = view('rng-needs-reset');
  const healthy = view('rng-rebound');
  it('DEVICE_NEEDS_RESET, set by DRIVER_OK without FEATURES_OK', () => {
    expect(broken.fn.status & 0x40).toBe(0x40);
    expect(broken.events.some((e) => e.kind === 'error')).toBe(true);
    right(answer('reset', 1, healthy, target.statusBit('DEVICE_NEEDS_RESET')));
    wrong(answer('reset', 1, healthy, target.statusBit('FAILED')));
    right(answer('reset', 3, broken, target.statusBit('DEVICE_NEEDS_RESET')));
    expect(answer('reset', 3, healthy, target.statusBit('DEVICE_NEEDS_RESET'))).toMatchObject({ ok: false, why: expect.stringContaining('not set') });
  });
  it('resets counted; the status after recovery; the newest used element', () => {
    right(answer('reset', 2, broken, broken.fn.resets));
    wrong(answer('reset', 2, broken, broken.fn.resets + 1));
    right(answer('reset', 4, healthy, 0x0f));
    expect(answer('reset', 4, broken, broken.fn.status)).toMatchObject({ ok: false, why: expect.stringContaining('still set') });
    const u = used(healthy);
    right(answer('reset', 5, healthy, target.usedEntry(0, (u.idx - 1) & 0xffff)));
    wrong(answer('reset', 5, healthy, target.usedEntry(0, (u.idx - 2) & 0xffff)));
  });
});
