/**
 * The "bounded work" property of virtio-net (issue #16): adversarial rings — gso_size under
 * and at the floor, 64 KiB super-frames, every chain pointing at the same buffer or the same
 * indirect table, chains as long as the queue, 256 chains per kick, rx buffers of any size
 * (aliased too) under a full backlog — and the host work of every kick and every later pass
 * stays within netDevice.kickBudget: guest bytes touched, frames emitted (one allocation
 * each), and the fixed wall-time bound. The control queue likewise (ctrl-budget.ts): a full
 * ring of requests of any length (1 MiB, all aliasing one buffer), MAC tables claiming more
 * entries than they hold, no room for the ack — every chain answered in the kick. Each pass also completes at least one chain, so the
 * ring drains. Worst cases go to `worstCases` for `npm run fuzz`'s report. On either ring
 * layout: the chains are written by hand (aliasing is the point), as split descriptors (§2.7.5)
 * or packed ones (§2.8.6).
 */
import fc from 'fast-check';
import { Feature, NetFeature, VIRTQ_DESC_F_NEXT, featureBit, features } from '../../virtio/constants.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { PackedDescField } from '../../virtio/queue/packed-layout.ts';
import { DriverQueue, type DriverRing, type RawBuffer } from '../../virtio/testing/driver-mock.ts';
import { PackedDriverQueue } from '../../virtio/testing/packed-driver-queue.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import { assertWithinBudget, measure, worstCases } from '../../virtio/testing/work-meter.ts';
import { TCP_ACK, TCP_PSH } from '../../wire/tcp.ts';
import { TSO_MIN_GSO_SIZE, netKickBudget } from './budget.ts';
import { encodeNetHdr } from './hdr.ts';
import { CTRL_MAX_REQUEST_BYTES, CTRL_QUEUE_SIZE, ctrlKickBudget } from './ctrl-budget.ts';
import { CTRL_FEATURES } from './ctrl.ts';
import { NET_CTRLQ, NET_TRANSMITQ, NetCtrlClass, NetCtrlMac, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_SIZE } from './spec.ts';
import { NetHarness, PEER_MAC, GUEST_MAC, ethernet, ipv4, partial, tcp } from './testing.ts';

const QUEUE_SIZE = 256;
const BUDGET = netKickBudget(QUEUE_SIZE);
const TX_BUDGETS = { bytes: BUDGET.bytes, frames: BUDGET.frames };
const RX_BUDGETS = { bytes: BUDGET.bytes, rxFrames: BUDGET.rxFrames };
/** Passes followed per case: enough to see the budget cut and resume, not to drain 2 M frames. */
const MAX_PASSES = 6;
const N = NetFeature;
const ALL = features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_INDIRECT_DESC, N.VIRTIO_NET_F_MAC, N.VIRTIO_NET_F_MTU, N.VIRTIO_NET_F_CSUM, N.VIRTIO_NET_F_HOST_TSO4, N.VIRTIO_NET_F_MRG_RXBUF);

/** A defer whose jobs run one round at a time: what was scheduled before step(), not what it schedules. */
function stepper(): { defer: (job: () => void) => void; step: () => boolean } {
  let jobs: Array<() => void> = [];
  return {
    defer: (job) => void jobs.push(job),
    step: () => {
      const round = jobs;
      jobs = [];
      for (const job of round) job();
      return round.length > 0;
    },
  };
}

export type TxCase = typeof txCaseArb extends fc.Arbitrary<infer T> ? T : never;
export type RxCase = typeof rxCaseArb extends fc.Arbitrary<infer T> ? T : never;

const txCaseArb = fc.record({
  chains: fc.oneof(fc.constant(QUEUE_SIZE), fc.integer({ min: 1, max: QUEUE_SIZE })),
  /** Distinct packets in guest RAM; chains pick among them (1: every chain aliases one buffer). */
  packets: fc.array(
    fc.record({
      payload: fc.oneof(fc.constant(65535 - 40), fc.integer({ min: 0, max: 65535 - 40 }), fc.integer({ min: 0, max: 3000 })),
      gsoSize: fc.oneof(fc.integer({ min: 0, max: TSO_MIN_GSO_SIZE }), fc.constantFrom(48, 536, 1448, 1460), fc.integer({ min: 0, max: 0xffff })),
      tso: fc.boolean(),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  /** Descriptors per chain: the packet cut into this many pieces (capped by the ring). */
  pieces: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 16 }), fc.constant(QUEUE_SIZE)),
  /** Chains through indirect tables, all of them through one shared table when `sharedTable`. */
  indirect: fc.boolean(),
  sharedTable: fc.boolean(),
  seed: fc.nat(),
});

/**
 * Make `buffers` available as chain number `i` (its Buffer ID on packed) directly in the ring,
 * bypassing the driver's allocator: split, ring descriptors i × stride onwards; packed, the next
 * ring slots, first descriptor's flags last (§2.8.21). The driver's own view of in-flight chains
 * does not learn of them: the case counts completions on the device's queue instead.
 */
function publishDirect(q: DriverRing, i: number, stride: number, buffers: readonly RawBuffer[]): void {
  if (q instanceof DriverQueue) {
    buffers.forEach((b, k) => {
      const last = k === buffers.length - 1;
      q.writeDesc(q.addr.desc, i * stride + k, b.addr, b.len, last ? 0 : VIRTQ_DESC_F_NEXT, last ? 0 : i * stride + k + 1);
    });
    q.publish(i * stride);
    return;
  }
  if (!(q instanceof PackedDriverQueue)) throw new Error('net bounded work: unknown driver ring');
  const first = q.slotAddr(q.nextAvail);
  let firstFlags = 0;
  buffers.forEach((b, k) => {
    const last = k === buffers.length - 1;
    const flags = (last ? 0 : VIRTQ_DESC_F_NEXT) | PackedDriverQueue.availBits(q.availWrap);
    const at = q.slotAddr(q.nextAvail);
    q.writeRaw(at, { addr: b.addr, len: b.len, id: last ? i : 0xffff, flags: k === 0 ? 0 : flags });
    if (k === 0) firstFlags = flags;
    if (++q.nextAvail === q.size) {
      q.nextAvail = 0;
      q.availWrap = !q.availWrap;
    }
  });
  // The head's flags last: the device must not see a half-written list (§2.8.21).
  q.driver.memory.writeU16(first + PackedDescField.FLAGS, firstFlags);
}

/** Tx: `chains` chains in the ring, one kick, then passes one at a time. */
export function netTxBoundedCase(c: TxCase, ring: RingLayout = 'split'): void {
  const s = stepper();
  const t = NetHarness.create({ features: ALL, queueSize: QUEUE_SIZE, memorySize: 4 << 20, defer: s.defer, ring });
  if (t.txq.layout !== ring) fail(`net: negotiated a ${t.txq.layout} ring, not ${ring}`);
  const mem = t.driver.memory;
  const packets = c.packets.map((p) => {
    const { frame, hdr } = partial(ethernet(ipv4({ protocol: 6, payload: tcp({ flags: TCP_PSH | TCP_ACK, payload: new Uint8Array(p.payload).fill(0x61) }) })));
    const bytes = new Uint8Array(VIRTIO_NET_HDR_SIZE + frame.length);
    encodeNetHdr({ ...hdr, ...(p.tso ? { gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: p.gsoSize } : {}) }, bytes);
    bytes.set(frame, VIRTIO_NET_HDR_SIZE);
    const addr = t.driver.buffers.alloc(bytes.length);
    mem.write(addr, bytes);
    return { addr, len: bytes.length };
  });
  // Lay the chains out by hand: aliasing is the point, so the mock's allocator is not used.
  const pieces = Math.max(1, Math.min(c.pieces, c.indirect ? QUEUE_SIZE : Math.floor(QUEUE_SIZE / Math.min(c.chains, QUEUE_SIZE))));
  const chains = c.indirect ? c.chains : Math.min(c.chains, Math.floor(QUEUE_SIZE / pieces));
  /** Packet `p` cut into at most `pieces` driver-readable buffers. */
  const piecesOf = (p: { addr: number; len: number }): RawBuffer[] => {
    const step = Math.ceil(p.len / Math.min(pieces, p.len));
    return Array.from({ length: Math.ceil(p.len / step) }, (_, k) => ({ addr: p.addr + k * step, len: Math.min(step, p.len - k * step) }));
  };
  let shared: { table: number; entries: number } | undefined;
  for (let i = 0; i < chains; i++) {
    const p = packets[(c.seed + i) % packets.length];
    if (c.indirect) {
      let indirect = shared;
      if (!indirect) {
        const buffers = piecesOf(p);
        indirect = { table: t.txq.writeTable(buffers), entries: buffers.length };
        if (c.sharedTable) shared = indirect;
      }
      t.txq.addIndirectAt(indirect.table, indirect.entries);
    } else {
      publishDirect(t.txq, i, pieces, piecesOf(p));
    }
  }
  const where = `${chains} chains, ${pieces} pieces${c.indirect ? (c.sharedTable ? ', one shared indirect table' : ', indirect') : ''}, packets ${c.packets.map((p) => `${p.payload}B${p.tso ? `/gso ${p.gsoSize}` : ''}`).join(' ')}`;
  const prefix = ring === 'packed' ? 'net packed: tx pass' : 'net: tx pass';
  const completions = () => t.driver.fn.queue(NET_TRANSMITQ)?.completions ?? 0;
  let done = 0;
  for (let pass = 0; pass <= MAX_PASSES; pass++) {
    const wireBefore = t.wire.length;
    const usedBefore = completions();
    const work = measure(
      mem,
      () => (pass === 0 ? t.txq.notify() : s.step()),
      () => ({ frames: t.wire.length - wireBefore, chains: completions() - usedBefore }),
    );
    if (pass === 0 && t.wire.length === wireBefore && work.extra.chains === 0) {
      // Kicks are deferred: the kick itself only schedules; its pass is the first step.
      continue;
    }
    assertWithinBudget(`net tx pass ${pass} (${where})`, work, TX_BUDGETS);
    worstCases.noteWork(prefix, work, where, TX_BUDGETS);
    done += work.extra.chains;
    if (done >= chains) break;
    if (work.extra.chains === 0) fail(`net tx pass ${pass} completed no chain with ${chains - done} waiting (${where})`);
  }
  if (t.driver.errors.length > 0) fail(`device reset: ${t.driver.errors[0]}`);
  if (done < chains && t.device.stats.txPassesCut === 0) fail(`${chains - done} chains left without a pass cut at the budget`);
}

const rxCaseArb = fc.record({
  /** Frames from the peer while no buffer is posted (the backlog's bounds cut them): how many, how long. */
  frames: fc.oneof(fc.constant(300), fc.integer({ min: 1, max: 300 })),
  frameLength: fc.oneof(fc.constant(1514), fc.integer({ min: 14, max: 1514 })),
  /** Rx chains to post: size of each, and whether all alias one buffer. */
  buffers: fc.oneof(fc.constant(QUEUE_SIZE), fc.integer({ min: 1, max: QUEUE_SIZE })),
  size: fc.oneof(fc.constantFrom(1, 25, 26, 100, 1526, 1530, 65562), fc.integer({ min: 1, max: 4096 })),
  aliased: fc.boolean(),
  mergeable: fc.boolean(),
});

/** Rx: a full backlog, then `buffers` rx chains and one kick. */
export function netRxBoundedCase(c: RxCase, ring: RingLayout = 'split'): void {
  const wanted = c.mergeable ? ALL : ALL & ~featureBit(N.VIRTIO_NET_F_MRG_RXBUF);
  const t = NetHarness.create({ features: wanted, queueSize: QUEUE_SIZE, memorySize: 8 << 20, ring });
  if (t.rxq.layout !== ring) fail(`net: negotiated a ${t.rxq.layout} ring, not ${ring}`);
  for (let i = 0; i < c.frames; i++) t.inject(ethernet(new Uint8Array(Math.max(0, c.frameLength - 14 - (i % 3))).fill(0x5a), 0x88b5, GUEST_MAC, PEER_MAC));
  const mem = t.driver.memory;
  const one = c.aliased ? t.driver.buffers.alloc(c.size) : 0;
  // Distinct buffers only as many as guest RAM holds.
  const buffers = c.aliased ? c.buffers : Math.min(c.buffers, Math.floor((6 << 20) / c.size));
  // One device-writable descriptor each, all over `one` when aliased.
  for (let i = 0; i < buffers; i++) t.rxq.addAliased({ count: 1, addr: c.aliased ? one : t.driver.buffers.alloc(c.size), len: c.size, readable: 0 });
  const where = `${c.frames} frames of ≤ ${c.frameLength} bytes, ${buffers} buffers of ${c.size}${c.aliased ? ' (aliased)' : ''}${c.mergeable ? ', MRG_RXBUF' : ''}`;
  const rx0 = t.device.stats.rxFrames;
  const work = measure(mem, () => t.rxq.notify(), () => ({ rxFrames: t.device.stats.rxFrames - rx0 }));
  assertWithinBudget(`net rx kick (${where})`, work, RX_BUDGETS);
  worstCases.noteWork(ring === 'packed' ? 'net packed: rx kick' : 'net: rx kick', work, where, RX_BUDGETS);
  if (t.driver.errors.length > 0) fail(`device reset: ${t.driver.errors[0]}`);
}

const CTRL_BUDGET = ctrlKickBudget(CTRL_QUEUE_SIZE);

const ctrlCaseArb = fc.record({
  chains: fc.oneof(fc.constant(CTRL_QUEUE_SIZE), fc.integer({ min: 1, max: CTRL_QUEUE_SIZE })),
  /** Readable bytes per descriptor; every readable descriptor of every chain aliases one buffer. */
  readLen: fc.oneof(fc.constantFrom(0, 1, 2, 10, CTRL_MAX_REQUEST_BYTES, CTRL_MAX_REQUEST_BYTES + 1, 1 << 20), fc.integer({ min: 0, max: 2 * CTRL_MAX_REQUEST_BYTES })),
  pieces: fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 8 }), fc.constant(CTRL_QUEUE_SIZE - 1)),
  /** What the buffer holds: a MAC table claiming as many entries as the bytes hold (or 2^32-1), or noise. */
  request: fc.constantFrom('table', 'lying-table', 'noise'),
  ackLen: fc.constantFrom(0, 1, 64),
  indirect: fc.boolean(),
  seed: fc.nat(),
});
export type CtrlCase = typeof ctrlCaseArb extends fc.Arbitrary<infer T> ? T : never;

/** Control queue: `chains` requests in the ring, one kick, all answered within ctrlKickBudget. */
export function netCtrlBoundedCase(c: CtrlCase, ring: RingLayout = 'split'): void {
  const t = NetHarness.create({ features: ALL | CTRL_FEATURES, queueSize: 16, memorySize: 4 << 20, ring });
  const cq = t.driver.queues[NET_CTRLQ];
  if (!cq || cq.layout !== ring) fail(`net: no ${ring} control queue`);
  const mem = t.driver.memory;
  const buffer = t.driver.buffers.alloc(Math.max(1, c.readLen));
  const ack = t.driver.buffers.alloc(64);
  const total = c.readLen * c.pieces;
  if (c.request === 'noise') {
    for (let i = 0; i < Math.min(c.readLen, 4096); i++) mem.bytes[buffer + i] = (c.seed + i * 131) & 0xff;
  } else if (c.readLen >= 6) {
    // Class MAC, TABLE_SET, then a unicast count the data (the buffer seen `pieces` times) could hold, or a lie.
    mem.write(buffer, Uint8Array.of(NetCtrlClass.MAC, NetCtrlMac.TABLE_SET));
    mem.writeU32(buffer + 2, c.request === 'lying-table' ? 0xffffffff : Math.max(0, Math.floor((total - 10) / 6)));
  }
  const count = c.pieces + (c.ackLen > 0 ? 1 : 0);
  const chains = c.indirect ? c.chains : Math.min(c.chains, Math.floor(CTRL_QUEUE_SIZE / count));
  for (let i = 0; i < chains; i++) {
    cq.addAliased({ count, addr: buffer, readLen: c.readLen, len: c.ackLen, writeAddr: ack, readable: c.pieces, indirect: c.indirect });
  }
  const where = `${chains} requests of ${c.pieces} × ${c.readLen} bytes (${c.request}), ack room ${c.ackLen}${c.indirect ? ', indirect' : ''}`;
  const work = measure(mem, () => cq.notify(), () => ({ requests: t.device.control.stats.ctrlRequests }));
  assertWithinBudget(`net control kick (${where})`, work, { bytes: CTRL_BUDGET.bytes, requests: CTRL_BUDGET.requests });
  worstCases.noteWork(ring === 'packed' ? 'net packed: control kick' : 'net: control kick', work, where, { bytes: CTRL_BUDGET.bytes, requests: CTRL_BUDGET.requests });
  if (t.driver.errors.length > 0) fail(`device reset: ${t.driver.errors[0]}`);
  const used = cq.used();
  if (used.length !== chains) fail(`${used.length} of ${chains} control requests answered in the kick (${where})`);
  // Only a request that fits the budget and parses may be OK; none of these are valid tables or commands.
  for (const u of used) if (u.len > 1 || (u.len === 1 && total > CTRL_MAX_REQUEST_BYTES && u.data[0] !== 1)) fail(`control ack ${u.data[0]} (len ${u.len}) for ${where}`);
}

export function netBoundedWorkProperty(ring: RingLayout = 'split'): fc.IProperty<any> {
  return fc.property(
    fc.oneof(
      { weight: 3, arbitrary: txCaseArb.map((c) => ({ tx: c })) },
      { weight: 1, arbitrary: rxCaseArb.map((c) => ({ rx: c })) },
      { weight: 1, arbitrary: ctrlCaseArb.map((c) => ({ ctrl: c })) },
    ),
    (c) => ('tx' in c ? netTxBoundedCase(c.tx, ring) : 'rx' in c ? netRxBoundedCase(c.rx, ring) : netCtrlBoundedCase(c.ctrl, ring)),
  );
}
