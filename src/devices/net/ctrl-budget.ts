/**
 * Bounds of the control queue (§5.1.6.5): what one request and one kick may cost. A guest over
 * a bound gets VIRTIO_NET_ERR in its ack byte, never more work.
 */
import { DESC_SIZE } from '../../virtio/queue/layout.ts';

/**
 * Size of the control queue. Linux keeps one command in flight and spins on it, so a handful
 * would do; 64 keeps room for drivers that queue a few.
 */
export const CTRL_QUEUE_SIZE = 64;

/**
 * Entries kept per MAC filter list (unicast, multicast). A longer list is valid: that kind of
 * address is then accepted whole (overflow), as §5.1.6.5.1 lets filtering be best effort.
 */
export const MAC_TABLE_ENTRIES = 64;

/**
 * Device-readable bytes of one request (class, command, data). A longer chain is answered
 * VIRTIO_NET_ERR unread. 4 KiB holds two MAC lists of 340 entries each, far past the table.
 */
export const CTRL_MAX_REQUEST_BYTES = 4096;

export interface CtrlKickBudget {
  /** Guest RAM bytes one control-queue kick touches, the ring walk included. */
  bytes: number;
  /** Requests one kick answers: at most a ring's worth (the guest adds none while we run). */
  requests: number;
}

/**
 * One kick pops at most `queueSize` chains (each ≤ `queueSize` descriptors, §2.7.5.3.1), reads
 * at most CTRL_MAX_REQUEST_BYTES of each and writes one ack byte: the whole ring is served in
 * the kick (Linux spins on the answer, so nothing may wait for a later task).
 */
export function ctrlKickBudget(queueSize = CTRL_QUEUE_SIZE): CtrlKickBudget {
  const ringWalk = queueSize * (queueSize * DESC_SIZE + 2 + 8) + 64;
  return { bytes: ringWalk + queueSize * (CTRL_MAX_REQUEST_BYTES + 1), requests: queueSize };
}
