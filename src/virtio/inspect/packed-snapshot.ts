/**
 * A packed virtqueue as the spec draws it (§2.8): one descriptor ring whose slots carry
 * AVAIL/USED bits read against wrap counters, the device's and the driver's positions, the
 * Buffer IDs in flight, and the two event suppression structures decoded. Read from guest
 * memory without side effects and with bounded work: at most `scan` flag reads to find the
 * driver's position, `map` for the ring map, `descriptors` rows (each with at most
 * `chainLength` indirect entries) — whatever the guest wrote there.
 */
import { VIRTQ_DESC_F_AVAIL, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_USED } from '../constants.ts';
import { EventSuppressField, PACKED_DESC_SIZE, PackedDescField, splitOffWrap } from '../queue/packed-layout.ts';
import type { PackedQueue } from '../queue/packed-queue.ts';
import { GuardedMemory } from './guarded-memory.ts';
import type { QueueSnapshotLimits, TransportQueueCounters } from './queue-snapshot.ts';
import type { ChainView, DescRow, EventSuppressView, PackedRingView, PackedSlotRow, PackedSlotState, QueueSnapshot, Unreadable } from './types.ts';

/** The packed view's own caps, beside QueueSnapshotLimits' rows and chains. */
export interface PackedSnapshotLimits {
  /** Slots whose flags are read to find the end of the available run (the driver's position). */
  scan: number;
  /** Slots in the ring map. */
  map: number;
  /** Buffer IDs in flight listed. */
  ids: number;
}

export const PACKED_LIMITS: PackedSnapshotLimits = { scan: 1024, map: 256, ids: 64 };

const MODES = ['ENABLE', 'DISABLE', 'DESC', 'reserved'] as const;
const MAP_LETTER: Record<PackedSlotState, string> = { available: 'a', 'in-flight': 'f', used: 'u', free: '·' };

const unreadable = (what: string, addr: number): Unreadable => ({ unreadable: `${what} at 0x${addr.toString(16)} is outside guest RAM` });

/** §2.8.1: available under wrap counter `wrap` = AVAIL matches it and USED does not. */
export function isAvailableUnder(flags: number, wrap: boolean): boolean {
  return ((flags & VIRTQ_DESC_F_AVAIL) !== 0) === wrap && ((flags & VIRTQ_DESC_F_USED) !== 0) !== wrap;
}

/** §2.8.14 pvirtq_event_suppress at `addr`, decoded (§2.8.10: flags' low 2 bits, off_wrap). */
export function readEventSuppress(mem: GuardedMemory, addr: number): EventSuppressView | Unreadable {
  const offWrap = mem.u16(addr + EventSuppressField.OFF_WRAP);
  const flags = mem.u16(addr + EventSuppressField.FLAGS);
  if (offWrap === undefined || flags === undefined) return unreadable('event suppression structure', addr);
  const { offset, wrap } = splitOffWrap(offWrap);
  return { flags, mode: MODES[flags & 3]!, offWrap, offset, wrap };
}

interface RawPackedDesc {
  addr: number;
  len: number;
  id: number;
  flags: number;
}

function readPackedDesc(mem: GuardedMemory, at: number): RawPackedDesc | undefined {
  const lo = mem.u32(at + PackedDescField.ADDR);
  const hi = mem.u32(at + PackedDescField.ADDR + 4);
  const len = mem.u32(at + PackedDescField.LEN);
  const id = mem.u16(at + PackedDescField.ID);
  const flags = mem.u16(at + PackedDescField.FLAGS);
  if (lo === undefined || hi === undefined || len === undefined || id === undefined || flags === undefined) return undefined;
  return { addr: hi * 2 ** 32 + lo, len, id, flags };
}

/** An indirect table's entries (§2.8.7), capped: WRITE is their only flag, ids are ignored. */
function readIndirect(mem: GuardedMemory, d: RawPackedDesc, id: number, cap: number): DescRow[] | Unreadable {
  if (!mem.fits(d.addr, d.len)) return unreadable('indirect table', d.addr);
  const rows: DescRow[] = [];
  const count = Math.min(Math.floor(d.len / PACKED_DESC_SIZE), cap);
  for (let k = 0; k < count; k++) {
    const e = readPackedDesc(mem, d.addr + PACKED_DESC_SIZE * k);
    if (!e) break;
    rows.push({ index: k, addr: e.addr, len: e.len, flags: e.flags, next: 0, head: id });
  }
  return rows;
}

/** The ring's geometry at one instant: who owns which slot, in ring order from `nextUsed`. */
class RingReading {
  readonly size: number;
  readonly dev: PackedRingView['device'];
  readonly inFlightSlots: number;
  availableSlots = 0;
  /** Lists ending in the available run (descriptors without NEXT). */
  availableLists = 0;
  driver: PackedRingView['driver'];

  constructor(
    private readonly mem: GuardedMemory,
    private readonly q: PackedQueue,
    scan: number,
  ) {
    const st = q.state();
    this.size = q.size;
    this.dev = { nextAvail: st.nextAvail, availWrap: st.availWrap, nextUsed: st.nextUsed, usedWrap: st.usedWrap };
    this.inFlightSlots = Math.min(st.inFlightDescriptors, q.size);
    // The driver's position is the end of the available run from the device's (§2.8.1): the
    // engine's own rule, re-read here so a snapshot never moves the queue.
    let slot = this.dev.nextAvail;
    let wrap = this.dev.availWrap;
    const room = q.size - this.inFlightSlots;
    const limit = Math.min(room, scan);
    while (this.availableSlots < limit) {
      const flags = this.flags(slot);
      if (flags === undefined || !isAvailableUnder(flags, wrap)) break;
      this.availableSlots++;
      if (!(flags & VIRTQ_DESC_F_NEXT)) this.availableLists++;
      if (++slot === q.size) {
        slot = 0;
        wrap = !wrap;
      }
    }
    this.driver = { nextAvail: slot, wrap, exact: this.availableSlots < limit || limit === room };
  }

  flags(slot: number): number | undefined {
    return this.mem.u16(this.q.descRing + PACKED_DESC_SIZE * slot + PackedDescField.FLAGS);
  }

  /** Distance from the device's used position, going forward around the ring. */
  private fromUsed(slot: number): number {
    return (slot - this.dev.nextUsed + this.size) % this.size;
  }

  state(slot: number, d: RawPackedDesc | undefined): PackedSlotState {
    const k = this.fromUsed(slot);
    if (k < this.inFlightSlots) return 'in-flight';
    if (k < this.inFlightSlots + this.availableSlots) return 'available';
    if (!d) return 'free';
    // Used descriptors before the used position were written on this lap, the rest on the last.
    const wrap = slot < this.dev.nextUsed ? this.dev.usedWrap : !this.dev.usedWrap;
    const avail = (d.flags & VIRTQ_DESC_F_AVAIL) !== 0;
    const used = (d.flags & VIRTQ_DESC_F_USED) !== 0;
    const blank = d.addr === 0 && d.len === 0 && d.id === 0 && d.flags === 0;
    return avail === wrap && used === wrap && !blank ? 'used' : 'free';
  }

  /** State from the flags alone (the ring map: one 2-byte read per slot). */
  stateOfFlags(slot: number): PackedSlotState {
    const k = this.fromUsed(slot);
    if (k < this.inFlightSlots) return 'in-flight';
    if (k < this.inFlightSlots + this.availableSlots) return 'available';
    const flags = this.flags(slot);
    if (flags === undefined || flags === 0) return 'free';
    const wrap = slot < this.dev.nextUsed ? this.dev.usedWrap : !this.dev.usedWrap;
    return ((flags & VIRTQ_DESC_F_AVAIL) !== 0) === wrap && ((flags & VIRTQ_DESC_F_USED) !== 0) === wrap ? 'used' : 'free';
  }
}

/**
 * The available lists in `count` slots from `from`: NEXT links a slot to the following one, the last
 * descriptor carries the Buffer ID (§2.8.6). A list cut by the region's end or the cap is
 * marked truncated.
 */
function lists(
  reading: RingReading,
  mem: GuardedMemory,
  q: PackedQueue,
  from: number,
  count: number,
  limits: QueueSnapshotLimits,
  out: ChainView[],
): void {
  let slots: number[] = [];
  for (let k = 0; k < count && out.length < limits.chains; k++) {
    const slot = (from + k) % reading.size;
    const d = readPackedDesc(mem, q.descRing + PACKED_DESC_SIZE * slot);
    if (!d) {
      out.push({ head: -1, state: 'pending', descriptors: [...slots, slot], truncated: 'descriptor ring unreadable' });
      return;
    }
    slots.push(slot);
    if (d.flags & VIRTQ_DESC_F_NEXT && !(d.flags & VIRTQ_DESC_F_INDIRECT) && k + 1 < count) {
      if (slots.length < limits.chainLength) continue;
      out.push({ head: d.id, state: 'pending', descriptors: slots, truncated: `longer than ${limits.chainLength}` });
      slots = [];
      continue;
    }
    const cut = d.flags & VIRTQ_DESC_F_NEXT && !(d.flags & VIRTQ_DESC_F_INDIRECT);
    out.push(cut ? { head: d.id, state: 'pending', descriptors: slots, truncated: 'NEXT runs past the region' } : { head: d.id, state: 'pending', descriptors: slots });
    slots = [];
  }
}

export function snapshotPackedQueue(
  q: PackedQueue,
  name: string,
  counters: TransportQueueCounters,
  limits: QueueSnapshotLimits,
  packedLimits: PackedSnapshotLimits = PACKED_LIMITS,
): QueueSnapshot {
  const mem = new GuardedMemory(q.memory);
  const st = q.state();
  const reading = new RingReading(mem, q, packedLimits.scan);
  const { size, dev } = reading;
  // The device's own record of what it popped (a first slot may since hold a used descriptor
  // written out of order), oldest first: the farthest behind its avail position.
  const inFlight = q.inFlightChains();
  const ids = inFlight.map((c) => c.id);
  const age = (first: number) => (dev.nextAvail - first + size) % size || size;
  inFlight.sort((a, b) => age(b.firstSlot) - age(a.firstSlot));

  // Chains: the available lists ahead of the device, then the buffers in flight.
  const chains: ChainView[] = [];
  lists(reading, mem, q, dev.nextAvail, reading.availableSlots, limits, chains);
  for (const c of inFlight) {
    if (chains.length >= limits.chains) break;
    const n = Math.min(c.slots, limits.chainLength);
    const descriptors = Array.from({ length: n }, (_, k) => (c.firstSlot + k) % size);
    chains.push(n < c.slots ? { head: c.id, state: 'in-flight', descriptors, truncated: `longer than ${limits.chainLength}` } : { head: c.id, state: 'in-flight', descriptors });
  }

  // Rows: a few used slots behind the used position, then in-flight and available ones.
  const rest = size - reading.inFlightSlots - reading.availableSlots;
  const back = Math.min(rest, Math.max(1, limits.ringEntries >> 1));
  const rowsFrom = (dev.nextUsed - back + size) % size;
  const rowCount = Math.min(size, limits.descriptors, back + reading.inFlightSlots + reading.availableSlots + 1);
  const slots: PackedSlotRow[] = [];
  const recentUsed: ChainView[] = [];
  for (let k = 0; k < rowCount; k++) {
    const slot = (rowsFrom + k) % size;
    const d = readPackedDesc(mem, q.descRing + PACKED_DESC_SIZE * slot);
    const state = reading.state(slot, d);
    if (!d) {
      slots.push({ slot, addr: 0, len: 0, id: 0, flags: 0, state });
      continue;
    }
    const row: PackedSlotRow = { slot, ...d, state };
    // A used descriptor's addr is stale (the device writes id, len, flags): no table behind it.
    const indirect = d.flags & VIRTQ_DESC_F_INDIRECT && state !== 'used' && state !== 'free';
    slots.push(indirect ? { ...row, indirect: readIndirect(mem, d, d.id, limits.chainLength) } : row);
    if (state === 'used' && k < back) recentUsed.push({ head: d.id, state: 'used', descriptors: [slot] });
  }
  for (const c of recentUsed.reverse()) if (chains.length < limits.chains) chains.push(c);

  const mapCount = Math.min(size, packedLimits.map);
  const mapFrom = size <= packedLimits.map ? 0 : (dev.nextUsed - (mapCount >> 2) + size) % size;
  let map = '';
  for (let k = 0; k < mapCount; k++) map += MAP_LETTER[reading.stateOfFlags((mapFrom + k) % size)];

  const packed: PackedRingView = {
    layout: 'packed',
    descRing: q.descRing,
    driverEventAddr: q.driverEvent,
    deviceEventAddr: q.deviceEvent,
    device: dev,
    driver: reading.driver,
    availableSlots: reading.availableSlots,
    inFlightSlots: reading.inFlightSlots,
    inFlightIds: ids.slice(0, packedLimits.ids),
    slots,
    mapFrom,
    map,
    driverEvent: readEventSuppress(mem, q.driverEvent),
    deviceEvent: readEventSuppress(mem, q.deviceEvent),
  };
  const none = (what: string): Unreadable => ({ unreadable: `no ${what} in a packed virtqueue (§2.8): see the descriptor ring` });
  const snap: QueueSnapshot = {
    index: q.index,
    name,
    enabled: true,
    size,
    descTable: q.descRing,
    availRing: q.driverEvent,
    usedRing: q.deviceEvent,
    eventIdx: q.eventIdx,
    lastAvailIdx: dev.nextAvail,
    pending: reading.availableLists,
    inFlight: st.inFlight,
    avail: none('available ring'),
    used: none('used ring'),
    descriptors: [],
    chains,
    counters: { kicks: counters.kicks, requests: q.requests, interrupts: counters.interrupts, completions: q.completions },
    frozen: q.gate?.frozen ?? false,
    packed,
  };
  return st.broken === undefined ? snap : { ...snap, broken: st.broken };
}
