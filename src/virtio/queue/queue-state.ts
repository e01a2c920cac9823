/**
 * A live queue engine's saved state (VM snapshots), for each layout, and reading it back with
 * every field checked against the queue it is restored into. Guest memory holds the rings
 * themselves (v86 saves it); this is what the device side keeps beside them: its positions,
 * its notification and interrupt bookkeeping, and the chains it popped and has not returned.
 *
 * Chains in flight, split: their head descriptors only. The driver may not touch a chain's
 * descriptors until it is used (§2.7.13.1), so the restore re-reads them from guest memory
 * with the same checks as a pop. Packed: the chain's buffers themselves. Used descriptors
 * are written in completion order over the ring slots of the oldest chains (§2.8.6), so a
 * chain still in flight may have had its ring descriptors overwritten by another chain's
 * used descriptor, and the driver may even have reused those slots; nothing in guest memory
 * says where its buffers were any more.
 */
import { MAX_CHAIN_BYTES, maxChainDescriptors } from '../budget.ts';
import type { StateReader } from '../state/state-reader.ts';
import type { RingLayout } from './virtqueue.ts';

/** Longest saved reason a queue broke for (VirtqueueError reasons are a line). */
export const MAX_BROKEN_REASON = 1000;

export type SplitEngineState = {
  readonly layout: 'split';
  readonly lastAvailIdx: number;
  readonly usedIdx: number;
  readonly signalledUsedIdx: number;
  readonly notificationsEnabled: boolean;
  /** Head descriptors of the chains in flight, ascending. */
  readonly inFlight: readonly number[];
  /** Why the queue broke, if it did (then nothing else about it matters). */
  readonly broken: string | null;
};

/** A packed chain in flight: its Buffer ID, where its list sat in the ring, and its buffers. */
export type PackedChainState = {
  readonly id: number;
  readonly firstSlot: number;
  readonly slots: number;
  readonly indirect: boolean;
  /** [addr, len, addr, len, …] of its driver-readable, then device-writable buffers. */
  readonly readable: readonly number[];
  readonly writable: readonly number[];
};

export type PackedEngineState = {
  readonly layout: 'packed';
  readonly nextAvail: number;
  readonly availWrap: boolean;
  readonly nextUsed: number;
  readonly usedWrap: boolean;
  readonly usedSinceSignal: number;
  readonly notificationsEnabled: boolean;
  /** What the device last wrote to its event suppression structure (null: nothing yet). */
  readonly deviceEventFlags: number | null;
  readonly deviceEventOffWrap: number | null;
  readonly inFlight: readonly PackedChainState[];
  readonly broken: string | null;
};

export type QueueEngineState = SplitEngineState | PackedEngineState;

const U16 = 0xffff;
const U32 = 0xffffffff;

function readBroken(r: StateReader): string | null {
  const broken = r.optional('broken');
  return broken ? broken.string(MAX_BROKEN_REASON) : null;
}

/** Split state for a queue of `size`: indices, and distinct heads, as many as avail and used indices are apart. */
export function readSplitEngineState(r: StateReader, size: number): SplitEngineState {
  r.at('layout').literal('split');
  const lastAvailIdx = r.at('lastAvailIdx').int(0, U16);
  const usedIdx = r.at('usedIdx').int(0, U16);
  const heads = r.at('inFlight').items(size).map((h) => h.int(0, size - 1));
  // Every pop moves lastAvailIdx and every push usedIdx: the difference is what is in flight.
  const outstanding = (lastAvailIdx - usedIdx) & U16;
  if (heads.length !== outstanding) {
    r.at('inFlight').fail(`${heads.length} chains, but avail and used indices say ${outstanding} are in flight`);
  }
  const sorted = [...heads].sort((a, b) => a - b);
  if (sorted.some((h, i) => i > 0 && h === sorted[i - 1])) r.at('inFlight').fail('a head is in flight twice');
  return {
    layout: 'split',
    lastAvailIdx,
    usedIdx,
    signalledUsedIdx: r.at('signalledUsedIdx').int(0, U16),
    notificationsEnabled: r.at('notificationsEnabled').bool(),
    inFlight: sorted,
    broken: readBroken(r),
  };
}

/** [addr, len] pairs of one chain direction: nonzero lengths, each a buffer of < 4 GiB below 4 GiB. */
function readRegions(r: StateReader, maxRegions: number): number[] {
  const values = r.items(2 * maxRegions).map((v) => v.int(0, U32));
  if (values.length % 2 !== 0) r.fail('not [addr, len] pairs');
  for (let i = 1; i < values.length; i += 2) if (values[i] === 0) r.fail(`buffer ${i >> 1} has length 0 (the walk drops those)`);
  return values;
}

function readPackedChain(r: StateReader, size: number): PackedChainState {
  const maxRegions = maxChainDescriptors(size);
  const readable = readRegions(r.at('readable'), maxRegions);
  const writable = readRegions(r.at('writable'), maxRegions);
  if ((readable.length + writable.length) / 2 > maxRegions) r.fail(`more than ${maxRegions} buffers in one chain`);
  let bytes = 0;
  for (const list of [readable, writable]) for (let i = 1; i < list.length; i += 2) bytes += list[i];
  if (bytes > MAX_CHAIN_BYTES) r.fail(`chain of ${bytes} bytes, at most ${MAX_CHAIN_BYTES}`);
  const indirect = r.at('indirect').bool();
  const slots = r.at('slots').int(1, size);
  if (indirect && slots !== 1) r.at('slots').fail('an indirect chain takes one ring slot');
  return { id: r.at('id').int(0, size - 1), firstSlot: r.at('firstSlot').int(0, size - 1), slots, indirect, readable, writable };
}

/**
 * Packed state for a queue of `size`: positions inside the ring, and chains with distinct
 * Buffer IDs whose slots add up to the stretch between the used and the avail position.
 */
export function readPackedEngineState(r: StateReader, size: number): PackedEngineState {
  r.at('layout').literal('packed');
  const nextAvail = r.at('nextAvail').int(0, size - 1);
  const availWrap = r.at('availWrap').bool();
  const nextUsed = r.at('nextUsed').int(0, size - 1);
  const usedWrap = r.at('usedWrap').bool();
  const chains = r.at('inFlight').items(size).map((c) => readPackedChain(c, size));
  const ids = new Set(chains.map((c) => c.id));
  if (ids.size !== chains.length) r.at('inFlight').fail('a buffer id is in flight twice');
  // Positions over two laps: the wrap counter is the lap's parity (§2.8.1).
  const lap = (position: number, wrap: boolean) => position + (wrap ? 0 : size);
  const between = (lap(nextAvail, availWrap) - lap(nextUsed, usedWrap) + 2 * size) % (2 * size);
  const held = chains.reduce((sum, c) => sum + c.slots, 0);
  if (between > size || held !== between) {
    r.at('inFlight').fail(`chains hold ${held} ring slots, but the avail and used positions are ${between} apart`);
  }
  const flags = r.optional('deviceEventFlags');
  const offWrap = r.optional('deviceEventOffWrap');
  return {
    layout: 'packed',
    nextAvail,
    availWrap,
    nextUsed,
    usedWrap,
    // Slots used since the last interrupt decision: devices ask once per batch, so a few laps at most.
    usedSinceSignal: r.at('usedSinceSignal').int(0, U32),
    notificationsEnabled: r.at('notificationsEnabled').bool(),
    deviceEventFlags: flags ? flags.int(0, 3) : null,
    deviceEventOffWrap: offWrap ? offWrap.int(0, U16) : null,
    inFlight: chains,
    broken: readBroken(r),
  };
}

export function readEngineState(r: StateReader, layout: RingLayout, size: number): QueueEngineState {
  return layout === 'packed' ? readPackedEngineState(r, size) : readSplitEngineState(r, size);
}
