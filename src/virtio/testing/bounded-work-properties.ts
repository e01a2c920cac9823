/**
 * "Bounded work" properties: whatever a guest puts in its rings, one kick costs the host at
 * most the written budget (../budget.ts for the queue engine, a descriptor's `kickBudget`
 * for a device's own work). Random and adversarial rings (huge indirect tables, many chains
 * sharing one table, aliased buffers, chains of exactly the maximum length and one over,
 * chains past 4 GiB in total, honest traffic mixed in) are kicked one queue at a time, and
 * each kick is measured (work-meter.ts): descriptors the walk read, Region objects it built,
 * guest RAM accesses and bytes, frames sent, wall time. Every measurement feeds
 * `worstCases`, which `npm run fuzz` prints with its budget. After the attack, a reset and
 * an honest bring-up must work again.
 *
 * Two kinds of subject: the loopback device holding every chain it pops (the ring walk alone,
 * on queues up to 4096 so a chain can pass 2^32 bytes in 1 MiB of RAM), with the outcome of
 * each attack predicted; and every registered device through its transport fuzz subject, on
 * split and on packed rings (the subject's `create({ ring })`).
 */
import fc from 'fast-check';
import { DeviceStatus, Feature, featureBit } from '../constants.ts';
import type { VirtioDevice } from '../device.ts';
import { MAX_CHAIN_BYTES, maxChainDescriptors, maxDescriptorReadsPerKick, maxIndirectEntries, maxRingBytesPerKick } from '../budget.ts';
import type { Virtqueue } from '../queue/virtqueue.ts';
import type { RingLayout } from '../queue/virtqueue.ts';
import { DriverMock } from './driver-mock.ts';
import type { DriverRing } from './driver-ring.ts';
import { checkInvariants, errorsSinceReset, fail, recordReasons, type NamedProperty } from './invariants.ts';
import { LoopbackDevice } from './loopback-device.ts';
import { TRANSPORT_MEM, type TransportSubject } from './transport-properties.ts';
import { assertWithinBudget, measure, worstCases, type Work } from './work-meter.ts';

/** A device's own per-kick budget, as its descriptor states it (DeviceDescriptor.kickBudget). */
export interface DeviceKickBudget {
  readonly bytes: number;
  readonly frames?: number;
}

/** A registered device as these properties need it: its fuzz rig, budget and counters. */
export interface BoundedWorkSubject {
  readonly subject: TransportSubject;
  readonly kickBudget?: DeviceKickBudget;
  /** The device's public counters; `txFrames` (frames handed to the network) is read. */
  stats?(device: VirtioDevice): Record<string, number>;
}

// ---- attacks --------------------------------------------------------------------------

/** One thing a hostile (or honest) driver puts in a queue before kicking it. */
export type Attack =
  /** An indirect table of `entries` chained descriptors, really laid out. */
  | { kind: 'huge-indirect'; entries: number; len: number }
  /** `chains` ring descriptors pointing at one table of `entries` descriptors. */
  | { kind: 'shared-indirect'; entries: number; chains: number; len: number; readable: number; readLen: number }
  /** `count` descriptors over the same bytes (readable ones `readLen` long). */
  | { kind: 'aliased'; count: number; len: number; readable: number; readLen: number; indirect: boolean }
  /** A chain of queue size + `over` descriptors, `direct` of them in the ring's table. */
  | { kind: 'long'; direct: number; over: 0 | 1; len: number }
  /** An ordinary chain, as Linux would build it. */
  | { kind: 'honest'; readable: number; writable: number; indirect: boolean };

/**
 * Bytes every attack's buffers point at, tiled over them: random, or little-endian words of
 * small numbers, so device parsers see plausible request types (blk's GET_ID is 8), sectors,
 * header lengths and GSO sizes rather than bouncing off the first check.
 */
const patternArb = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 32 }),
  fc.array(fc.integer({ min: 0, max: 16 }), { minLength: 1, maxLength: 8 }).map((words) => {
    const out = new Uint8Array(4 * words.length);
    words.forEach((w, i) => (out[4 * i] = w));
    return out;
  }),
  fc.array(fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 0xffff })), { minLength: 1, maxLength: 16 }).map((halves) => {
    const out = new Uint8Array(2 * halves.length);
    halves.forEach((h, i) => {
      out[2 * i] = h & 0xff;
      out[2 * i + 1] = h >> 8;
    });
    return out;
  }),
);

/** Fractions of the queue size / of the target area, resolved against the real sizes. */
function attackArb(): fc.Arbitrary<{ kind: Attack['kind']; a: number; b: number; c: number; d: number; head: number; flag: boolean }> {
  return fc.record({
    kind: fc.constantFrom<Attack['kind']>('huge-indirect', 'shared-indirect', 'aliased', 'aliased', 'long', 'honest', 'honest'),
    a: fc.double({ min: 0, max: 1, noNaN: true }),
    b: fc.double({ min: 0, max: 1, noNaN: true }),
    c: fc.double({ min: 0, max: 1, noNaN: true }),
    d: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
    // Readable buffers as long as the writable ones (0), or a header's size (blk 16, net 12).
    head: fc.constantFrom(0, 0, 8, 12, 16, 64),
    flag: fc.boolean(),
  });
}

type RawAttack = ReturnType<typeof attackArb> extends fc.Arbitrary<infer T> ? T : never;

/** A raw attack's fractions as sizes for a queue of `size` over a target of `area` bytes. */
function resolve(raw: RawAttack, size: number, area: number): Attack {
  const pick = (f: number, lo: number, hi: number) => Math.min(hi, lo + Math.floor(f * (hi - lo + 1)));
  // Lengths: mostly the whole area (the most an aliased chain can claim), else anything in it.
  const len = raw.d === 1 ? area : raw.d === 0 ? 1 : pick(raw.d, 0, area);
  // Readable descriptors: often exactly one (a request header before device-writable data).
  const readable = (n: number) => (raw.c < 0.25 ? Math.min(1, n) : pick(raw.c, 0, n));
  const readLen = raw.head === 0 ? len : Math.min(raw.head, area);
  switch (raw.kind) {
    case 'huge-indirect':
      // One over the limit up to a table that fills the target area.
      return { kind: 'huge-indirect', entries: raw.flag ? size + 1 : pick(raw.a, size + 1, Math.max(size + 1, area >> 4)), len: Math.min(len, 64) };
    case 'shared-indirect': {
      const entries = raw.flag ? size : pick(raw.a, 1, size + 1);
      // Keep a case's own time sane on the 4096 queue: the budget allows size², the fuzzer needn't.
      const chains = pick(raw.b, 1, Math.min(size, Math.max(1, 65536 / Math.max(entries, 1))));
      return { kind: 'shared-indirect', entries, chains, len, readable: readable(entries), readLen };
    }
    case 'aliased': {
      const count = raw.flag ? size + pick(raw.a, 0, 1) : pick(raw.a, 1, size);
      return { kind: 'aliased', count, len, readable: readable(count), readLen, indirect: raw.flag || raw.b < 0.5 };
    }
    case 'long':
      return { kind: 'long', direct: pick(raw.a, 0, size), over: raw.flag ? 1 : 0, len: Math.min(len, 4096) };
    case 'honest':
      return { kind: 'honest', readable: pick(raw.a, 0, 256), writable: pick(raw.b, 0, 256), indirect: raw.flag };
  }
}

/** Chains an attack made available, and whether one of them is over the queue's budget. */
interface Placed {
  chains: number;
  /** Index (among this attack's chains) of the first over-budget chain, or -1. */
  firstOver: number;
}

/**
 * Put an attack in `q`: driver-readable buffers at `target`, device-writable ones at
 * `writeTarget` (apart, so what a device writes does not overwrite the headers the next
 * chains read). Returns null when the queue has not enough free descriptors (the driver
 * mock's view) or the feature it needs is off.
 */
function place(q: DriverRing, attack: Attack, target: number, writeTarget: number, indirectOn: boolean): Placed | null {
  const size = q.size;
  const free = q.freeDescriptors;
  switch (attack.kind) {
    case 'huge-indirect': {
      if (!indirectOn || free < 1) return null;
      q.addHugeIndirect(attack.entries, target, attack.len);
      return { chains: 1, firstOver: attack.entries > maxIndirectEntries(size) ? 0 : -1 };
    }
    case 'shared-indirect': {
      if (!indirectOn || free < 1) return null;
      const buffers = Array.from({ length: attack.entries }, (_, k) => {
        const write = k >= attack.readable;
        return write ? { addr: writeTarget, len: attack.len, write } : { addr: target, len: attack.readLen, write };
      });
      const table = q.writeTable(buffers);
      const chains = q.addSharedIndirect(table, attack.entries, attack.chains).length;
      const bytes = attack.readable * attack.readLen + (attack.entries - attack.readable) * attack.len;
      const over = attack.entries > maxIndirectEntries(size) || bytes > MAX_CHAIN_BYTES;
      return { chains, firstOver: over ? 0 : -1 };
    }
    case 'aliased': {
      if (attack.indirect ? !indirectOn || free < 1 : free < attack.count) return null;
      q.addAliased({ ...attack, addr: target, writeAddr: writeTarget });
      const bytes = attack.readable * attack.readLen + (attack.count - attack.readable) * attack.len;
      const over = (attack.indirect ? attack.count > maxIndirectEntries(size) : attack.count > maxChainDescriptors(size)) || bytes > MAX_CHAIN_BYTES;
      return { chains: 1, firstOver: over ? 0 : -1 };
    }
    case 'long': {
      const total = size + attack.over;
      const direct = Math.min(attack.direct, total);
      const indirect = total - direct;
      if ((indirect > 0 && !indirectOn) || free < direct + (indirect > 0 ? 1 : 0)) return null;
      q.addLong(direct, indirect, target, attack.len);
      // Packed: INDIRECT inside a NEXT list is refused whatever its length (§2.8.19).
      const mixed = q.layout === 'packed' && direct > 0 && indirect > 0;
      return { chains: 1, firstOver: mixed || attack.over || total * attack.len > MAX_CHAIN_BYTES ? 0 : -1 };
    }
    case 'honest': {
      const parts = (attack.readable ? 1 : 0) + (attack.writable ? 1 : 0);
      // §2.7.5.3.1: an honest driver's indirect chain is no longer than the queue size either.
      const indirect = attack.indirect && indirectOn && parts <= size;
      if (parts === 0 || free < (indirect ? 1 : parts)) return null;
      q.add({ readable: attack.readable ? [new Uint8Array(attack.readable)] : [], writable: attack.writable ? [attack.writable] : [], indirect });
      return { chains: 1, firstOver: -1 };
    }
  }
}

/** Tile `pattern` over [at, +len) of guest RAM (what the attack's buffers will read). */
function paint(t: DriverMock, at: number, len: number, pattern: Uint8Array): void {
  const bytes = t.memory.bytes;
  bytes.set(pattern.subarray(0, Math.min(pattern.length, len)), at);
  // Doubling copies: a 1-byte pattern over 256 KiB is 18 copies, not 262,144.
  for (let filled = Math.min(pattern.length, len); filled < len; filled *= 2) {
    bytes.copyWithin(at + filled, at, at + Math.min(filled, len - filled));
  }
}

// ---- measuring a kick ----------------------------------------------------------------

function liveQueues(t: DriverMock): Virtqueue[] {
  const out: Virtqueue[] = [];
  for (let i = 0; i < t.fn.numQueues; i++) {
    const q = t.fn.queue(i);
    if (q) out.push(q);
  }
  return out;
}

/** The queue engine's counters summed over the live queues. */
function engineCounters(queues: readonly Virtqueue[]): { descriptors: number; regions: number; chains: number } {
  let descriptors = 0;
  let regions = 0;
  let chains = 0;
  for (const q of queues) {
    descriptors += q.descriptorsVisited;
    regions += q.regionsAllocated;
    chains += q.requests;
  }
  return { descriptors, regions, chains };
}

/** The queue engine's per-kick budget over every live queue (a kick may serve more than its own). */
function engineBudget(queues: readonly Virtqueue[]): { descriptors: number; chains: number; ringBytes: number } {
  let descriptors = 0;
  let chains = 0;
  let ringBytes = 0;
  for (const q of queues) {
    descriptors += maxDescriptorReadsPerKick(q.size);
    chains += q.size;
    ringBytes += maxRingBytesPerKick(q.size, q.layout);
  }
  return { descriptors, chains, ringBytes };
}

/**
 * Kick `q` (and run what a deferring device scheduled), measure it, note it and hold it to
 * the budget: descriptors, chains and regions from the engine's counters (regions never more
 * than descriptors), guest RAM bytes within the ring's budget plus the device's, frames
 * within the device's, wall time within WORK_MS_BOUND.
 */
function measuredKick(
  t: DriverMock,
  q: DriverRing,
  prefix: string,
  where: string,
  device: { kickBudget?: DeviceKickBudget; frames?: () => number; settle?: () => void },
): Work {
  const queues = liveQueues(t);
  const budget = engineBudget(queues);
  const start = engineCounters(queues);
  const frames0 = device.frames?.() ?? 0;
  const work = measure(
    t.memory,
    () => {
      q.notify();
      device.settle?.();
    },
    () => {
      const end = engineCounters(queues);
      return {
        descriptors: end.descriptors - start.descriptors,
        regions: end.regions - start.regions,
        chains: end.chains - start.chains,
        frames: (device.frames?.() ?? 0) - frames0,
      };
    },
  );
  const budgets = {
    descriptors: budget.descriptors,
    regions: budget.descriptors,
    chains: budget.chains,
    bytes: device.kickBudget ? budget.ringBytes + device.kickBudget.bytes : undefined,
    frames: device.kickBudget?.frames,
  };
  worstCases.noteWork(prefix, work, where, budgets);
  assertWithinBudget(`${prefix} (${where})`, work, budgets);
  if (work.extra.regions > work.extra.descriptors) fail(`${prefix}: ${work.extra.regions} regions from ${work.extra.descriptors} descriptors`);
  return work;
}

function describeAttacks(attacks: readonly Attack[]): string {
  return attacks.map((a) => Object.entries(a).map(([k, v]) => (k === 'kind' ? v : `${k}=${v}`)).join(' ')).join('; ');
}

// ---- (a) the queue engine alone: loopback device holding what it pops -----------------

const VERSION_1 = featureBit(Feature.VIRTIO_F_VERSION_1);
const INDIRECT = featureBit(Feature.VIRTIO_F_RING_INDIRECT_DESC);
const EVENT_IDX = featureBit(Feature.VIRTIO_F_RING_EVENT_IDX);
const PACKED = featureBit(Feature.VIRTIO_F_RING_PACKED);
/** 1 MiB: a 4096 queue's aliased chain of 1 MiB buffers reaches 2^32 bytes. */
const LOOPBACK_MEM = 1 << 20;

const loopbackCaseArb = fc.record({
  sizeLog: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 1, arbitrary: fc.constant(12) }),
  indirect: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  eventIdx: fc.boolean(),
  pattern: patternArb,
  kicks: fc.array(fc.array(attackArb(), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
});

export function loopbackBoundedWorkProperty(coverage = new Map<string, number>(), ring: RingLayout = 'split'): fc.IProperty<any> {
  const layoutFeature = ring === 'packed' ? PACKED : 0n;
  const prefix = ring === 'packed' ? 'bounded loopback packed: per kick' : 'bounded loopback: per kick';
  return fc.property(loopbackCaseArb, ({ sizeLog, indirect, eventIdx, pattern, kicks }) => {
    const size = 1 << sizeLog;
    const device = new LoopbackDevice({ maxQueueSize: size, autoComplete: false });
    const t = DriverMock.create(device, { memorySize: LOOPBACK_MEM, pci: { ring } });
    const features = VERSION_1 | layoutFeature | (indirect ? INDIRECT : 0n) | (eventIdx ? EVENT_IDX : 0n);
    // Header-like bytes at the end of buffer memory, clear of the tables the attacks allocate.
    const area = LOOPBACK_MEM >> 2;
    const target = LOOPBACK_MEM - area;
    paint(t, target, area, pattern);
    for (const raws of kicks) {
      // Each kick on a fresh bring-up: the device holds what it popped (it never copies a byte).
      const [q] = t.initRings({ features });
      if (q.layout !== ring) fail(`negotiated a ${q.layout} ring, not ${ring}`);
      const attacks: Attack[] = [];
      let expectedChains = 0;
      let over = false;
      for (const raw of raws) {
        // Aliased and long chains span all of RAM (a 4096 queue passes 2^32 bytes with them).
        const wholeRam = raw.kind === 'aliased' || raw.kind === 'long';
        const attack = resolve(raw, size, wholeRam ? LOOPBACK_MEM : area);
        const at = wholeRam ? 0 : target;
        const placed = place(q, attack, at, at, indirect);
        if (!placed) continue;
        attacks.push(attack);
        if (over) continue;
        expectedChains += placed.firstOver >= 0 ? placed.firstOver : placed.chains;
        over = placed.firstOver >= 0;
      }
      if (attacks.length === 0) continue;
      const popped = device.popped.length;
      measuredKick(t, q, prefix, describeAttacks(attacks), { kickBudget: { bytes: 0 } });
      const got = device.popped.length - popped;
      if (got !== expectedChains) fail(`popped ${got} chains, expected ${expectedChains} (${describeAttacks(attacks)})`);
      // The queue's own state, not the error listeners (which may coalesce repeats).
      const refused = t.fn.queue(0)?.broken;
      if ((refused !== undefined) !== over) fail(over ? 'an over-budget chain was accepted' : `a chain within budget was refused: ${refused?.reason}`);
      if (over && !(t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET)) fail('an over-budget chain without DEVICE_NEEDS_RESET');
      checkInvariants(t);
    }
    recoverLoopback(t, device, coverage, VERSION_1 | layoutFeature);
  });
}

/** After whatever happened: reset, an honest bring-up, one chain done right. */
function recoverLoopback(t: DriverMock, device: LoopbackDevice, coverage: Map<string, number>, features: bigint): void {
  recordReasons(t, coverage);
  device.autoComplete = true;
  const [q] = t.initRings({ features });
  const sub = q.add({ writable: [3] }); // one descriptor: the queue may be of size 1
  q.kick();
  const used = q.used();
  if (used.length !== 1 || used[0].head !== sub.head || used[0].len !== 3) fail('loopback did not recover after the attack');
  if (errorsSinceReset(t) > 0) fail(`error after recovery: ${t.errors.at(-1)}`);
  checkInvariants(t);
}

// ---- (b) every registered device through its fuzz rig ---------------------------------

const deviceCaseArb = fc.record({
  deferred: fc.boolean(),
  pattern: patternArb,
  kicks: fc.array(
    fc.record({ queue: fc.nat(), attacks: fc.array(attackArb(), { minLength: 1, maxLength: 3 }) }),
    { minLength: 1, maxLength: 3 },
  ),
});

/** `ring`: the layout the rig offers and the bring-up takes (a rig that ignores it fails here). */
export function deviceBoundedWorkProperty(target: BoundedWorkSubject, coverage = new Map<string, number>(), ring: RingLayout = 'split'): fc.IProperty<any> {
  const { subject, kickBudget } = target;
  const prefix = `bounded ${subject.name}${ring === 'packed' ? ' packed' : ''}: per kick`;
  return fc.property(deviceCaseArb, ({ deferred, pattern, kicks }) => {
    const rig = subject.create({ barKind: 'io', memorySize: TRANSPORT_MEM, byteAccess: false, deferred, ring });
    const { t } = rig;
    const queues = t.initRings();
    if (queues[0]?.layout !== ring) fail(`${subject.name}: the bring-up took ${queues[0]?.layout} rings, not ${ring}`);
    const indirectOn = (t.features & INDIRECT) !== 0n;
    // The last quarter of RAM: headers to read in its first half, device-writable buffers in
    // its second; the rest of buffer memory holds tables and honest buffers.
    const area = TRANSPORT_MEM >> 3;
    const at = TRANSPORT_MEM - 2 * area;
    paint(t, at, area, pattern);
    const frames = target.stats ? () => target.stats!(t.fn.device).txFrames ?? 0 : undefined;
    for (const kick of kicks) {
      const q = queues[kick.queue % queues.length];
      const attacks: Attack[] = [];
      for (const raw of kick.attacks) {
        const attack = resolve(raw, q.size, area);
        if (place(q, attack, at, at + area, indirectOn)) attacks.push(attack);
      }
      if (attacks.length === 0) continue;
      measuredKick(t, q, prefix, `queue ${q.index}: ${describeAttacks(attacks)}`, { kickBudget, frames, settle: rig.settle });
      checkInvariants(t);
    }
    recordReasons(t, coverage);
    rig.validWork();
    if (errorsSinceReset(t) > 0) fail(`error during honest work after the attack: ${t.errors.at(-1)}`);
    checkInvariants(t);
  });
}

/** The ring campaign's bounded-work property (the queue engine alone), on either layout. */
export function loopbackBoundedWorkNamedProperty(ring: RingLayout = 'split'): NamedProperty {
  const coverage = new Map<string, number>();
  const name = ring === 'packed' ? 'packed ring: bounded work per kick (loopback, adversarial rings)' : 'ring: bounded work per kick (loopback, adversarial rings)';
  return { name, property: loopbackBoundedWorkProperty(coverage, ring), coverage };
}

/** The `bounded` campaign: per registered device, one property per ring layout, through its fuzz rig. */
export function deviceBoundedWorkProperties(devices: readonly BoundedWorkSubject[]): NamedProperty[] {
  return devices.flatMap((d) =>
    (['split', 'packed'] as const).map((ring) => {
      const coverage = new Map<string, number>();
      const name = `bounded work: ${d.subject.name} per kick${ring === 'packed' ? ' (packed)' : ''}`;
      return { name, property: deviceBoundedWorkProperty(d, coverage, ring), coverage };
    }),
  );
}
