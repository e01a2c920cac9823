/**
 * virtio-net under random traffic (fast-check), shared by the unit tests and the long
 * campaign (bench/fuzz.ts):
 *  - the device: any mix of tx chains (valid, mutated or garbage frames; plausible or fully
 *    random virtio_net_hdr; any descriptor split), TSO super-frames (valid or mutated, any
 *    gso_size), frames from the link, rx buffers of any size with or without MRG_RXBUF, link
 *    flaps, any negotiated feature set. Nothing throws out of a BAR handler or the link's
 *    event handler; the device never resets (nothing here breaks the ring); guest memory
 *    changes only inside posted rx buffers; every frame on the wire fits the MTU; the guest
 *    receives exactly the bytes of frames the peer sent, in order, and DATA_VALID only on
 *    frames whose checksums verify; with GUEST_TSO4, bursts of one TCP flow (valid or
 *    mutated) may come merged: cut at gso_size, a super-frame gives back each segment's
 *    payload and seq, and its partial checksum completes to a valid one; every frame is
 *    accounted for. Then a plain tx and rx still work. With the control queue negotiated: any
 *    request (valid, mutated or noise, any split, with or without room for the ack) gets
 *    exactly one answer, VIRTIO_NET_OK only for one that parses; frames the filter keeps back
 *    are counted; header flags (DATA_VALID, NEEDS_CSUM) only while GUEST_CSUM is among the
 *    guest offloads, super-frames only while GUEST_TSO4 is.
 *  - the offload functions alone (tso.ts, checksum.ts) on random frames.
 *  - frames over the MTU from the link: super-segments, honest or not (super-segment-properties.ts).
 *  - bounded work (bounded-work.ts): adversarial rings, every kick and pass within kickBudget.
 * The ring properties run on split rings and, named "… (packed)", on packed ones (§2.8); the
 * offload one has no ring.
 */
import fc from 'fast-check';
import type { Region } from '../../virtio/queue/descriptor-chain.ts';
import { DeviceStatus, Feature, NetFeature, featureBit } from '../../virtio/constants.ts';
import { Timeline } from '../../virtio/inspect/timeline.ts';
import { bump, checkInspector, checkInvariants, fail, maskNumbers, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { anyFrameArb, mutatedFrameArb } from '../../wire/testing/frame-arbitraries.ts';
import { foldSum, onesSum } from '../../wire/checksum.ts';
import { ETH_HLEN, ETH_MAX_FRAME as MAX_FRAME, VLAN_HLEN, maxFrameLength } from '../../wire/ethernet.ts';
import { MAX_TSO_SEGMENTS, TSO_MIN_GSO_SIZE } from './budget.ts';
import { netBoundedWorkProperty } from './bounded-work.ts';
import { netSuperSegmentProperty } from './super-segment-properties.ts';
import { completePartialChecksum, rxChecksumValid } from './checksum.ts';
import { CTRL_MAX_REQUEST_BYTES } from './ctrl-budget.ts';
import { parseCtrlRequest } from './ctrl-command.ts';
import { CTRL_FEATURE_BITS } from './ctrl.ts';
import { announceAckRequest, ctrlRequest, macAddrRequest, macTableRequest, offloadsRequest, rxModeRequest, sendCtrl } from './ctrl-testing.ts';
import { NET_CTRLQ, NetCtrlRx, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_SIZE, VIRTIO_NET_OK } from './spec.ts';
import { LRO_MAX_FRAME } from './rx-lro.ts';
import { segmentTcp4 } from '../../wire/tso.ts';
import { cutSuperSegment, makeSuperSegment, superSegmentView } from '../../wire/super-segment.ts';
import { SUPER_SEGMENT_MAX_FRAME } from '../../wire/link-hello.ts';
import { inspectorView } from '../inspector-view.ts';
import { netDevice } from './index.ts';
import { equalBytes } from '../testing/equal-bytes.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';
import { GUEST_IP, GUEST_MAC, NetHarness, PEER_IP, PEER_MAC, checksumsOk, ethernet, finishL4, ipv4, partial, tcp, type RxFrame } from './testing.ts';

const OUT = { srcMac: GUEST_MAC, dstMac: PEER_MAC, srcIp: 0x0a00020f, dstIp: 0x0a000202 };
const IN = { srcMac: PEER_MAC, dstMac: GUEST_MAC, srcIp: 0x0a000202, dstIp: 0x0a00020f };

/** A TCP/IPv4 super-frame as Linux hands it to a TSO device: CHECKSUM_PARTIAL, any size. */
const superFrameArb = fc
  .record({ payload: fc.integer({ min: 0, max: 9000 }), seq: fc.integer({ min: 0, max: 0xffffffff }), flags: fc.constantFrom(0x18, 0x19, 0x98, 0x10) })
  .map((s) => partial(ethernet(ipv4({ protocol: 6, src: GUEST_IP, dst: PEER_IP, payload: tcp({ seq: s.seq, flags: s.flags, payload: Uint8Array.from({ length: s.payload }, (_, i) => i & 0xff) }) }))).frame);

/** virtio_net_hdr: mostly what a driver would write, sometimes any 12 bytes. */
const hdrArb = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      flags: fc.constantFrom(0, 1, 1, 2, 3),
      gsoType: fc.constantFrom(0, 0, 1, 0x81, 3, 4, 5),
      hdrLen: fc.integer({ min: 0, max: 100 }),
      gsoSize: fc.oneof(fc.integer({ min: 0, max: 1600 }), fc.constantFrom(0, 1, 536, 1448, 1460, 65535)),
      csumStart: fc.oneof(fc.constantFrom(34, 14, 0), fc.integer({ min: 0, max: 2000 })),
      csumOffset: fc.oneof(fc.constantFrom(16, 6, 2), fc.integer({ min: 0, max: 40 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      flags: fc.integer({ min: 0, max: 0xff }),
      gsoType: fc.integer({ min: 0, max: 0xff }),
      hdrLen: fc.integer({ min: 0, max: 0xffff }),
      gsoSize: fc.integer({ min: 0, max: 0xffff }),
      csumStart: fc.integer({ min: 0, max: 0xffff }),
      csumOffset: fc.integer({ min: 0, max: 0xffff }),
    }),
  },
);

const macArb = fc.oneof(
  fc.constantFrom(GUEST_MAC, PEER_MAC, Uint8Array.of(1, 0, 0x5e, 0, 0, 1), Uint8Array.of(0x33, 0x33, 0, 0, 0, 1)),
  fc.uint8Array({ minLength: 6, maxLength: 6 }),
);

/** A control request: what a driver sends, the same mutated, or noise. */
const ctrlRequestArb = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 0, max: 5 }), fc.boolean()).map(([cmd, on]) => rxModeRequest(cmd, on)) },
  { weight: 2, arbitrary: fc.tuple(fc.array(macArb, { maxLength: 70 }), fc.array(macArb, { maxLength: 6 })).map(([u, m]) => macTableRequest(u, m)) },
  { weight: 2, arbitrary: macArb.map((m) => macAddrRequest(m)) },
  { weight: 1, arbitrary: fc.constant(announceAckRequest()) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 0x7ffn }).map((o) => offloadsRequest(o)) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 40 })).map(([cls, cmd, data]) => ctrlRequest(cls, cmd, data)),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }) },
);

const splitArb = fc.array(fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 3000 })), { maxLength: 5 });

const opArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('tx' as const),
      frame: anyFrameArb(OUT, 2000),
      hdr: hdrArb,
      /** Descriptor boundaries anywhere, the header's included (ANY_LAYOUT). */
      split: fc.oneof(splitArb.map((s) => [12, ...s]), splitArb),
      indirect: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('tso' as const),
      /** Mutated super-frames owe us only bounded output; valid ones exact segments. */
      valid: fc.boolean(),
      frame: superFrameArb,
      mutated: mutatedFrameArb(superFrameArb),
      // Tiny MSS is legal but makes thousands of segments: rarely.
      mss: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 500, max: 1460 }) },
        { weight: 2, arbitrary: fc.constantFrom(0, 1448, 1461, 1500, 65535) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 500 }) },
      ),
      ecn: fc.boolean(),
      split: splitArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('burst' as const),
      frames: fc.array(fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 14, max: 1513 }) }), { minLength: 2, maxLength: 12 }),
      size: fc.oneof(fc.constant(1460), fc.integer({ min: 1, max: 1460 })),
      seq: fc.integer({ min: 0, max: 0xffffffff }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('inject' as const), frame: fc.oneof(anyFrameArb(IN, 1600), fc.integer({ min: 0, max: 1600 }).map((n) => new Uint8Array(n).fill(0x5a))) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('post' as const),
      // Per rx chain, its descriptors' sizes (Linux posts one; any layout is allowed).
      sizes: fc.array(
        fc.oneof(
          { weight: 4, arbitrary: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 1, max: 2000 }), fc.constant(VIRTIO_NET_HDR_SIZE + 1514)).map((n) => [n]) },
          { weight: 1, arbitrary: fc.array(fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 1, max: 800 })), { minLength: 2, maxLength: 4 }) },
        ),
        { minLength: 1, maxLength: 4 },
      ),
      kick: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('link' as const), up: fc.constantFrom(false, true, true) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('ctrl' as const),
      request: ctrlRequestArb,
      split: fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 3 }),
      ackBytes: fc.constantFrom(1, 1, 1, 0, 4),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'announce' as const }) },
);

const N = NetFeature;
const OPTIONAL = [
  N.VIRTIO_NET_F_CSUM,
  N.VIRTIO_NET_F_GUEST_CSUM,
  N.VIRTIO_NET_F_HOST_TSO4,
  N.VIRTIO_NET_F_MRG_RXBUF,
  N.VIRTIO_NET_F_STATUS,
  N.VIRTIO_NET_F_GUEST_TSO4,
  ...CTRL_FEATURE_BITS,
];

/**
 * A burst of one TCP flow toward the guest: segments of `size` bytes in sequence from `seq`,
 * checksums correct; an entry that is a number flips the byte at that offset (a header or
 * payload mutation the merge must notice or survive).
 */
function burstFrames(o: { frames: (number | undefined)[]; size: number; seq: number }): Uint8Array[] {
  return o.frames.map((flip, i) => {
    const seq = (o.seq + i * o.size) >>> 0;
    const payload = Uint8Array.from({ length: o.size }, (_, j) => (j + seq) & 0xff);
    const f = finishL4(ethernet(ipv4({ protocol: 6, src: PEER_IP, dst: GUEST_IP, payload: tcp({ srcPort: 80, dstPort: 40000, seq, ack: 1, flags: 0x10, payload }) }), 0x0800, GUEST_MAC, PEER_MAC));
    if (flip !== undefined && flip < f.length) f[flip] ^= 0x20;
    return f;
  });
}

/**
 * A received packet as the frames it stands for: itself, or a super-frame (gso_type TCPV4)
 * cut at gso_size into {seq, payload} pieces, after checking its header and checksums.
 */
function expandReceived(r: RxFrame, guestTso: boolean): Array<Uint8Array | { seq: number; payload: Uint8Array }> {
  if (r.hdr.gsoType === 0) return [r.frame];
  if (!guestTso) fail(`gso_type ${r.hdr.gsoType} without GUEST_TSO4`);
  if (r.hdr.gsoType !== VIRTIO_NET_HDR_GSO_TCPV4 || r.hdr.flags !== VIRTIO_NET_HDR_F_NEEDS_CSUM || r.hdr.csumStart !== 34 || r.hdr.csumOffset !== 16) fail('malformed super-frame header');
  if (r.frame.length > LRO_MAX_FRAME || r.hdr.gsoSize < 1 || r.hdr.hdrLen < 54) fail('super-frame over its bounds');
  const done = r.frame.slice();
  completePartialChecksum(done, r.hdr.csumStart, r.hdr.csumOffset);
  if (!checksumsOk(done)) fail('a super-frame whose completed checksum does not verify');
  const seq0 = (done[38] << 24) | (done[39] << 16) | (done[40] << 8) | done[41];
  const out = [];
  for (let at = r.hdr.hdrLen; at < done.length; at += r.hdr.gsoSize) {
    out.push({ seq: (seq0 + at - r.hdr.hdrLen) >>> 0, payload: done.subarray(at, Math.min(done.length, at + r.hdr.gsoSize)) });
  }
  if (out.length < 2) fail('a super-frame of one segment');
  return out;
}

/** Whether `sent` is the frame a received piece stands for. */
function sameFrame(sent: Uint8Array, got: Uint8Array | { seq: number; payload: Uint8Array }): boolean {
  if (got instanceof Uint8Array) return equalBytes(sent, got);
  const seq = ((sent[38] << 24) | (sent[39] << 16) | (sent[40] << 8) | sent[41]) >>> 0;
  return sent.length >= 54 && sent[23] === 6 && seq === got.seq && equalBytes(sent.subarray(54, 14 + ((sent[16] << 8) | sent[17])), got.payload);
}

/** What a guest's stack would verify itself (UDP without a checksum is taken as is). */
function verifiable(frame: Uint8Array): boolean {
  const ihl = (frame[14] & 15) * 4;
  return !(frame[23] === 17 && frame[14 + ihl + 6] === 0 && frame[14 + ihl + 7] === 0);
}

export type NetFuzzOp = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** One case (exported for regression tests). */
export function netTrafficCase(
  bits: readonly number[],
  indirectRing: boolean,
  ops: readonly NetFuzzOp[],
  inspect = false,
  deferred = false,
  coverage = new Map<string, number>(),
  ring: RingLayout = 'split',
  superSegmentsOut = false,
): void {
  let features = featureBit(Feature.VIRTIO_F_VERSION_1) | featureBit(N.VIRTIO_NET_F_MAC) | featureBit(N.VIRTIO_NET_F_MTU);
  if (indirectRing) features |= featureBit(Feature.VIRTIO_F_RING_INDIRECT_DESC);
  for (const b of bits) features |= featureBit(b);
  const later = deferred ? manualDefer() : undefined;
  const t = NetHarness.create({ features, rxBacklogFrames: 8, rxBacklogBytes: 6000, memorySize: 1 << 20, defer: later?.defer, ring, superSegmentSendLimit: superSegmentsOut ? SUPER_SEGMENT_MAX_FRAME : 0, superSegmentsOut });
  if (t.txq.layout !== ring) fail(`negotiated a ${t.txq.layout} ring, not ${ring}`);
  const tso = bits.includes(N.VIRTIO_NET_F_HOST_TSO4);
  const inspector = inspect ? inspectorView(netDevice, t.device) : undefined;
  const timeline = inspector && new Timeline(inspector.decoder);
  t.driver.fn.tracer = timeline;
  /** Where the device may write: posted rx buffers and control acks. */
  const rxRegions: Region[] = [];
  /** Total size of each rx chain posted. */
  const rxChains: number[] = [];
  const injected: Uint8Array[] = [];
  const received: Array<Uint8Array | { seq: number; payload: Uint8Array }> = [];
  let injectedCount = 0;
  const cq = bits.includes(N.VIRTIO_NET_F_CTRL_VQ) ? t.driver.queues[NET_CTRLQ] : undefined;
  const mergeable = bits.includes(N.VIRTIO_NET_F_MRG_RXBUF);
  const collect = () => {
    // The offloads in force when these frames went in (a ctrl op collects before it changes them).
    const offloads = t.device.guestOffloads;
    const csumOn = (offloads & featureBit(N.VIRTIO_NET_F_GUEST_CSUM)) !== 0n;
    const guestTso = csumOn && mergeable && (offloads & featureBit(N.VIRTIO_NET_F_GUEST_TSO4)) !== 0n;
    for (const r of t.received()) {
      if (r.hdr.numBuffers < 1) fail('num_buffers 0');
      // §5.1.6.4: without GUEST_CSUM flags are zero (no DATA_VALID, no NEEDS_CSUM).
      if (r.hdr.flags !== 0 && !csumOn) fail(`flags ${r.hdr.flags} with GUEST_CSUM not among the guest offloads`);
      if (r.hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID && verifiable(r.frame) && !checksumsOk(r.frame)) fail('DATA_VALID on a frame whose checksums do not verify');
      received.push(...expandReceived(r, guestTso));
    }
  };
  for (const o of ops) {
    const wireBefore = t.wire.length;
    switch (o.kind) {
      case 'tx':
      case 'tso': {
        if (t.txq.freeDescriptors < 8) t.txDone();
        const hdr = o.kind === 'tx' ? o.hdr : { flags: 1, csumStart: 34, csumOffset: 16, gsoType: o.ecn ? 0x81 : 1, gsoSize: o.mss };
        const frame = o.kind === 'tso' && !o.valid ? o.mutated : o.frame;
        t.add(frame, hdr, o.kind === 'tx' ? o.split : [12, ...o.split], o.kind === 'tx' && o.indirect && indirectRing);
        t.txq.kick();
        later?.settle();
        let out = t.wire.slice(wireBefore);
        // A super-segment (the link takes them) must be one its receiver accepts; it stands for its cut.
        if (out.length === 1 && out[0].length > maxFrameLength(out[0], 1500) && o.kind === 'tso' && superSegmentsOut) {
          const view = superSegmentView(out[0], 1500, true);
          if (typeof view === 'string') fail(`the NIC sent ${view}`);
          out = cutSuperSegment(out[0], view, MAX_FRAME) ?? fail('a super-segment that does not cut');
          bump(coverage, 'tx super-segment');
        }
        for (const f of out) if (f.length < 14 || f.length > maxFrameLength(f, 1500)) fail(`a ${f.length}-byte frame went on the wire`);
        if (out.length > 0 && hdr.gsoType === 0 && (out.length !== 1 || out[0].length !== frame.length)) fail('a non-GSO packet changed size on the way out');
        if (o.kind === 'tso' && o.valid && tso && t.peer.up && o.mss >= TSO_MIN_GSO_SIZE && o.mss <= 1460) checkSegments(frame, o.mss, out);
        if (o.kind === 'tso' && o.mss < TSO_MIN_GSO_SIZE && out.length > 0) fail(`gso_size ${o.mss} made ${out.length} frames`);
        break;
      }
      case 'inject':
      case 'burst':
        for (const frame of o.kind === 'inject' ? [o.frame] : burstFrames(o)) {
          injectedCount++;
          if (t.peer.up && frame.length >= 14 && frame.length <= maxFrameLength(frame, 1500)) injected.push(frame);
          t.inject(frame);
        }
        break;
      case 'post':
        if (t.rxq.freeDescriptors < o.sizes.flat().length) collect();
        if (t.rxq.freeDescriptors < o.sizes.flat().length) break;
        for (const sizes of o.sizes) {
          rxRegions.push(...t.rxq.add({ writable: sizes }).writable);
          rxChains.push(sizes.reduce((a, b) => a + b, 0));
        }
        if (o.kick) t.rxq.kick();
        break;
      case 'link':
        t.peer.setUp(o.up);
        break;
      case 'ctrl': {
        // No bytes either way is no chain at all (a chain has at least one descriptor).
        if (!cq || (o.request.length === 0 && o.ackBytes === 0)) break;
        // Frames so far were delivered under the offloads before this request.
        collect();
        const errors = t.device.control.stats.ctrlErrors;
        const answer = sendCtrl(cq, o.request, o.split, o.ackBytes);
        const ok = answer.ack === VIRTIO_NET_OK;
        if (o.ackBytes === 0 ? answer.len !== 0 : answer.len !== 1 || answer.ack! > 1) fail(`control answer ${JSON.stringify(answer)} with ${o.ackBytes} bytes of ack room`);
        if (ok && (o.request.length > CTRL_MAX_REQUEST_BYTES || !parseCtrlRequest(o.request).ok)) fail('VIRTIO_NET_OK for a request that does not parse');
        if (ok === (t.device.control.stats.ctrlErrors !== errors)) fail('a control error not counted, or counted for an OK');
        rxRegions.push(...answer.ackRegions);
        break;
      }
      case 'announce':
        if (t.device.requestAnnounce() && !(bits.includes(N.VIRTIO_NET_F_GUEST_ANNOUNCE) && cq)) fail('announce requested without GUEST_ANNOUNCE');
        break;
    }
    checkInvariants(t.driver);
    const s = t.device.stats;
    if (s.backlogFrames > 8 || s.backlogBytes > 6000) fail(`rx backlog of ${s.backlogFrames} frames, ${s.backlogBytes} bytes over its bounds`);
  }
  collect();
  if (inspector) checkInspector(t.driver, inspector.view, timeline);
  const mem = t.driver.memory;
  for (const w of mem.writtenNotices) {
    if (!rxRegions.some((r) => w.addr >= r.addr && w.addr + w.len <= r.addr + r.len)) fail(`device wrote [0x${w.addr.toString(16)}, +${w.len}) outside rx buffers`);
  }
  if (t.driver.status & DeviceStatus.DEVICE_NEEDS_RESET || t.driver.errors.length > 0) fail(`device reset: ${t.driver.errors[0]}`);
  // The guest got the peer's frames, unchanged and in order (some dropped, some waiting).
  let at = 0;
  for (const r of received) {
    while (at < injected.length && !sameFrame(injected[at], r)) at++;
    if (at === injected.length) fail(`the guest received a ${r instanceof Uint8Array ? r.length : r.payload.length}-byte frame the peer never sent (or out of order)`);
    at++;
  }
  const s = t.device.stats;
  if (s.rxFrames !== received.length) fail(`${s.rxFrames} frames counted, ${received.length} received`);
  const control = t.device.control;
  if (s.rxFrames + s.rxDrops + s.backlogFrames + t.peer.dropped + control.stats.rxDropsFiltered !== injectedCount) fail('an injected frame is unaccounted for');
  for (const [k, v] of Object.entries({ ...s.toRecord(), ...control.stats.toRecord() })) if (v && /Drops|Csum|Gso|DataValid|Merged|BadBuffers|Lro|ctrl|mac|announce/.test(k)) bump(coverage, k, v);
  if (control.lastError) bump(coverage, `last control error: ${maskNumbers(control.lastError)}`);
  if (t.device.lastDropReason) bump(coverage, `last drop: ${maskNumbers(t.device.lastDropReason)}`);

  // Plain traffic afterwards.
  t.peer.setUp(true);
  t.received();
  t.txDone();
  const hello = ethernet(Uint8Array.from({ length: 46 }, (_, i) => i), 0x88b5);
  const before = t.wire.length;
  t.send(hello);
  later?.settle();
  if (t.wire.length !== before + 1 || !equalBytes(t.wire[before], hello)) fail('a plain frame did not go out after the garbage');
  // An honest driver opens the filter again (a MAC_ADDR_SET or NOUNI may have closed it to `back`).
  if (cq && bits.includes(N.VIRTIO_NET_F_CTRL_RX) && sendCtrl(cq, rxModeRequest(NetCtrlRx.PROMISC, true)).ack !== VIRTIO_NET_OK) fail('an honest PROMISC on failed after the garbage');
  t.postRx(t.device.stats.backlogFrames + 1);
  collect();
  const back = ethernet(Uint8Array.from({ length: 50 }, (_, i) => 255 - i), 0x88b5, GUEST_MAC, PEER_MAC);
  t.inject(back);
  const got = t.received();
  // Without MRG_RXBUF a buffer under 1526 bytes breaks a SHOULD (§5.1.6.3.1): the device may
  // keep dropping frames that do not fit it, until the driver resets.
  const undersized = !bits.includes(N.VIRTIO_NET_F_MRG_RXBUF) && rxChains.some((n) => n >= 26 && n < VIRTIO_NET_HDR_SIZE + MAX_FRAME + VLAN_HLEN);
  if (!undersized && (got.length !== 1 || !equalBytes(got[0].frame, back))) fail('a plain frame did not come in after the garbage');
  checkInvariants(t.driver);
}

/** A valid super-frame cut at `mss`: every segment verifies and the payloads add up. */
function checkSegments(frame: Uint8Array, mss: number, out: Uint8Array[]): void {
  const ip = ETH_HLEN;
  const total = (frame[ip + 2] << 8) | frame[ip + 3];
  const l4 = ip + (frame[ip] & 15) * 4;
  if (frame.length !== ip + total) fail('the super-frame builder is off');
  const headers = l4 + (frame[l4 + 12] >> 4) * 4;
  const payload = frame.subarray(headers);
  if (headers + Math.min(mss, payload.length) > MAX_FRAME) return;
  if (out.length !== Math.max(1, Math.ceil(payload.length / mss))) fail(`${out.length} segments for ${payload.length} bytes at MSS ${mss}`);
  let done = 0;
  for (const seg of out) {
    if (!checksumsOk(seg)) fail('a TSO segment has a wrong checksum');
    const body = seg.subarray(headers);
    if (!equalBytes(body, payload.subarray(done, done + body.length))) fail('TSO segments do not carry the payload in order');
    done += body.length;
  }
  if (done !== payload.length) fail('TSO segments lost payload');
}

export function netTrafficProperty(coverage = new Map<string, number>(), ring: RingLayout = 'split'): fc.IProperty<any> {
  return fc.property(
    fc.subarray(OPTIONAL),
    fc.boolean(),
    fc.array(opArb, { maxLength: 50 }),
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
    (bits, indirectRing, ops, inspect, deferred, superOut) => netTrafficCase(bits, indirectRing, ops, inspect, deferred, coverage, ring, superOut),
  );
}

/** The offload code alone, on anything. */
export function netOffloadProperty(): fc.IProperty<any> {
  const frameArb = fc.oneof(superFrameArb, mutatedFrameArb(superFrameArb), anyFrameArb(OUT, 3000));
  return fc.property(
    frameArb,
    fc.oneof(fc.integer({ min: 0, max: 1600 }), fc.integer({ min: 0, max: 0xffff })),
    fc.oneof(fc.constant(MAX_FRAME), fc.integer({ min: 0, max: 70000 })),
    fc.integer({ min: 0, max: 0xffff }),
    fc.integer({ min: 0, max: 0xffff }),
    (frame, mss, maxFrame, csumStart, csumOffset) => {
      const result = segmentTcp4(frame, mss, maxFrame);
      if (result.ok) {
        for (const f of result.frames) if (f.length > maxFrame) fail(`TSO made a ${f.length}-byte frame, max ${maxFrame}`);
        if (result.frames.length > Math.max(1, Math.ceil(frame.length / Math.max(1, mss)))) fail('TSO made more segments than the payload allows');
        if (result.frames.length > MAX_TSO_SEGMENTS) fail(`TSO made ${result.frames.length} segments, over its budget ${MAX_TSO_SEGMENTS}`);
        if (mss < TSO_MIN_GSO_SIZE) fail(`TSO accepted gso_size ${mss}`);
      }
      const whole = frame.slice();
      const made = makeSuperSegment(whole, mss, 1500);
      if (typeof made === 'string') {
        if (!equalBytes(whole, frame)) fail('a refused super-segment changed the frame');
      } else {
        if (made.segments > MAX_TSO_SEGMENTS) fail(`a super-segment of ${made.segments} segments`);
        const view = superSegmentView(whole, 1500, true);
        if (typeof view === 'string') fail(`makeSuperSegment made ${view}`);
        const cut = cutSuperSegment(whole, view, MAX_FRAME) ?? fail('a super-segment made here does not cut');
        if (!equalBytes(Uint8Array.from(cut.flatMap((f) => [...f.subarray(view.data)])), frame.subarray(view.data, view.end))) fail('a super-segment cut does not carry its payload');
      }
      const copy = frame.slice();
      const at = csumStart + csumOffset;
      const old = at + 2 <= frame.length ? (frame[at] << 8) | frame[at + 1] : 0;
      if (completePartialChecksum(copy, csumStart, csumOffset)) {
        if (csumStart >= frame.length || at + 2 > frame.length) fail('checksum completed at offsets outside the frame');
        if (copy.some((b, i) => b !== frame[i] && i !== at && i !== at + 1)) fail('checksum completion changed other bytes');
        // The stored value, added to the partial sum the field held, verifies (when the
        // field is word-aligned to csum_start, as every real stack puts it).
        if (csumOffset % 2 === 0 && foldSum(onesSum(copy, csumStart, copy.length, old)) !== 0xffff) fail('completed checksum does not verify');
      } else if (!equalBytes(copy, frame)) fail('a refused checksum completion changed the frame');
      if (rxChecksumValid(frame) && verifiable(frame) && !checksumsOk(frame)) fail('rxChecksumValid on a frame whose checksums do not verify');
    },
  );
}

/** The ring properties on split rings, then on packed ones ("… (packed)"); the offload one once. */
export function netProperties(): NamedProperty[] {
  const onLayout = (ring: RingLayout): NamedProperty[] => {
    const coverage = new Map<string, number>();
    return [
      { name: onRing('net: random tx chains, headers, TSO, rx frames and buffers, then plain traffic', ring), property: netTrafficProperty(coverage, ring), coverage },
      {
        name: onRing('net: bounded work per kick on adversarial rings (tiny gso_size, 64 KiB sends, aliased buffers, 256 chains, full backlog)', ring),
        property: netBoundedWorkProperty(ring),
      },
    ];
  };
  const [split, packed] = RING_LAYOUTS.map(onLayout);
  return [
    split[0],
    { name: 'net: TSO and checksum offloads on random frames', property: netOffloadProperty() },
    { name: 'net: super-segments from the link: honest, mutated and garbage frames over the MTU', property: netSuperSegmentProperty() },
    split[1],
    ...packed,
  ];
}
