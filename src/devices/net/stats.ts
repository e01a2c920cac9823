/**
 * Counters of a virtio-net device for the UI, the inspector and benchmarks. Kicks and
 * interrupts are the transport's (VirtioPciFunction.stats); these are the device's own.
 * "Frames" are Ethernet frames on the link; "packets" are the guest's tx chains (one TSO
 * packet becomes many frames).
 */
export class NetStats {
  // ---- transmit (guest → link) ----
  txPackets = 0;
  txFrames = 0;
  txBytes = 0;
  /** Partial checksums completed (NEEDS_CSUM). */
  txCsumCompleted = 0;
  /** TSO super-frames, and the MSS segments they carry (cut here or not). */
  txGsoPackets = 0;
  txGsoSegments = 0;
  /**
   * TSO super-frames sent to the link whole, as super-segments (the link's far end took
   * them; each one frame in txFrames), and the MSS segments they carried.
   */
  txSuperSegments = 0;
  txSuperSegmentMss = 0;
  /** Frames the link refused (down, or its send buffer full). */
  txDropsLink = 0;
  /** Chains too short for virtio_net_hdr + an Ethernet header. */
  txDropsMalformed = 0;
  /** Frames longer than MTU + 14 (+ 4 with a VLAN tag; 64 KiB for TSO). */
  txDropsOversized = 0;
  /** Checksum offsets outside the frame, GSO we did not negotiate or cannot parse. */
  txDropsBadOffload = 0;
  /** TSO packets with a gso_size under 8 (TCP_MIN_GSO_SIZE): not a real stack's, only frames to multiply. */
  txDropsGsoTooSmall = 0;
  /** Kicks (or deferred drains) that sent something, and the most chains in one. */
  txBatches = 0;
  maxTxBatch = 0;
  /** Tx passes that stopped at their budget (frames or bytes) and left the rest to a later task. */
  txPassesCut = 0;

  // ---- receive (link → guest) ----
  rxFrames = 0;
  rxBytes = 0;
  /** Frames handed over with VIRTIO_NET_HDR_F_DATA_VALID (checksum verified by us). */
  rxDataValid = 0;
  /** Super-frames handed over by large receive (GUEST_TSO4), and the frames merged into them. */
  rxLroPackets = 0;
  rxLroSegments = 0;
  /**
   * Super-segments from the link handed over whole (each one frame in rxFrames), the MSS
   * segments they carried, and those cut into MTU frames here (large receive was off).
   */
  rxSuperSegments = 0;
  rxSuperSegmentMss = 0;
  rxSuperSegmentsCut = 0;
  /** Dropped: a super-segment still waiting when large receive went off, or too big for the whole ring. */
  rxDropsSuperSegments = 0;
  /** Packets that needed more than one buffer (MRG_RXBUF), and buffers used in all. */
  rxMergedFrames = 0;
  rxBuffersUsed = 0;
  /** Dropped: backlog full (no rx buffers for too long). */
  rxDropsBacklogFull = 0;
  /**
   * Dropped: longer than MTU + 14 (+ 4 with a VLAN tag) and no super-segment the device takes
   * (rx-super.ts), or shorter than an Ethernet header.
   */
  rxDropsOversized = 0;
  rxDropsRunt = 0;
  /** Dropped: the driver had not set DRIVER_OK (or reset the device). */
  rxDropsNotReady = 0;
  /** Dropped: the posted buffer cannot hold the frame (without MRG_RXBUF it goes back with len 0). */
  rxDropsBufferTooSmall = 0;
  /** Buffers too small for any frame, returned with len 0. */
  rxBadBuffers = 0;
  /** Frames waiting for rx buffers now, and the most that ever waited. */
  backlogFrames = 0;
  backlogBytes = 0;
  backlogHighWaterFrames = 0;
  backlogHighWaterBytes = 0;

  // ---- link ----
  linkChanges = 0;
  /**
   * Host time spent in the device's tx and rx paths (performance.now()), ms, without the
   * hooks it calls (hookMs): the link's send (a WebSocket, or the worker's own gateway) and
   * the capture hook.
   */
  hostMs = 0;
  hookMs = 0;
  /** The part of hostMs spent in tx passes (the rest is rx and the control queue). */
  txHostMs = 0;

  get rxDrops(): number {
    return this.rxDropsBacklogFull + this.rxDropsOversized + this.rxDropsRunt + this.rxDropsNotReady + this.rxDropsBufferTooSmall + this.rxDropsSuperSegments;
  }

  get txDrops(): number {
    return this.txDropsLink + this.txDropsMalformed + this.txDropsOversized + this.txDropsBadOffload + this.txDropsGsoTooSmall;
  }

  /** Flat numbers, for DeviceStats.extra. */
  toRecord(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, value] of Object.entries(this)) if (typeof value === 'number') out[key] = value;
    out.rxDrops = this.rxDrops;
    out.txDrops = this.txDrops;
    return out;
  }
}
