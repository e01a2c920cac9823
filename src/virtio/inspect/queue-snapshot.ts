/**
 * A split virtqueue as the spec draws it (§2.7): descriptor table, avail ring, used ring,
 * plus the device's own indices — read from guest memory without side effects, capped so
 * a 32768-entry queue still makes a small message (like QEMU's x-query-virtio-queue-*).
 */
import {
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
} from '../constants.ts';
import {
  DESC_SIZE,
  DescField,
  RING_ENTRIES,
  RING_FLAGS,
  RING_IDX,
  USED_ELEM_SIZE,
  availEventOffset,
  usedEventOffset,
} from '../queue/layout.ts';
import type { SplitQueue } from '../queue/split-queue.ts';
import { GuardedMemory } from './guarded-memory.ts';
import type { AvailView, ChainView, DescRow, QueueSnapshot, Unreadable, UsedView } from './types.ts';

export interface QueueSnapshotLimits {
  /** Newest avail / used ring entries shown. */
  ringEntries: number;
  /** Chains walked (pending first, then in flight, then recently used). */
  chains: number;
  /** Descriptors per chain, and per indirect table. */
  chainLength: number;
  /** Descriptor rows in total. */
  descriptors: number;
}

export const DEFAULT_LIMITS: QueueSnapshotLimits = { ringEntries: 16, chains: 24, chainLength: 16, descriptors: 64 };

/** Counters the transport keeps per queue index. */
export interface TransportQueueCounters {
  kicks: number;
  interrupts: number;
}

const unreadable = (what: string, addr: number): Unreadable => ({ unreadable: `${what} at 0x${addr.toString(16)} is outside guest RAM` });

/** `published`: entries the driver has made available since the queue was enabled (older slots hold nothing yet). */
function readAvail(mem: GuardedMemory, q: SplitQueue, limit: number, published: number): AvailView | Unreadable {
  const flags = mem.u16(q.availRing + RING_FLAGS);
  const idx = mem.u16(q.availRing + RING_IDX);
  if (flags === undefined || idx === undefined) return unreadable('avail ring', q.availRing);
  const entries: { pos: number; head: number }[] = [];
  const n = Math.min(limit, q.size, published);
  for (let k = n; k >= 1; k--) {
    const pos = (idx - k) & 0xffff;
    const head = mem.u16(q.availRing + RING_ENTRIES + 2 * (pos & (q.size - 1)));
    if (head !== undefined) entries.push({ pos, head });
  }
  const view: AvailView = { flags, idx, entries };
  if (!q.eventIdx) return view;
  return { ...view, usedEvent: mem.u16(q.availRing + usedEventOffset(q.size)) ?? 0 };
}

function readUsed(mem: GuardedMemory, q: SplitQueue, limit: number): UsedView | Unreadable {
  const flags = mem.u16(q.usedRing + RING_FLAGS);
  const idx = mem.u16(q.usedRing + RING_IDX);
  if (flags === undefined || idx === undefined) return unreadable('used ring', q.usedRing);
  const entries: { pos: number; id: number; len: number }[] = [];
  const n = Math.min(limit, q.size, q.completions);
  for (let k = n; k >= 1; k--) {
    const pos = (idx - k) & 0xffff;
    const at = q.usedRing + RING_ENTRIES + USED_ELEM_SIZE * (pos & (q.size - 1));
    const id = mem.u32(at);
    const len = mem.u32(at + 4);
    if (id !== undefined && len !== undefined) entries.push({ pos, id, len });
  }
  const view: UsedView = { flags, idx, entries };
  if (!q.eventIdx) return view;
  return { ...view, availEvent: mem.u16(q.usedRing + availEventOffset(q.size)) ?? 0 };
}

interface RawDesc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

function readDesc(mem: GuardedMemory, table: number, i: number): RawDesc | undefined {
  const base = table + DESC_SIZE * i;
  const lo = mem.u32(base + DescField.ADDR);
  const hi = mem.u32(base + DescField.ADDR + 4);
  const len = mem.u32(base + DescField.LEN);
  const flags = mem.u16(base + DescField.FLAGS);
  const next = mem.u16(base + DescField.NEXT);
  if (lo === undefined || hi === undefined || len === undefined || flags === undefined || next === undefined) return undefined;
  return { addr: hi * 2 ** 32 + lo, len, flags, next };
}

/** An indirect table's rows (§2.7.5.3), capped; never nested further. */
function readIndirect(mem: GuardedMemory, d: RawDesc, head: number, cap: number): DescRow[] | Unreadable {
  const count = Math.floor(d.len / DESC_SIZE);
  if (!mem.fits(d.addr, d.len)) return unreadable('indirect table', d.addr);
  const rows: DescRow[] = [];
  for (let i = 0; i < Math.min(count, cap); i++) {
    const r = readDesc(mem, d.addr, i);
    if (!r) break;
    rows.push({ index: i, ...r, head });
  }
  return rows;
}

/** Walk one chain in the ring's table without validating more than needed to stop safely. */
function walk(
  mem: GuardedMemory,
  q: SplitQueue,
  head: number,
  state: ChainView['state'],
  limits: QueueSnapshotLimits,
  rows: Map<number, DescRow>,
): ChainView {
  const descriptors: number[] = [];
  const seen = new Set<number>();
  let i = head;
  let truncated: string | undefined;
  for (;;) {
    if (i >= q.size) {
      truncated = `index ${i} ≥ queue size`;
      break;
    }
    if (seen.has(i)) {
      truncated = `loop back to ${i}`;
      break;
    }
    if (descriptors.length >= limits.chainLength) {
      truncated = `longer than ${limits.chainLength}`;
      break;
    }
    const d = readDesc(mem, q.descTable, i);
    if (!d) {
      truncated = 'descriptor table unreadable';
      break;
    }
    seen.add(i);
    descriptors.push(i);
    if (!rows.has(i) && rows.size < limits.descriptors) {
      const indirect = d.flags & VIRTQ_DESC_F_INDIRECT ? readIndirect(mem, d, head, limits.chainLength) : undefined;
      rows.set(i, indirect ? { index: i, ...d, head, indirect } : { index: i, ...d, head });
    }
    if (!(d.flags & VIRTQ_DESC_F_NEXT) || d.flags & VIRTQ_DESC_F_INDIRECT) break;
    i = d.next;
  }
  return truncated ? { head, state, descriptors, truncated } : { head, state, descriptors };
}

export function snapshotQueue(
  q: SplitQueue,
  name: string,
  counters: TransportQueueCounters,
  limits: QueueSnapshotLimits = DEFAULT_LIMITS,
): QueueSnapshot {
  const mem = new GuardedMemory(q.memory);
  const state = q.state();
  const availIdx = mem.u16(q.availRing + RING_IDX) ?? state.lastAvailIdx;
  const pending = (availIdx - state.lastAvailIdx) & 0xffff;
  const avail = readAvail(mem, q, limits.ringEntries, q.requests + pending);
  const used = readUsed(mem, q, limits.ringEntries);

  const rows = new Map<number, DescRow>();
  const chains: ChainView[] = [];
  const walked = new Set<number>();
  const add = (head: number, st: ChainView['state']) => {
    if (walked.has(head) || chains.length >= limits.chains) return;
    walked.add(head);
    chains.push(walk(mem, q, head, st, limits, rows));
  };
  // The driver's view ahead of the device: chains made available, not consumed yet.
  for (let k = 0; k < Math.min(pending, q.size, limits.chains); k++) {
    const head = mem.u16(q.availRing + RING_ENTRIES + 2 * ((state.lastAvailIdx + k) & (q.size - 1)));
    if (head !== undefined) add(head, 'pending');
  }
  for (const head of q.inFlightHeads()) add(head, 'in-flight');
  if ('entries' in used) {
    for (let k = used.entries.length - 1; k >= Math.max(0, used.entries.length - 4); k--) {
      const id = used.entries[k]!.id;
      if (id < q.size) add(id, 'used');
    }
  }
  const broken = state.broken;
  const snap: QueueSnapshot = {
    index: q.index,
    name,
    enabled: true,
    size: q.size,
    descTable: q.descTable,
    availRing: q.availRing,
    usedRing: q.usedRing,
    eventIdx: q.eventIdx,
    lastAvailIdx: state.lastAvailIdx,
    pending,
    inFlight: state.inFlight,
    avail,
    used,
    descriptors: [...rows.values()].sort((a, b) => a.index - b.index),
    chains,
    counters: { kicks: counters.kicks, requests: q.requests, interrupts: counters.interrupts, completions: q.completions },
    frozen: q.gate?.frozen ?? false,
  };
  return broken === undefined ? snap : { ...snap, broken };
}

/** A queue the driver has not enabled yet. */
export function disabledQueue(index: number, name: string, counters: TransportQueueCounters, frozen: boolean): QueueSnapshot {
  return {
    index,
    name,
    enabled: false,
    size: 0,
    descTable: 0,
    availRing: 0,
    usedRing: 0,
    eventIdx: false,
    lastAvailIdx: 0,
    pending: 0,
    inFlight: 0,
    avail: { unreadable: 'queue not enabled' },
    used: { unreadable: 'queue not enabled' },
    descriptors: [],
    chains: [],
    counters: { kicks: counters.kicks, requests: 0, interrupts: counters.interrupts, completions: 0 },
    frozen,
  };
}
