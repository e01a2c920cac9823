/**
 * Where a virtio-net device's Ethernet frames go: one frame in, one frame out, no header
 * (the websockproxy / v86 `network_relay_url` wire format). Implementations: a WebSocket to
 * the relay (browser and Node), and in-memory links for tests.
 */
export interface FrameLinkEvents {
  /** A frame arrived for the guest (a full Ethernet frame, no FCS). */
  onFrame(frame: Uint8Array): void;
  /** The link went up or down (the device mirrors it in VIRTIO_NET_S_LINK_UP). */
  onLinkChange(up: boolean): void;
}

export interface FrameLink {
  readonly up: boolean;
  /** Sends one frame; false if it was dropped (link down, or the send buffer is full). */
  send(frame: Uint8Array): boolean;
  /**
   * send() has copied the frame when it returns (a browser's WebSocket does, by the HTML
   * standard), so the sender may reuse its bytes. Absent: the link may keep the frame.
   */
  readonly sendCopies?: boolean;
  /** Starts delivering events; called once by the device that owns the link. */
  attach(events: FrameLinkEvents): void;
  close(): void;
  /**
   * The NIC takes TCP/IPv4 super-segments of up to `maxFrameBytes` (0: no longer) as single
   * frames (src/wire/link-hello.ts says what one is). Links that cannot tell the far end
   * leave it out; the NIC then gets MTU frames only.
   */
  offerSuperSegments?(maxFrameBytes: number): void;
  /**
   * Largest frame the far end takes whole now: TCP/IPv4 super-segments up to this size (the
   * NIC sends its guest's TSO frames as such instead of cutting them). Absent or 0: MTU
   * frames only.
   */
  readonly superSegmentSendLimit?: number;
}
