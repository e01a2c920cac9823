/**
 * The control virtqueue of virtio-net (§5.1.6.5, VIRTIO_NET_F_CTRL_VQ): receive filter modes
 * and MAC table (CTRL_RX, CTRL_RX_EXTRA), the NIC's address (CTRL_MAC_ADDR), the announce
 * handshake (GUEST_ANNOUNCE) and the guest offloads in force (CTRL_GUEST_OFFLOADS).
 *
 * A kick is served at once, the whole ring (Linux spins until the answer is in the used ring,
 * so nothing may wait for a later task); ctrl-budget.ts bounds what that costs. Each request
 * gets its ack byte: VIRTIO_NET_OK, or VIRTIO_NET_ERR for a malformed, over-long, unsupported
 * or unnegotiated one (counted, the reason kept). Nothing a request holds can throw.
 */
import { NetFeature as N, features as featureMask, hasFeature } from '../../virtio/constants.ts';
import type { DeviceContext } from '../../virtio/device.ts';
import { RegionCursor, type DescriptorChain } from '../../virtio/queue/descriptor-chain.ts';
import type { Virtqueue } from '../../virtio/queue/virtqueue.ts';
import type { NetConfig } from './config.ts';
import { CTRL_MAX_REQUEST_BYTES } from './ctrl-budget.ts';
import { describeCtrlCommand, parseCtrlRequest, type CtrlCommand } from './ctrl-command.ts';
import { RxFilter } from './ctrl-filter.ts';
import { NetCtrlRx, VIRTIO_NET_ERR, VIRTIO_NET_OK } from './spec.ts';

/** Features that come with the control queue (each needs CTRL_VQ, §5.1.3.1). */
export const CTRL_FEATURE_BITS = [
  N.VIRTIO_NET_F_CTRL_VQ,
  N.VIRTIO_NET_F_CTRL_RX,
  N.VIRTIO_NET_F_CTRL_RX_EXTRA,
  N.VIRTIO_NET_F_CTRL_MAC_ADDR,
  N.VIRTIO_NET_F_GUEST_ANNOUNCE,
  N.VIRTIO_NET_F_CTRL_GUEST_OFFLOADS,
] as const;
export const CTRL_FEATURES = featureMask(...CTRL_FEATURE_BITS);

/**
 * Feature bits a GUEST_OFFLOADS_SET may name (§5.1.6.5.6.1: the GUEST_* receive offloads;
 * USO4/USO6 are bits 54/55).
 */
export const GUEST_OFFLOAD_BITS =
  featureMask(N.VIRTIO_NET_F_GUEST_CSUM, N.VIRTIO_NET_F_GUEST_TSO4, N.VIRTIO_NET_F_GUEST_TSO6, N.VIRTIO_NET_F_GUEST_ECN, N.VIRTIO_NET_F_GUEST_UFO) |
  featureMask(54, 55);

export class CtrlStats {
  ctrlRequests = 0;
  ctrlErrors = 0;
  /** Frames from the link the receive filter kept from the guest (promiscuous mode off). */
  rxDropsFiltered = 0;
  macChanges = 0;
  announcesRequested = 0;
  announcesAcked = 0;

  toRecord(): Record<string, number> {
    const { ctrlRequests, ctrlErrors, rxDropsFiltered, macChanges, announcesRequested, announcesAcked } = this;
    return { ctrlRequests, ctrlErrors, rxDropsFiltered, macChanges, announcesRequested, announcesAcked };
  }
}

export class NetControl {
  readonly filter: RxFilter;
  readonly stats = new CtrlStats();
  /** Why the last request got VIRTIO_NET_ERR (for logs and tests). */
  lastError: string | undefined;
  /** The last request answered, described (for logs and tests). */
  lastRequest: string | undefined;
  private negotiated = 0n;
  private offloads = 0n;
  /** The address the NIC was made with: a reset goes back to it. */
  private readonly original: Uint8Array;

  /**
   * @param mac the NIC's current address, changed in place by MAC_ADDR_SET;
   * @param offloadsChanged told the guest offloads in force (the rx path reads them).
   */
  constructor(
    private readonly mac: Uint8Array,
    private readonly config: NetConfig,
    private readonly offloadsChanged: (offloads: bigint) => void,
  ) {
    this.original = mac.slice();
    this.filter = new RxFilter(mac);
  }

  /** GUEST_* offloads in force: the negotiated ones until the driver sets others. */
  get guestOffloads(): bigint {
    return this.offloads;
  }

  activate(ctx: DeviceContext): void {
    // Each control feature needs CTRL_VQ (§5.1.3.1); a driver that took one without it gets
    // none of them (an announce it could never ack would stay pending for good).
    this.negotiated = hasFeature(ctx.features, N.VIRTIO_NET_F_CTRL_VQ) ? ctx.features : ctx.features & ~CTRL_FEATURES;
    this.setOffloads(ctx.features & GUEST_OFFLOAD_BITS);
  }

  /** Device reset: power-on filter, the original MAC, no announce pending. */
  reset(): void {
    this.negotiated = 0n;
    this.filter.reset();
    this.setMac(this.original);
    this.config.clearAnnounce();
    this.setOffloads(0n);
  }

  /** Snapshot restore (after activate): the offloads the driver had set, within those negotiated. */
  restoreOffloads(offloads: bigint): void {
    this.setOffloads(offloads & this.negotiated & GUEST_OFFLOAD_BITS);
  }

  /**
   * Ask the guest to announce itself (gratuitous ARP and the like: a VM state restore, a move).
   * Only with GUEST_ANNOUNCE negotiated; false otherwise or when one is pending.
   */
  requestAnnounce(): boolean {
    if (!this.has(N.VIRTIO_NET_F_GUEST_ANNOUNCE) || !this.config.requestAnnounce()) return false;
    this.stats.announcesRequested++;
    return true;
  }

  /** A kick on the control queue: answer every request in the ring, one interrupt decision. */
  serve(ctx: DeviceContext, queue: Virtqueue): void {
    if (!this.has(N.VIRTIO_NET_F_CTRL_VQ)) return;
    let answered = 0;
    // A malformed ring makes pop() throw; the transport turns that into DEVICE_NEEDS_RESET.
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      queue.pushUsed(chain.headIndex, this.answer(ctx, chain));
      answered++;
    }
    if (answered > 0) ctx.signalUsed(queue);
  }

  /** One request: execute it and write its ack. Returns the bytes written (0 or 1). */
  private answer(ctx: DeviceContext, chain: DescriptorChain): number {
    this.stats.ctrlRequests++;
    if (chain.writableLength < 1) {
      // Nowhere to say OK or ERR: not a request (§5.1.6.5), nothing is done.
      this.fail('request without a device-writable ack byte');
      return 0;
    }
    const ack = this.execute(ctx, chain) ? VIRTIO_NET_OK : VIRTIO_NET_ERR;
    return new RegionCursor(ctx.memory, chain.writable).write(Uint8Array.of(ack));
  }

  private execute(ctx: DeviceContext, chain: DescriptorChain): boolean {
    // Checked before reading: an over-long chain costs no guest-memory reads.
    if (chain.readableLength > CTRL_MAX_REQUEST_BYTES) return this.fail(`request of ${chain.readableLength} bytes, at most ${CTRL_MAX_REQUEST_BYTES}`);
    const parsed = parseCtrlRequest(new RegionCursor(ctx.memory, chain.readable).read(chain.readableLength));
    if (!parsed.ok) return this.fail(parsed.reason);
    this.lastRequest = describeCtrlCommand(parsed.command);
    const refused = this.refusal(parsed.command);
    if (refused) return this.fail(`${this.lastRequest}: ${refused}`);
    this.apply(parsed.command);
    return true;
  }

  /** Why a well-formed command may not run now (its feature not negotiated, …), or undefined. */
  private refusal(c: CtrlCommand): string | undefined {
    const need = (bit: number, name: string) => (this.has(bit) ? undefined : `${name} not negotiated`);
    switch (c.kind) {
      case 'rx':
        return c.command <= NetCtrlRx.ALLMULTI ? need(N.VIRTIO_NET_F_CTRL_RX, 'CTRL_RX') : need(N.VIRTIO_NET_F_CTRL_RX_EXTRA, 'CTRL_RX_EXTRA');
      case 'mac-table':
        return need(N.VIRTIO_NET_F_CTRL_RX, 'CTRL_RX');
      case 'mac-addr':
        return need(N.VIRTIO_NET_F_CTRL_MAC_ADDR, 'CTRL_MAC_ADDR');
      case 'announce-ack':
        return need(N.VIRTIO_NET_F_GUEST_ANNOUNCE, 'GUEST_ANNOUNCE') ?? (this.config.announcePending ? undefined : 'no announce pending');
      case 'guest-offloads': {
        const missing = need(N.VIRTIO_NET_F_CTRL_GUEST_OFFLOADS, 'CTRL_GUEST_OFFLOADS');
        if (missing) return missing;
        // §5.1.6.5.6.1: only offloads whose feature was negotiated.
        const extra = c.offloads & ~(this.negotiated & GUEST_OFFLOAD_BITS);
        return extra ? `offloads 0x${extra.toString(16)} not negotiated` : undefined;
      }
    }
  }

  private apply(c: CtrlCommand): void {
    switch (c.kind) {
      case 'rx':
        return this.filter.setMode(c.command, c.on);
      case 'mac-table':
        return this.filter.setTable(c.unicast, c.multicast);
      case 'mac-addr':
        this.setMac(c.mac);
        this.stats.macChanges++;
        return;
      case 'announce-ack':
        this.config.clearAnnounce();
        this.stats.announcesAcked++;
        return;
      case 'guest-offloads':
        return this.setOffloads(c.offloads);
    }
  }

  /** §5.1.6.5.2: the config field changes before the command completes. */
  private setMac(mac: Uint8Array): void {
    this.mac.set(mac);
    this.config.setMac(mac);
    this.filter.setMac(mac);
  }

  private setOffloads(offloads: bigint): void {
    this.offloads = offloads;
    this.offloadsChanged(offloads);
  }

  private has(bit: number): boolean {
    return hasFeature(this.negotiated, bit);
  }

  private fail(reason: string): false {
    this.stats.ctrlErrors++;
    this.lastError = reason;
    return false;
  }
}
