/**
 * The most host work one kick on virtio-net may cause (README, Reliability), and the limits
 * that enforce it. A guest over a limit gets a dropped packet (counted) or its remaining
 * chains served on a later task; never a frozen worker.
 */
import { DESC_SIZE } from '../../virtio/queue/layout.ts';
import { LRO_MAX_FRAME } from './rx-lro.ts';
import { MAX_GSO_FRAME, VIRTIO_NET_HDR_SIZE } from './spec.ts';

import { TSO_MIN_GSO_SIZE } from '../../wire/tso.ts';

export { TSO_MIN_GSO_SIZE };
/** Most segments one TSO packet can make at that floor: the largest IPv4 payload after 40 bytes of headers. */
export const MAX_TSO_SEGMENTS = Math.ceil((65535 - 40) / TSO_MIN_GSO_SIZE);

/**
 * A tx pass stops taking chains once it has emitted this many frames or read this many bytes
 * of guest RAM; the chain that crosses the line is finished, the rest wait for the next pass.
 * Far above what the lab's guests send per kick (~14 frames per kick at 5 MiB/s up).
 */
export const TX_PASS_FRAMES = 1024;
export const TX_PASS_BYTES = 256 * 1024;
/** The most one tx chain makes us read: virtio_net_hdr + a 64 KiB super-frame. */
export const MAX_TX_CHAIN_BYTES = VIRTIO_NET_HDR_SIZE + MAX_GSO_FRAME;

/**
 * Large receive (rx-lro.ts): most segments merged into one super-frame (45 at a 1460-byte
 * MSS fill 64 KiB), and its bytes: ≤ 64 KiB and ≤ a quarter of the ring at one full-sized
 * frame per buffer, so a super-frame never needs more buffers than a driver keeps posted.
 * Merging reads each waiting frame at most twice (a frame that ends a run is looked at again
 * as the head of the next), so one rx kick's host work stays within twice the backlog's bytes.
 */
export const LRO_MAX_SEGMENTS = 64;
export function lroFrameLimit(queueSize: number, maxFrame: number): number {
  return Math.min(LRO_MAX_FRAME, (queueSize >> 2) * maxFrame);
}

/** Rx backlog defaults: what may wait for buffers, and so what one rx kick can deliver. */
export const DEFAULT_RX_BACKLOG_FRAMES = 256;
export const DEFAULT_RX_BACKLOG_BYTES = 1 << 20;

export interface NetKickBudget {
  /** Guest RAM bytes one kick touches, the queue engine's walk of the ring included. */
  bytes: number;
  /** Frames one tx kick hands to the link. */
  frames: number;
  /** Frames one rx kick delivers into the guest. */
  rxFrames: number;
}

/**
 * The budget for a device of `queueSize` with the given backlog bounds. Ring walk: at most
 * `queueSize` chains per pass (the guest cannot add chains while we run), each of at most
 * `queueSize` descriptors (§2.7.5.3.1: a chain is no longer than the queue; the engine caps
 * indirect tables likewise), plus an avail entry and a used element each.
 */
export function netKickBudget(queueSize: number, rxBacklogFrames = DEFAULT_RX_BACKLOG_FRAMES, rxBacklogBytes = DEFAULT_RX_BACKLOG_BYTES): NetKickBudget {
  const ringWalk = queueSize * (queueSize * DESC_SIZE + 2 + 8) + 64;
  const tx = TX_PASS_BYTES - 1 + MAX_TX_CHAIN_BYTES;
  const rx = rxBacklogBytes + rxBacklogFrames * VIRTIO_NET_HDR_SIZE;
  return { bytes: ringWalk + Math.max(tx, rx), frames: TX_PASS_FRAMES - 1 + MAX_TSO_SEGMENTS, rxFrames: rxBacklogFrames };
}
