/**
 * The "bounded work" property of virtio-net (issue #16): adversarial rings — gso_size under
 * and at the floor, 64 KiB super-frames, every chain pointing at the same buffer or the same
 * indirect table, chains as long as the queue, 256 chains per kick, rx buffers of any size
 * (aliased too) under a full backlog — and the host work of every kick and every later pass
 * stays within netDevice.kickBudget: guest bytes touched, frames emitted (one allocation
 * each), and the fixed wall-time bound. Each pass also completes at least one chain, so the
 * ring drains. Worst cases go to `worstCases` for `npm run fuzz`'s report.
 */
import fc from 'fast-check';
import { Feature, NetFeature, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, featureBit, features } from '../../virtio/constants.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import { assertWithinBudget, measure, worstCases } from '../../virtio/testing/work-meter.ts';
import { TCP_ACK, TCP_PSH } from '../../wire/tcp.ts';
import { TSO_MIN_GSO_SIZE, netKickBudget } from './budget.ts';
import { encodeNetHdr } from './hdr.ts';
import { VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_SIZE } from './spec.ts';
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

/** Tx: `chains` chains in the ring, one kick, then passes one at a time. */
export function netTxBoundedCase(c: TxCase): void {
  const s = stepper();
  const t = NetHarness.create({ features: ALL, queueSize: QUEUE_SIZE, memorySize: 4 << 20, defer: s.defer });
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
  const desc = t.txq.addr.desc;
  const pieces = Math.max(1, Math.min(c.pieces, c.indirect ? QUEUE_SIZE : Math.floor(QUEUE_SIZE / Math.min(c.chains, QUEUE_SIZE))));
  const chains = c.indirect ? c.chains : Math.min(c.chains, Math.floor(QUEUE_SIZE / pieces));
  /** Descriptors for packet `p` from entry `first` of `table`; returns how many. */
  const writePieces = (table: number, first: number, p: { addr: number; len: number }): number => {
    const step = Math.ceil(p.len / Math.min(pieces, p.len));
    const n = Math.ceil(p.len / step);
    for (let k = 0; k < n; k++) {
      const at = k * step;
      const last = k === n - 1;
      t.txq.writeDesc(table, first + k, p.addr + at, Math.min(step, p.len - at), last ? 0 : VIRTQ_DESC_F_NEXT, last ? 0 : first + k + 1);
    }
    return n;
  };
  let shared: { table: number; entries: number } | undefined;
  for (let i = 0; i < chains; i++) {
    const p = packets[(c.seed + i) % packets.length];
    if (c.indirect) {
      let indirect = shared;
      if (!indirect) {
        const table = t.driver.buffers.alloc(16 * pieces);
        indirect = { table, entries: writePieces(table, 0, p) };
        if (c.sharedTable) shared = indirect;
      }
      t.txq.writeDesc(desc, i, indirect.table, 16 * indirect.entries, VIRTQ_DESC_F_INDIRECT, 0);
      t.txq.publish(i);
    } else {
      writePieces(desc, i * pieces, p);
      t.txq.publish(i * pieces);
    }
  }
  const where = `${chains} chains, ${pieces} pieces${c.indirect ? (c.sharedTable ? ', one shared indirect table' : ', indirect') : ''}, packets ${c.packets.map((p) => `${p.payload}B${p.tso ? `/gso ${p.gsoSize}` : ''}`).join(' ')}`;
  let done = 0;
  for (let pass = 0; pass <= MAX_PASSES; pass++) {
    const wireBefore = t.wire.length;
    const usedBefore = t.txq.usedIdx;
    const work = measure(
      mem,
      () => (pass === 0 ? t.txq.notify() : s.step()),
      () => ({ frames: t.wire.length - wireBefore, chains: (t.txq.usedIdx - usedBefore) & 0xffff }),
    );
    if (pass === 0 && t.wire.length === wireBefore && work.extra.chains === 0) {
      // Kicks are deferred: the kick itself only schedules; its pass is the first step.
      continue;
    }
    assertWithinBudget(`net tx pass ${pass} (${where})`, work, TX_BUDGETS);
    worstCases.noteWork('net: tx pass', work, where, TX_BUDGETS);
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
export function netRxBoundedCase(c: RxCase): void {
  const wanted = c.mergeable ? ALL : ALL & ~featureBit(N.VIRTIO_NET_F_MRG_RXBUF);
  const t = NetHarness.create({ features: wanted, queueSize: QUEUE_SIZE, memorySize: 8 << 20 });
  for (let i = 0; i < c.frames; i++) t.inject(ethernet(new Uint8Array(Math.max(0, c.frameLength - 14 - (i % 3))).fill(0x5a), 0x88b5, GUEST_MAC, PEER_MAC));
  const mem = t.driver.memory;
  const desc = t.rxq.addr.desc;
  const one = c.aliased ? t.driver.buffers.alloc(c.size) : 0;
  // Distinct buffers only as many as guest RAM holds.
  const buffers = c.aliased ? c.buffers : Math.min(c.buffers, Math.floor((6 << 20) / c.size));
  for (let i = 0; i < buffers; i++) {
    t.rxq.writeDesc(desc, i, c.aliased ? one : t.driver.buffers.alloc(c.size), c.size, VIRTQ_DESC_F_WRITE, 0);
    t.rxq.publish(i);
  }
  const where = `${c.frames} frames of ≤ ${c.frameLength} bytes, ${buffers} buffers of ${c.size}${c.aliased ? ' (aliased)' : ''}${c.mergeable ? ', MRG_RXBUF' : ''}`;
  const rx0 = t.device.stats.rxFrames;
  const work = measure(mem, () => t.rxq.notify(), () => ({ rxFrames: t.device.stats.rxFrames - rx0 }));
  assertWithinBudget(`net rx kick (${where})`, work, RX_BUDGETS);
  worstCases.noteWork('net: rx kick', work, where, RX_BUDGETS);
  if (t.driver.errors.length > 0) fail(`device reset: ${t.driver.errors[0]}`);
}

export function netBoundedWorkProperty(): fc.IProperty<any> {
  return fc.property(
    fc.oneof({ weight: 3, arbitrary: txCaseArb.map((c) => ({ tx: c })) }, { weight: 1, arbitrary: rxCaseArb.map((c) => ({ rx: c })) }),
    (c) => ('tx' in c ? netTxBoundedCase(c.tx) : netRxBoundedCase(c.rx)),
  );
}
