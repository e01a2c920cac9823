/**
 * Stable names for the parts of the inspector a lesson can point at or ask about: each
 * element carries one as `data-lab`, lessons highlight them and the learner answers by
 * clicking them. A name says what the element shows, never where it is drawn.
 */
export type CounterName = 'last_avail_idx' | 'pending' | 'in_flight' | 'kicks' | 'interrupts';
export type QueueAction = 'freeze' | 'step' | 'resume';

export const target = {
  statusValue: 'status-value',
  statusBit: (name: string) => `status:${name}`,
  feature: (name: string) => `feature:${name}`,
  bar0: 'bar0',
  irq: 'irq',
  isr: 'isr',
  resets: 'resets',
  config: (name: string) => `config:${name}`,
  queue: (q: number) => `queue:${q}`,
  control: (q: number, action: QueueAction) => `control:${q}:${action}`,
  counter: (q: number, name: CounterName) => `counter:${q}:${name}`,
  /** A descriptor of the ring's table. */
  desc: (q: number, index: number) => `desc:${q}:${index}`,
  /** Row `index` of the indirect table that descriptor `head` points at. */
  indirectDesc: (q: number, head: number, index: number) => `desc:${q}:${head}/${index}`,
  availIdx: (q: number) => `avail-idx:${q}`,
  availFlags: (q: number) => `avail-flags:${q}`,
  usedEvent: (q: number) => `used-event:${q}`,
  /** An avail ring entry by its free-running index. */
  availEntry: (q: number, pos: number) => `avail:${q}:${pos}`,
  usedIdx: (q: number) => `used-idx:${q}`,
  usedFlags: (q: number) => `used-flags:${q}`,
  availEvent: (q: number) => `avail-event:${q}`,
  usedEntry: (q: number, pos: number) => `used:${q}:${pos}`,
  timeline: 'timeline',
  event: (seq: number) => `event:${seq}`,
} as const;

/** A clicked target, taken apart: `desc:0:4/2` → { kind: 'desc', queue: 0, index: 4, nested: 2 }. */
export interface ParsedTarget {
  kind: string;
  /** The rest after the kind, split on ':' (names stay strings). */
  args: string[];
  queue?: number;
  index?: number;
  nested?: number;
}

export function parseTarget(t: string): ParsedTarget {
  const [kind = '', ...args] = t.split(':');
  const p: ParsedTarget = { kind, args };
  const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);
  if (['desc', 'avail', 'used', 'counter', 'control', 'queue', 'avail-idx', 'used-idx', 'avail-flags', 'used-flags', 'used-event', 'avail-event'].includes(kind)) {
    p.queue = num(args[0]);
    const [i, j] = (args[1] ?? '').split('/');
    p.index = num(i);
    p.nested = num(j);
  } else if (kind === 'event') {
    p.index = num(args[0]);
  }
  return p;
}
