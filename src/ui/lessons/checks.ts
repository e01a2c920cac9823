/**
 * The pieces lessons build their checks from: finding things in a snapshot, and the
 * common shapes of question ("click the counter", "type the value of…"). Every verdict
 * is computed from the view the learner is looking at, never from a fixed answer.
 */
import type { AvailView, ChainView, DescRow, FunctionSnapshot, QueueSnapshot, TimelineEvent, UsedView } from '../../virtio/inspect/types.ts';
import { parseTarget, target } from '../inspector/targets.ts';
import type { ClickCheck, LessonView, NumberCheck, Verdict } from './types.ts';

export const ok = (say?: string): Verdict => (say === undefined ? { ok: true } : { ok: true, say });
export const no = (why: string, look?: string): Verdict => (look === undefined ? { ok: false, why } : { ok: false, why, look });

export function queueOf(fn: FunctionSnapshot, q: number): QueueSnapshot | undefined {
  return fn.queues[q];
}
export function availOf(q: QueueSnapshot | undefined): AvailView | undefined {
  return q && 'idx' in q.avail ? q.avail : undefined;
}
export function usedOf(q: QueueSnapshot | undefined): UsedView | undefined {
  return q && 'idx' in q.used ? q.used : undefined;
}
export function descOf(q: QueueSnapshot, index: number): DescRow | undefined {
  return q.descriptors.find((d) => d.index === index);
}
/** An indirect table's rows (empty when the descriptor is not INDIRECT or unreadable). */
export function indirectRows(d: DescRow | undefined): readonly DescRow[] {
  return d?.indirect && Array.isArray(d.indirect) ? d.indirect : [];
}
export function chainsIn(q: QueueSnapshot, state: ChainView['state']): ChainView[] {
  return q.chains.filter((c) => c.state === state);
}
/** The descriptors a chain really holds: the ring's own, or its indirect table's rows. */
export function chainRows(q: QueueSnapshot, head: number): readonly DescRow[] {
  const first = descOf(q, head);
  const table = indirectRows(first);
  if (table.length > 0) return table;
  const chain = q.chains.find((c) => c.head === head);
  return (chain?.descriptors ?? [head]).map((i) => descOf(q, i)).filter((d): d is DescRow => d !== undefined);
}
export function stat(devices: LessonView['devices'], device: string, key: string): number {
  return devices.find((d) => d.name === `virtio-${device}`)?.extra[key] ?? 0;
}

/** The timeline row of the newest event `match` accepts, else the whole timeline: where to look. */
export function newestEvent(v: LessonView, match: (e: TimelineEvent) => boolean): string {
  for (let i = v.events.length - 1; i >= 0; i--) if (match(v.events[i]!)) return target.event(v.events[i]!.seq);
  return target.timeline;
}

/** Parses what the learner typed: decimal, or hex with 0x. */
export function parseAnswer(text: string): number | undefined {
  const t = text.trim().replace(/[_,\s]/g, '');
  if (/^0x[0-9a-f]+$/i.test(t)) return parseInt(t.slice(2), 16);
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  return undefined;
}

/** "Type the number shown at `look`": right when it equals `value(view)`. */
export function typeValue(question: string, look: string, value: (v: LessonView) => number | undefined, explain: string): NumberCheck {
  return {
    kind: 'number',
    question,
    verify(v, n) {
      const want = value(v);
      if (want === undefined) return no(`Nothing to read yet. ${explain}`, look);
      return n === want ? ok() : no(explain, look);
    },
  };
}

/** "Click the X": right when the clicked target satisfies `accept(view, target)`. */
export function clickWhere(question: string, accept: (v: LessonView, t: ReturnType<typeof parseTarget>, raw: string) => Verdict): ClickCheck {
  return { kind: 'click', question, verify: (v, t) => accept(v, parseTarget(t), t) };
}

/** "Click the status bit that…": right when the bit's name is `name`. */
export function clickStatusBit(question: string, name: string, explain: string): ClickCheck {
  return clickWhere(question, (_v, t) => (t.kind === 'status' && t.args[0] === name ? ok() : no(explain, target.statusBit(name))));
}

/** "Click the feature bit that…": right when it is `name` (and says whether the driver accepted it). */
export function clickFeature(question: string, name: string, hint: string): ClickCheck {
  return clickWhere(question, (v, t) => {
    if (t.kind !== 'feature') return no('Click one of the feature chips under the status line (hover one for its meaning).', target.feature(name));
    if (t.args[0] !== name) return no(`${t.args[0]} is about something else. ${hint}`, target.feature(name));
    return v.fn.features.find((f) => f.name === name)?.accepted ? ok('Offered by the device and accepted by the driver.') : ok('That is the bit, though the driver did not accept it here.');
  });
}

/** Within ±`rel` (relative) or ±`abs`, whichever is larger: for counters that move while the learner reads. */
export function near(n: number, want: number, rel: number, abs: number): boolean {
  return Math.abs(n - want) <= Math.max(abs, Math.abs(want) * rel);
}

/** A 4 KiB block of the disk nobody has read yet, most likely: a read of it must reach the device (the page cache has not got it). */
export function freshBlock(v: LessonView): number {
  const cap = v.fn.config.find((f) => f.name === 'capacity')?.value ?? '';
  const blocks = Math.floor(Number(/^(\d+)/.exec(cap)?.[1] ?? 8192) / 8);
  return 64 + Math.floor(v.seed * Math.max(1, blocks - 128));
}

/** "Type how many chains are pending", which also wants the queue frozen. */
export function typePending(q: number, question = 'How many chains are pending on the queue now?'): NumberCheck {
  return {
    kind: 'number',
    question,
    verify(v, n) {
      const qs = queueOf(v.fn, q);
      if (!qs) return no('This queue is not there yet.');
      if (n !== qs.pending) return no('Read the outlined `pending` counter: avail.idx − last_avail_idx, chains the driver made available that the device has not taken.', target.counter(q, 'pending'));
      return qs.frozen ? ok() : ok('Right, though the queue is not frozen: press Freeze so it stays still.');
    },
  };
}

/** The newest used element whose chain was pending or in flight when the step's action was taken (else the newest). */
export function servedEntry(v: LessonView, q: number, minLen = 0): { pos: number; id: number; len: number } | undefined {
  const used = usedOf(queueOf(v.fn, q));
  if (!used) return undefined;
  const before = v.start ? queueOf(v.start.fn, q) : undefined;
  const waiting = new Set(before ? before.chains.filter((c) => c.state !== 'used').map((c) => c.head) : []);
  const startIdx = usedOf(before)?.idx;
  const fresh = used.entries.filter((e) => e.len >= minLen && (startIdx === undefined || ((e.pos - startIdx) & 0xffff) < ((used.idx - startIdx) & 0xffff)));
  return [...fresh].reverse().find((e) => waiting.size === 0 || waiting.has(e.id)) ?? fresh.at(-1);
}
