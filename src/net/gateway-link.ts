/**
 * A FrameLink whose far end is a gateway in this same worker: a one-guest switch room with
 * the relay's gateway (ARP, DHCP, DNS, ICMP, TCP/UDP NAT) on it, reaching the outside through
 * an uplink (fetch or wisp). The guest sees the same 10.0.2.0/24 network as behind the relay.
 * Super-segments both ways, as with the relay (src/wire/link-hello.ts): the NIC's offer goes
 * straight to its switch port, and the port may send them from the start.
 */
import type { FrameLink, FrameLinkEvents } from '../backends/frame-link.ts';
import { GatewayCore, type GatewayOptions, type GatewayStats } from '../relay/gateway-core.ts';
import { SwitchRoom, type SwitchPort } from '../relay/switch.ts';
import type { Uplink } from '../relay/uplink.ts';
import { ETH_MAX_FRAME } from '../wire/ethernet.ts';
import { SUPER_SEGMENT_MAX_FRAME } from '../wire/link-hello.ts';

/**
 * Frames toward the guest held until it is attached or between deliveries, and their bytes
 * (super-segments are up to 64 KiB each): beyond either bound they are dropped.
 */
const MAX_PENDING_FRAMES = 1024;
const MAX_PENDING_BYTES = 4 << 20;

export class GatewayLink implements FrameLink {
  private readonly room = new SwitchRoom('worker', { maxFrameBytes: ETH_MAX_FRAME });
  readonly gateway: GatewayCore;
  private readonly port: SwitchPort;
  private events: FrameLinkEvents | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private isUp: boolean;
  private closed = false;
  /** Frames toward the guest dropped because the queue was full. */
  dropped = 0;

  constructor(uplink: Uplink, opts: Partial<GatewayOptions> = {}, initiallyUp = true) {
    this.gateway = new GatewayCore(this.room, uplink, opts);
    // Not MAC-locked: after a restore the page gives the guest a new MAC (after-restore.ts).
    this.port = this.room.attach({ deliver: (f) => this.toGuest(f) }, { label: 'nic' });
    this.port.allowSuperSegmentsIn(SUPER_SEGMENT_MAX_FRAME);
    this.isUp = initiallyUp;
  }

  get up(): boolean {
    return this.isUp;
  }

  /** The uplink's state (wisp: its WebSocket) shows as the guest's link state. */
  setUp(up: boolean): void {
    if (this.closed || up === this.isUp) return;
    this.isUp = up;
    this.events?.onLinkChange(up);
  }

  /** The gateway's TCP sends the NIC super-segments of up to this (0: MTU frames). */
  offerSuperSegments(maxFrameBytes: number): void {
    this.port.setSuperSegments(maxFrameBytes);
  }

  get superSegmentSendLimit(): number {
    return this.port.superSegmentsIn;
  }

  attach(events: FrameLinkEvents): void {
    if (this.events) throw new Error('GatewayLink: attach() called twice');
    this.events = events;
  }

  /** send() gives the gateway a copy, so the NIC may reuse its frame's bytes. */
  readonly sendCopies = true;

  send(frame: Uint8Array): boolean {
    if (this.closed) return false;
    // The gateway keeps views of the frame (NAT payloads): give it its own copy.
    this.port.input(frame.slice());
    return true;
  }

  stats(): GatewayStats {
    return this.gateway.stats();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.gateway.close();
    this.port.detach();
    this.pending = [];
    this.pendingBytes = 0;
    this.events = undefined;
  }

  /**
   * The gateway answers inside send() (ARP, ping): deliver on a later task, never from
   * within the device's own transmit path.
   */
  private toGuest(frame: Uint8Array): boolean {
    if (this.closed) return true;
    if (this.pending.length >= MAX_PENDING_FRAMES || this.pendingBytes + frame.length > MAX_PENDING_BYTES) {
      this.dropped++;
      return false;
    }
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => this.flush(), 0);
    }
    return true;
  }

  private flush(): void {
    this.scheduled = false;
    const frames = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const f of frames) this.events?.onFrame(f);
  }
}
