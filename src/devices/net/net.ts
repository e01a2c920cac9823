/**
 * virtio-net (§5.1) over a FrameLink: one receiveq, one transmitq and (VIRTIO_NET_F_CTRL_VQ,
 * option ctrlVq) a controlq, served by ctrl.ts; its receive filter decides which frames from
 * the link reach the guest.
 *
 * tx: on a kick (or at the end of the emulator's time slice, see `defer`) pop chains,
 * gather virtio_net_hdr + frame, complete a partial checksum (CSUM) or cut a TSO super-frame
 * into MSS-sized frames (HOST_TSO4; or, with superSegmentsOut and a far end that takes
 * super-segments, send it whole as one: FrameLink.superSegmentSendLimit), hand the frames to the link and return
 * the chain with len 0. One interrupt decision per pass; a pass stops at its budget (budget.ts) and the
 * rest of the ring is served by another pass on a later task (tx-passes.ts).
 *
 * rx: a frame from the link goes into the guest's posted buffers at once (header, then the
 * frame; with MRG_RXBUF spread over as many buffers as it takes, num_buffers saying how
 * many). Without a buffer it waits in a bounded backlog and goes in when the guest refills
 * (the rx kick). Past the bound, frames are dropped and counted, as a NIC would; so one rx
 * kick delivers at most the backlog's frames and bytes.
 *
 * Large receive (GUEST_TSO4, with GUEST_CSUM and MRG_RXBUF): TCP segments of one flow waiting
 * together are handed over as one super-frame (rx-lro.ts). With `rxHold`, the first frame of a
 * burst goes in at once and the rest wait for the emulator's next timer check or, if it
 * sleeps, the next task (the guest cannot see them earlier anyway), so they merge.
 *
 * Super-segments (rx-super.ts): while large receive is in force the device offers the link
 * TCP/IPv4 frames of up to 64 KiB (FrameLink.offerSuperSegments; the relay's TCP then sends
 * them, one WebSocket message each) and hands each to the guest as one super-frame. Offer
 * withdrawn on reset or when the guest turns the offloads off; one that arrives after that is
 * cut into MTU frames here, one still waiting when the offloads go is dropped and counted.
 *
 * Frame sizes: MTU + 14, or MTU + 18 with a VLAN tag, either way (rx super-frames and
 * super-segments from the link: 64 KiB).
 *
 * Guest mistakes in a packet (short chain, bad offsets, unnegotiated GSO) drop that packet
 * and count it; only ring violations (thrown by the queue engine) reset the device.
 */
import type { ConfigSpace } from '../../virtio/config-space.ts';
import { DeviceId, NetFeature, PciClass, features as featureMask } from '../../virtio/constants.ts';
import type { DeviceContext, VirtioDevice } from '../../virtio/device.ts';
import { RegionCursor, type DescriptorChain } from '../../virtio/queue/descriptor-chain.ts';
import type { Virtqueue } from '../../virtio/queue/virtqueue.ts';
import type { FrameLink } from '../../backends/frame-link.ts';
import { FrameBacklog } from './backlog.ts';
import { completePartialChecksum, rxChecksumValid } from './checksum.ts';
import { NetConfig, toMac } from './config.ts';
import { CTRL_QUEUE_SIZE } from './ctrl-budget.ts';
import { CTRL_FEATURES, NetControl } from './ctrl.ts';
import { encodeNetHdr, parseNetHdr } from './hdr.ts';
import { DEFAULT_MTU, ETH_HLEN, VLAN_HLEN, maxFrameLength } from '../../wire/ethernet.ts';
import { DEFAULT_RX_BACKLOG_BYTES, DEFAULT_RX_BACKLOG_FRAMES, LRO_MAX_SEGMENTS, TX_PASS_BYTES, TX_PASS_FRAMES, lroFrameLimit } from './budget.ts';
import {
  MAX_GSO_FRAME,
  NET_CTRLQ,
  NET_RECEIVEQ,
  NET_TRANSMITQ,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_SIZE,
} from './spec.ts';
import { LRO_MAX_FRAME, TCP_CSUM_OFFSET, coalesceTcp4, type LroRun } from './rx-lro.ts';
import { checkSuperSegment, clearUrgent, superSegmentHeadForGuest } from './rx-super.ts';
import { SUPER_SEGMENT_MIN_OFFER } from '../../wire/link-hello.ts';
import { NetStats } from './stats.ts';
import { segmentTcp4 } from '../../wire/tso.ts';
import { ByteSlab } from '../../wire/byte-slab.ts';
import { makeSuperSegment } from '../../wire/super-segment.ts';
import { TxPasses } from './tx-passes.ts';

/** Room for the largest TSO packet and its segments (2 × 64 KiB and their headers) with space to spare. */
const TX_SLAB_BYTES = 256 * 1024;

export type FrameDirection = 'rx' | 'tx';

export interface VirtioNetOptions {
  link: FrameLink;
  /** The NIC's address (VIRTIO_NET_F_MAC): stable per disk or tab so DHCP leases are too. */
  mac: Uint8Array | string;
  /** Advertised MTU (VIRTIO_NET_F_MTU), default 1500. Longer frames (a VLAN tag aside) are dropped both ways. */
  mtu?: number;
  /** Size of each queue, a power of 2 (default 256). */
  queueSize?: number;
  /** Offer VIRTIO_NET_F_HOST_TSO4 (default true): the device segments large TCP sends. */
  tso?: boolean;
  /**
   * Offer VIRTIO_NET_F_CTRL_VQ and the features it carries (CTRL_RX, CTRL_RX_EXTRA,
   * CTRL_MAC_ADDR, GUEST_ANNOUNCE, CTRL_GUEST_OFFLOADS; default true).
   */
  ctrlVq?: boolean;
  /** Offer VIRTIO_NET_F_MRG_RXBUF (default true). */
  mergeableRxBuffers?: boolean;
  /** Offer the link super-segments while large receive is in force (default true). */
  superSegments?: boolean;
  /**
   * Send the guest's TSO frames whole to a link that takes super-segments (default false:
   * the device cuts them into MTU frames, as a NIC's TSO engine does, which the lessons show).
   */
  superSegmentsOut?: boolean;
  /**
   * Offer VIRTIO_NET_F_GUEST_TSO4 (default true; only with MRG_RXBUF, so the guest posts
   * page-sized buffers rather than 64 KiB ones): TCP segments waiting together reach the
   * guest merged into super-frames.
   */
  guestTso?: boolean;
  /**
   * Where arriving frames wait before going in (the lab: DrainPoint.hold, the emulator's next
   * timer check or the next task), so a burst merges. Default: none, every frame goes in as
   * it arrives.
   */
  rxHold?: (job: () => void) => void;
  /** Bounds of the backlog of frames waiting for rx buffers (defaults 256 frames, 1 MiB). */
  rxBacklogFrames?: number;
  rxBacklogBytes?: number;
  /**
   * Serve tx kicks later (e.g. queueMicrotask: at the end of the emulator's time slice)
   * with kicks suppressed meanwhile, so a burst of sends costs one exit. Default: inline
   * (a pass over budget then continues on a microtask).
   */
  defer?: (drain: () => void) => void;
  /**
   * Where a tx pass that spent its budget continues (the lab: a macrotask, so the emulator
   * runs between passes). Default: `defer`, else a microtask.
   */
  later?: (job: () => void) => void;
  /**
   * With `defer`: the first tx kick since `defer` last ran is served at once (a lone ping
   * leaves without waiting for the emulator's timer check); later ones wait as before.
   * Default false.
   */
  txFirstKickAtOnce?: boolean;
  /** Every frame that crosses the device: tx as it leaves for the link, rx as it enters the guest. */
  onCapture?(frame: Uint8Array, direction: FrameDirection): void;
  /**
   * onCapture copies what it keeps: with a link that copies too (FrameLink.sendCopies), the
   * device reuses its tx frames' bytes for the next chain. Default false (frames are never reused).
   */
  onCaptureCopies?: boolean;
}

export class VirtioNet implements VirtioDevice {
  readonly name = 'virtio-net';
  readonly deviceId = DeviceId.NET;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly pciClass = PciClass.NETWORK_ETHERNET;
  readonly deviceConfig: ConfigSpace;
  readonly config: NetConfig;
  /** The NIC's current address: the options', or the one the driver set (MAC_ADDR_SET) since its last reset. */
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly link: FrameLink;
  readonly stats = new NetStats();
  /** The control queue, its receive filter and the guest offloads in force. */
  readonly control: NetControl;
  /** Capture hook; may be set or cleared at any time. */
  onCapture: VirtioNetOptions['onCapture'];
  /** Most recent reason a packet was dropped (for logs and tests). */
  lastDropReason: string | undefined;

  private ctx: DeviceContext | undefined;
  private readonly backlog: FrameBacklog;
  /** rx chains popped but not used yet (kept for the next frame; never handed back). */
  private stash: DescriptorChain[] = [];
  private readonly txPasses: TxPasses;
  /** rx used entries pushed so far (to know whether a fill needs an interrupt decision). */
  private rxPushed = 0;
  /** The virtio_net_hdr of the rx packet being delivered, reused (the frame is written from where it is). */
  private readonly hdrScratch = new Uint8Array(VIRTIO_NET_HDR_SIZE);
  /** A tx chain's virtio_net_hdr, read here; its frame goes to a range of txFrames. */
  private readonly txHdr = new Uint8Array(VIRTIO_NET_HDR_SIZE);
  /**
   * Tx frames and their TSO segments: ranges of shared slabs, rewound after each chain when
   * nobody keeps them (txPass decides), so their pages stay warm (byte-slab.ts says why).
   * A whole TSO packet and its segments take ~130 KiB; every byte taken is written.
   */
  private readonly txFrames = new ByteSlab(TX_SLAB_BYTES, MAX_GSO_FRAME);
  private readonly takeTxBytes = (length: number) => this.txFrames.take(length);
  private readonly onCaptureCopies: boolean;
  /** Room for virtio_net_hdr, then the super-frame large receive merges, made when GUEST_TSO4 is first negotiated. */
  private lroScratch: Uint8Array<ArrayBuffer> | undefined;
  /**
   * The run merged in lroScratch, the frame it starts with and the backlog's length then:
   * while no frame has joined or left, a run waiting for buffers is merged (and its checksums
   * checked) once, not again at every refill.
   */
  private lroRun: { head: Uint8Array; waiting: number; run: LroRun } | undefined;
  private readonly rxHold: VirtioNetOptions['rxHold'];
  /** A held fill is scheduled: frames arriving now wait for it. */
  private rxHeld = false;
  private mergeable = false;
  private guestCsum = false;
  private hostTso4 = false;
  private guestTso4 = false;
  private readonly superSegments: boolean;
  private readonly superSegmentsOut: boolean;
  /** The largest super-segment offered to the link now (0: none). */
  private superSegmentOffer = 0;
  /** Super-segments in the backlog, as checked on arrival (or restore). */
  private readonly superSegmentRuns = new WeakMap<Uint8Array, LroRun>();

  constructor(opts: VirtioNetOptions) {
    this.mac = toMac(opts.mac);
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(this.mtu) || this.mtu < 68 || this.mtu > 65535) throw new RangeError(`virtio-net: MTU ${this.mtu} out of range`);
    this.link = opts.link;
    this.txPasses = new TxPasses(opts.defer, opts.later, opts.txFirstKickAtOnce);
    this.rxHold = opts.rxHold;
    this.onCapture = opts.onCapture;
    this.onCaptureCopies = opts.onCaptureCopies ?? false;
    this.superSegments = opts.superSegments ?? true;
    this.superSegmentsOut = opts.superSegmentsOut ?? false;
    this.config = new NetConfig(this.mac, this.mtu);
    this.deviceConfig = this.config.space;
    this.control = new NetControl(this.mac, this.config, (offloads) => this.offloadsChanged(offloads));
    const ctrlVq = opts.ctrlVq ?? true;
    const size = opts.queueSize ?? 256;
    this.queueMaxSizes = ctrlVq ? [size, size, CTRL_QUEUE_SIZE] : [size, size];
    const backlogFrames = opts.rxBacklogFrames ?? DEFAULT_RX_BACKLOG_FRAMES;
    const backlogBytes = opts.rxBacklogBytes ?? DEFAULT_RX_BACKLOG_BYTES;
    // The backlog bounds what one rx kick delivers: it must be a number that bounds.
    for (const [name, n] of [['rxBacklogFrames', backlogFrames], ['rxBacklogBytes', backlogBytes]] as const) {
      if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`virtio-net: ${name} ${n} is not a positive integer`);
    }
    this.backlog = new FrameBacklog(backlogFrames, backlogBytes);
    const N = NetFeature;
    let offered = featureMask(N.VIRTIO_NET_F_MAC, N.VIRTIO_NET_F_STATUS, N.VIRTIO_NET_F_MTU, N.VIRTIO_NET_F_CSUM, N.VIRTIO_NET_F_GUEST_CSUM);
    if (opts.tso ?? true) offered |= featureMask(N.VIRTIO_NET_F_HOST_TSO4);
    if (opts.mergeableRxBuffers ?? true) {
      offered |= featureMask(N.VIRTIO_NET_F_MRG_RXBUF);
      // §5.1.3.1: GUEST_TSO4 requires GUEST_CSUM (offered above).
      if (opts.guestTso ?? true) offered |= featureMask(N.VIRTIO_NET_F_GUEST_TSO4);
    }
    if (ctrlVq) offered |= CTRL_FEATURES;
    this.deviceFeatures = offered;

    this.config.setLinkUp(this.link.up);
    this.link.attach({
      onFrame: (frame) => this.receive(frame),
      onLinkChange: (up) => this.linkChanged(up),
    });
  }

  /** Longest Ethernet frame (no FCS) either way: MTU + header + one VLAN tag. */
  get maxFrame(): number {
    return this.mtu + ETH_HLEN + VLAN_HLEN;
  }

  get linkUp(): boolean {
    return this.config.linkUp;
  }

  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.mergeable = ctx.hasFeature(NetFeature.VIRTIO_NET_F_MRG_RXBUF);
    this.hostTso4 = ctx.hasFeature(NetFeature.VIRTIO_NET_F_HOST_TSO4);
    // After `mergeable`: the offloads in force (negotiated ones first) decide what rx delivers.
    this.control.activate(ctx);
  }

  /**
   * The GUEST_* offloads in force changed (negotiation, CTRL_GUEST_OFFLOADS, reset, restore).
   * §5.1.6.4: without GUEST_CSUM, flags are 0 (no DATA_VALID, no NEEDS_CSUM); without
   * GUEST_TSO4, gso_type NONE, so no super-frames. Super-frames also need GUEST_CSUM (they
   * carry a partial checksum) and MRG_RXBUF (page-sized buffers); a driver that set GUEST_TSO4
   * without them gets MTU frames.
   */
  private offloadsChanged(offloads: bigint): void {
    this.guestCsum = (offloads & featureMask(NetFeature.VIRTIO_NET_F_GUEST_CSUM)) !== 0n;
    this.guestTso4 = (offloads & featureMask(NetFeature.VIRTIO_NET_F_GUEST_TSO4)) !== 0n && this.mergeable && this.guestCsum;
    if (this.guestTso4) this.lroScratch ??= new Uint8Array(VIRTIO_NET_HDR_SIZE + LRO_MAX_FRAME);
    this.lroRun = undefined;
    this.offerSuperSegments();
  }

  /**
   * Tells the link what it may send while large receive is in force: super-segments the ring
   * can hold (lroFrameLimit), or none.
   */
  private offerSuperSegments(): void {
    const queueSize = this.ctx?.queue(NET_RECEIVEQ)?.size ?? this.queueMaxSizes[NET_RECEIVEQ]!;
    const limit = lroFrameLimit(queueSize, this.maxFrame);
    const offer = this.superSegments && this.guestTso4 && limit >= SUPER_SEGMENT_MIN_OFFER ? limit : 0;
    if (offer === this.superSegmentOffer) return;
    this.superSegmentOffer = offer;
    this.link.offerSuperSegments?.(offer);
  }

  /** The largest super-segment offered to the link now (0: none). */
  get superSegmentsOffered(): number {
    return this.superSegmentOffer;
  }

  reset(): void {
    this.ctx = undefined;
    this.stash = [];
    this.lroRun = undefined;
    this.stats.rxDropsNotReady += this.backlog.length;
    this.backlog.clear();
    this.syncBacklogStats();
    this.txPasses.cancel();
    this.control.reset();
  }

  /** GUEST_* offload feature bits in force (negotiated, then as CTRL_GUEST_OFFLOADS set them): what rx may deliver. */
  get guestOffloads(): bigint {
    return this.control.guestOffloads;
  }

  /** Ask the guest to announce itself (GUEST_ANNOUNCE negotiated); false when it cannot or one is pending. */
  requestAnnounce(): boolean {
    return this.control.requestAnnounce();
  }

  /** Work that would complete later (a transmit pass still to run), or undefined when there is none. */
  get outstandingWork(): string | undefined {
    return this.txPasses.pending ? 'a transmit pass' : undefined;
  }

  /**
   * Run the scheduled transmit passes now instead of later (a snapshot: the emulator is
   * stopped, so the guest adds nothing). Each pass sends at least one chain: bounded by the
   * queue size.
   */
  settleNow(): void {
    const rounds = 2 * this.queueMaxSizes[NET_TRANSMITQ]! + 2;
    for (let round = 0; round < rounds && this.txPasses.runNow(); round++);
  }

  /** rx chains popped and kept for the next frame (a frame that needs more buffers than are posted). */
  get heldRxChains(): readonly DescriptorChain[] {
    return this.stash;
  }

  /** Bounds of the rx backlog (options rxBacklogFrames, rxBacklogBytes). */
  get rxBacklogLimits(): { readonly frames: number; readonly bytes: number } {
    return { frames: this.backlog.maxFrames, bytes: this.backlog.maxBytes };
  }

  /** Frames waiting for rx buffers, oldest first. */
  get rxBacklog(): Uint8Array[] {
    return this.backlog.waiting();
  }

  /**
   * Snapshot restore, after activate(): the link status the driver saw, the rx chains held
   * and the frames waiting (each checked against the limits receive() applies). A link that
   * is in another state now changes as a link flap would, with its config change.
   */
  restoreReceive(linkUp: boolean, held: DescriptorChain[], frames: readonly Uint8Array[]): void {
    this.config.restoreLinkUp(linkUp);
    this.stash = held;
    this.lroRun = undefined;
    this.backlog.clear();
    for (const frame of frames) {
      if (this.isSuperSegment(frame) && !this.noteSuperSegment(frame)) this.stats.rxDropsOversized++;
      else if (!this.backlog.push(frame)) this.stats.rxDropsBacklogFull++;
    }
    this.syncBacklogStats();
    this.linkChanged(this.link.up);
  }

  notify(queueIndex: number): void {
    if (queueIndex === NET_RECEIVEQ) return this.fillRx();
    if (queueIndex === NET_CTRLQ && this.ctx) {
      const queue = this.ctx.queue(NET_CTRLQ);
      return void (queue && this.control.serve(this.ctx, queue));
    }
    if (queueIndex !== NET_TRANSMITQ) return;
    const ctx = this.ctx;
    const queue = ctx?.queue(NET_TRANSMITQ);
    if (ctx && queue) this.txPasses.kick(ctx, queue, () => this.txPass(ctx, queue));
  }

  // ---- transmit -------------------------------------------------------------------------

  /**
   * Pop and send chains until the ring is empty or the pass has emitted TX_PASS_FRAMES frames
   * or read TX_PASS_BYTES of guest RAM (the chain that crosses the line is finished). True
   * when it stopped at the budget: the caller schedules another pass.
   */
  private txPass(ctx: DeviceContext, queue: Virtqueue): boolean {
    const t0 = performance.now();
    const s = this.stats;
    const hook0 = s.hookMs;
    const frames0 = s.txFrames + s.txDropsLink;
    let count = 0;
    let bytes = 0;
    let spent = false;
    // A malformed ring makes pop() throw; the transport turns that into DEVICE_NEEDS_RESET.
    const reuse = this.link.sendCopies === true && (!this.onCapture || this.onCaptureCopies);
    for (let chain = queue.pop(); chain; chain = spent ? null : queue.pop()) {
      bytes += this.transmit(ctx, chain);
      if (reuse) this.txFrames.rewind();
      queue.pushUsed(chain.headIndex, 0);
      count++;
      spent = bytes >= TX_PASS_BYTES || s.txFrames + s.txDropsLink - frames0 >= TX_PASS_FRAMES;
    }
    if (count === 0) return false;
    s.txBatches++;
    if (count > s.maxTxBatch) s.maxTxBatch = count;
    if (spent) s.txPassesCut++;
    const ms = performance.now() - t0 - (s.hookMs - hook0);
    s.hostMs += ms;
    s.txHostMs += ms;
    ctx.signalUsed(queue);
    // Spent with nothing left behind: no need for another pass.
    return spent && queue.pending() > 0;
  }

  /**
   * One tx chain: header, frame, offloads, out to the link. Never throws for a bad packet.
   * Returns the bytes of guest RAM it read.
   */
  private transmit(ctx: DeviceContext, chain: DescriptorChain): number {
    const s = this.stats;
    s.txPackets++;
    const frameLen = chain.readableLength - VIRTIO_NET_HDR_SIZE;
    if (frameLen < ETH_HLEN) return this.txDrop('txDropsMalformed', `tx chain of ${chain.readableLength} bytes is too short for virtio_net_hdr + Ethernet header`);
    const gsoLimit = this.hostTso4 ? MAX_GSO_FRAME : this.maxFrame;
    if (frameLen > gsoLimit) return this.txDrop('txDropsOversized', `tx frame of ${frameLen} bytes (max ${gsoLimit})`);
    const cursor = new RegionCursor(ctx.memory, chain.readable);
    cursor.readInto(this.txHdr);
    const hdr = parseNetHdr(this.txHdr);
    // A copy: the link and the capture may keep it after the guest reuses the buffer.
    const frame = this.txFrames.take(frameLen);
    cursor.readInto(frame);
    const read = VIRTIO_NET_HDR_SIZE + frameLen;
    const gso = hdr.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;

    if (gso === VIRTIO_NET_HDR_GSO_NONE) {
      const max = maxFrameLength(frame, this.mtu);
      if (frameLen > max) return this.txDrop('txDropsOversized', `tx frame of ${frameLen} bytes (max ${max})`, read);
      if (hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if (!completePartialChecksum(frame, hdr.csumStart, hdr.csumOffset)) {
          return this.txDrop('txDropsBadOffload', `csum_start ${hdr.csumStart} + csum_offset ${hdr.csumOffset} outside a ${frameLen}-byte frame`, read);
        }
        s.txCsumCompleted++;
      }
      this.emit(frame);
      return read;
    }
    if (gso !== VIRTIO_NET_HDR_GSO_TCPV4 || !this.hostTso4) {
      return this.txDrop('txDropsBadOffload', `gso_type ${hdr.gsoType} not negotiated`, read);
    }
    // A far end that takes super-segments gets the whole frame: one message instead of ~44.
    if (this.superSegmentsOut && frameLen > this.mtu + ETH_HLEN && frameLen <= (this.link.superSegmentSendLimit ?? 0)) {
      const made = makeSuperSegment(frame, hdr.gsoSize, this.mtu);
      if (typeof made !== 'string') {
        s.txGsoPackets++;
        s.txGsoSegments += made.segments;
        s.txSuperSegments++;
        s.txSuperSegmentMss += made.segments;
        this.emit(frame);
        return read;
      }
    }
    // Segments are untagged IPv4 frames (segmentTcp4 parses no VLAN tag): MTU + 14.
    const result = segmentTcp4(frame, hdr.gsoSize, this.mtu + ETH_HLEN, this.takeTxBytes);
    if (!result.ok) return this.txDrop(result.tooSmall ? 'txDropsGsoTooSmall' : 'txDropsBadOffload', result.reason, read);
    s.txGsoPackets++;
    s.txGsoSegments += result.frames.length;
    for (const f of result.frames) this.emit(f);
    return read;
  }

  private emit(frame: Uint8Array): void {
    const t0 = performance.now();
    this.capture(frame, 'tx');
    const sent = this.link.send(frame);
    this.stats.hookMs += performance.now() - t0;
    if (sent) {
      this.stats.txFrames++;
      this.stats.txBytes += frame.length;
    } else {
      this.stats.txDropsLink++;
    }
  }

  /** Count a dropped packet; returns `read` (the guest bytes read before dropping it). */
  private txDrop(counter: 'txDropsMalformed' | 'txDropsOversized' | 'txDropsBadOffload' | 'txDropsGsoTooSmall', reason: string, read = 0): number {
    this.stats[counter]++;
    this.lastDropReason = reason;
    return read;
  }

  // ---- receive --------------------------------------------------------------------------

  /**
   * Whether a frame over the MTU frame is a super-segment the device takes (rx-super.ts); if
   * so its run is noted for delivery, else the reason is kept.
   */
  private noteSuperSegment(frame: Uint8Array): boolean {
    const t0 = performance.now();
    const run = checkSuperSegment(frame, this.mtu);
    this.stats.hostMs += performance.now() - t0; // a checksum pass over up to 64 KiB
    if (typeof run === 'string') {
      this.lastDropReason = run;
      return false;
    }
    this.superSegmentRuns.set(frame, run);
    return true;
  }

  /** Longer than the MTU frame: only a super-segment may be that (receive() checked it). */
  private isSuperSegment(frame: Uint8Array): boolean {
    return frame.length > maxFrameLength(frame, this.mtu);
  }

  /** A frame from the link. */
  private receive(frame: Uint8Array): void {
    const s = this.stats;
    if (frame.length < ETH_HLEN) return void s.rxDropsRunt++;
    const oversized = this.isSuperSegment(frame);
    if (oversized && !this.noteSuperSegment(frame)) return void s.rxDropsOversized++;
    if (!this.ctx) return void s.rxDropsNotReady++;
    if (!this.control.filter.accepts(frame)) return void this.control.stats.rxDropsFiltered++;
    if (oversized && !this.guestTso4) return this.cutSuperSegment(frame);
    this.enqueue(frame);
    this.fillSoon();
  }

  /** Into the backlog, or dropped and counted when it is full. */
  private enqueue(frame: Uint8Array): void {
    if (!this.backlog.push(frame)) {
      this.stats.rxDropsBacklogFull++;
      this.lastDropReason = `rx backlog full (${this.backlog.length} frames, ${this.backlog.bytes} bytes)`;
    }
  }

  /**
   * A super-segment that came after the guest turned large receive off (the link had not
   * heard yet): cut into MTU frames (at most 1024, rx-super.ts), which wait like any other.
   * When they would not all fit the backlog none is made: the whole segment is dropped.
   */
  private cutSuperSegment(frame: Uint8Array): void {
    const s = this.stats;
    const run = this.superSegmentRuns.get(frame)!;
    if (this.backlog.length + run.segments > this.backlog.maxFrames || this.backlog.bytes + frame.length + run.segments * run.hdrLen > this.backlog.maxBytes) {
      s.rxDropsBacklogFull++;
      this.lastDropReason = `rx backlog cannot take the ${run.segments} frames of a super-segment`;
      return;
    }
    clearUrgent(frame, run);
    const cut = segmentTcp4(frame, run.gsoSize, this.mtu + ETH_HLEN);
    if (!cut.ok) {
      // checkSuperSegment admitted it, so this is not expected; counted all the same.
      s.rxDropsOversized++;
      this.lastDropReason = cut.reason;
      return;
    }
    s.rxSuperSegmentsCut++;
    for (const f of cut.frames) this.enqueue(f);
    this.fillSoon();
  }

  /** Frames were queued: fill now, or (rxHold) the first now and the rest of the burst later. */
  private fillSoon(): void {
    this.syncBacklogStats();
    const hold = this.rxHold;
    if (!hold) return this.fillRx();
    if (this.rxHeld) return;
    // The first frame goes in now (a ping reply never waits); the rest of the burst waits for
    // the held fill and merges.
    this.rxHeld = true;
    this.fillRx();
    hold(() => {
      this.rxHeld = false;
      this.fillRx();
    });
  }

  /** Move waiting frames into posted rx buffers; at most one interrupt. */
  private fillRx(): void {
    const ctx = this.ctx;
    const queue = ctx?.queue(NET_RECEIVEQ);
    if (!ctx || !queue || this.backlog.length === 0) return;
    const t0 = performance.now();
    const hook0 = this.stats.hookMs;
    const pushedBefore = this.rxPushed;
    try {
      for (let frame = this.backlog.peek(); frame; frame = this.backlog.peek()) {
        if (this.isSuperSegment(frame)) {
          if (this.deliverSuperSegment(ctx, queue, frame) === 'no-buffers') break;
          this.backlog.shift();
          continue;
        }
        const run = this.lroScratch && this.guestTso4 ? this.coalesce(queue) : undefined;
        if (run) {
          const done = this.deliverRun(ctx, queue, run);
          if (done === 'no-buffers') break;
          for (let i = done === 'single' ? 1 : run.segments; i > 0; i--) this.backlog.shift();
          this.lroRun = undefined;
          continue;
        }
        if (this.deliver(ctx, queue, frame) === 'no-buffers') break;
        this.backlog.shift();
      }
    } catch (error) {
      // A ring violation found while popping. From a kick the transport would catch it, but
      // frames also arrive from the link's event handler, where nobody would.
      // A broken queue's chains are never completed: the ones held for a frame go with it
      // (kept, later frames would still be copied into them, and a snapshot would list
      // chains a restore cannot give back).
      if (!queue.live) this.stash = [];
      ctx.fail(error);
    }
    this.syncBacklogStats();
    this.stats.hostMs += performance.now() - t0 - (this.stats.hookMs - hook0);
    if (this.rxPushed !== pushedBefore) ctx.signalUsed(queue);
  }

  /** The next rx chain (stashed first), skipping ones that cannot hold any frame. */
  private takeChain(queue: Virtqueue, at: number): DescriptorChain | undefined {
    if (at < this.stash.length) return this.stash[at];
    for (;;) {
      const chain = queue.pop();
      if (!chain) return undefined;
      if (chain.writableLength >= VIRTIO_NET_HDR_SIZE + ETH_HLEN) {
        this.stash.push(chain);
        return chain;
      }
      // Holds no frame at all: give it back empty so the driver can reuse the memory.
      this.stats.rxBadBuffers++;
      queue.pushUsed(chain.headIndex, 0);
      this.rxPushed++;
    }
  }

  /**
   * The frames at the head of the backlog merged into lroScratch (after room for the header),
   * or undefined when the head frame goes alone. Bounds: LRO_MAX_SEGMENTS frames and
   * lroFrameLimit(queue size, MTU) bytes (≤ 64 KiB) per super-frame.
   */
  private coalesce(queue: Virtqueue): LroRun | undefined {
    const head = this.backlog.peek()!;
    if (this.lroRun?.head === head && this.lroRun.waiting === this.backlog.length) return this.lroRun.run;
    const out = this.lroScratch!.subarray(VIRTIO_NET_HDR_SIZE, VIRTIO_NET_HDR_SIZE + lroFrameLimit(queue.size, this.maxFrame));
    // A super-segment from the link ends a run (it goes alone).
    const run = coalesceTcp4((i) => {
      const f = this.backlog.at(i);
      return f && !this.isSuperSegment(f) ? f : undefined;
    }, LRO_MAX_SEGMENTS, out);
    this.lroRun = run && { head, waiting: this.backlog.length, run };
    return run;
  }

  private deliver(ctx: DeviceContext, queue: Virtqueue, frame: Uint8Array): 'delivered' | 'dropped' | 'no-buffers' {
    const need = VIRTIO_NET_HDR_SIZE + frame.length;
    const chains = this.reserve(queue, need, frame.length);
    if (chains === 'wedged') {
      this.stats.rxDropsBufferTooSmall++;
      this.lastDropReason = `all ${queue.size} rx buffers together cannot hold a ${frame.length}-byte frame`;
      return 'dropped';
    }
    if (typeof chains === 'string') return chains;
    const flags = this.guestCsum && rxChecksumValid(frame) ? VIRTIO_NET_HDR_F_DATA_VALID : 0;
    // The header is rewritten whole; the frame goes from where it is, straight to the guest.
    const hdr = this.hdrScratch;
    encodeNetHdr({ flags, gsoType: VIRTIO_NET_HDR_GSO_NONE, numBuffers: chains }, hdr);
    this.fill(ctx, queue, [hdr, frame], chains);
    const s = this.stats;
    s.rxFrames++;
    s.rxBytes += frame.length;
    if (flags) s.rxDataValid++;
    if (this.onCapture) {
      const t0 = performance.now();
      this.capture(frame, 'rx');
      s.hookMs += performance.now() - t0;
    }
    return 'delivered';
  }

  /**
   * A super-segment from the link at the head of the backlog: one packet like deliverRun's,
   * or (large receive turned off since it came, or a ring too small for it) dropped and counted.
   */
  private deliverSuperSegment(ctx: DeviceContext, queue: Virtqueue, frame: Uint8Array): 'delivered' | 'dropped' | 'no-buffers' {
    const s = this.stats;
    const run = this.superSegmentRuns.get(frame);
    if (!run || !this.guestTso4) {
      s.rxDropsSuperSegments++;
      this.lastDropReason = 'a super-segment waiting when large receive went off';
      return 'dropped';
    }
    // Only its headers change for the guest: they go from a copy, the payload from the frame.
    const done = this.deliverGso(ctx, queue, run, [superSegmentHeadForGuest(frame, run), frame.subarray(run.hdrLen, run.length)]);
    if (done === 'no-buffers') return done;
    if (done !== 'delivered') {
      s.rxDropsSuperSegments++;
      this.lastDropReason = `all ${queue.size} rx buffers together cannot hold a ${frame.length}-byte super-segment`;
      return 'dropped';
    }
    s.rxSuperSegments++;
    s.rxSuperSegmentMss += run.segments;
    s.rxFrames++;
    s.rxBytes += frame.length;
    const t0 = performance.now();
    this.capture(frame, 'rx');
    s.hookMs += performance.now() - t0;
    return 'delivered';
  }

  /** A super-frame from coalesce(): one packet of gso_type TCPV4 with a partial checksum (§5.1.6.4). */
  private deliverRun(ctx: DeviceContext, queue: Virtqueue, run: LroRun): 'delivered' | 'single' | 'no-buffers' {
    const done = this.deliverGso(ctx, queue, run, [this.lroScratch!.subarray(VIRTIO_NET_HDR_SIZE, VIRTIO_NET_HDR_SIZE + run.length)]);
    // The whole ring cannot hold it (tiny buffers; lroFrameLimit leaves room with sane ones):
    // the segments go alone. The caller then takes them one at a time (ones delivered here
    // count as a run of one).
    if (done === 'wedged') return this.deliver(ctx, queue, this.backlog.peek()!) === 'no-buffers' ? 'no-buffers' : 'single';
    if (done === 'dropped') return 'single'; // (only without MRG_RXBUF, which large receive needs)
    if (done === 'no-buffers') return done;
    const s = this.stats;
    s.rxLroPackets++;
    s.rxLroSegments += run.segments;
    s.rxFrames += run.segments;
    const t0 = performance.now();
    for (let i = 0; i < run.segments; i++) {
      const frame = this.backlog.at(i)!;
      s.rxBytes += frame.length;
      this.capture(frame, 'rx');
    }
    s.hookMs += performance.now() - t0;
    return 'delivered';
  }

  /** A super-frame (`frame`: its run.length bytes, in pieces) to the guest as one GSO TCPV4 packet. */
  private deliverGso(ctx: DeviceContext, queue: Virtqueue, run: LroRun, frame: readonly Uint8Array[]): 'delivered' | 'wedged' | 'dropped' | 'no-buffers' {
    const need = VIRTIO_NET_HDR_SIZE + run.length;
    const chains = this.reserve(queue, need, run.length);
    if (typeof chains === 'string') return chains;
    const hdr = this.hdrScratch;
    encodeNetHdr(
      {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gsoType: VIRTIO_NET_HDR_GSO_TCPV4,
        hdrLen: run.hdrLen,
        gsoSize: run.gsoSize,
        csumStart: run.csumStart,
        csumOffset: TCP_CSUM_OFFSET,
        numBuffers: chains,
      },
      hdr,
    );
    this.fill(ctx, queue, [hdr, ...frame], chains);
    return 'delivered';
  }

  /**
   * Takes the chains a packet of `need` bytes will use: one, or with MRG_RXBUF as many as it
   * takes; returns how many (they are the first ones in the stash), or why not: 'wedged' when
   * every descriptor is already ours and still too little room (waiting would wedge rx).
   */
  private reserve(queue: Virtqueue, need: number, frameLength: number): number | 'wedged' | 'dropped' | 'no-buffers' {
    let chains = 0;
    let room = 0;
    while (room < need) {
      const chain = this.takeChain(queue, chains);
      if (!chain) return this.stash.length < queue.size ? 'no-buffers' : 'wedged';
      if (!this.mergeable && chain.writableLength < need) {
        // Without MRG_RXBUF the frame must fit one buffer (§5.1.6.3.1: the driver SHOULD post
        // ≥ 1526 bytes). Drop the frame and give the buffer back with len 0, which Linux's
        // receive_buf frees as a short packet (rx_length_errors) before refilling at its own
        // size. Kept, a small buffer at the head would drop every larger frame for good;
        // passed over for the next one, a frame no buffer holds would burn the whole ring.
        this.stats.rxDropsBufferTooSmall++;
        this.lastDropReason = `rx buffer of ${chain.writableLength} bytes cannot hold a ${frameLength}-byte frame`;
        this.stash.splice(chains, 1);
        queue.pushUsed(chain.headIndex, 0);
        this.rxPushed++;
        return 'dropped';
      }
      room += chain.writableLength;
      chains++;
    }
    return chains;
  }

  /**
   * Copies header + frame, given as pieces written one after another, into the first `chains`
   * stashed chains (each filled before the next) and marks them used.
   */
  private fill(ctx: DeviceContext, queue: Virtqueue, pieces: readonly Uint8Array[], chains: number): void {
    let piece = 0;
    let at = 0;
    for (const chain of this.stash.splice(0, chains)) {
      const cursor = new RegionCursor(ctx.memory, chain.writable);
      let n = 0;
      while (piece < pieces.length) {
        const rest = at === 0 ? pieces[piece] : pieces[piece].subarray(at);
        const written = cursor.write(rest);
        n += written;
        if (written < rest.length) {
          at += written; // this chain is full: the rest goes to the next one
          break;
        }
        piece++;
        at = 0;
      }
      queue.pushUsed(chain.headIndex, n);
      this.rxPushed++;
    }
    this.stats.rxBuffersUsed += chains;
    if (chains > 1) this.stats.rxMergedFrames++;
  }

  // ---- link -----------------------------------------------------------------------------

  private linkChanged(up: boolean): void {
    if (!this.config.setLinkUp(up)) return;
    this.stats.linkChanges++;
    this.ctx?.configChanged();
  }

  private syncBacklogStats(): void {
    const s = this.stats;
    s.backlogFrames = this.backlog.length;
    s.backlogBytes = this.backlog.bytes;
    if (s.backlogFrames > s.backlogHighWaterFrames) s.backlogHighWaterFrames = s.backlogFrames;
    if (s.backlogBytes > s.backlogHighWaterBytes) s.backlogHighWaterBytes = s.backlogBytes;
  }

  private capture(frame: Uint8Array, direction: FrameDirection): void {
    if (!this.onCapture) return;
    try {
      this.onCapture(frame, direction);
    } catch {
      // a failing capture must not cost the guest its packet
    }
  }
}
