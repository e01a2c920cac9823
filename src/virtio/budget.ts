/**
 * The written budget of the queue engine: the most host work one kick can make a virtqueue's
 * ring walk do, whatever the guest wrote, split (§2.7) or packed (§2.8) alike. The walk enforces the per-chain limits
 * (SplitQueue.walkChain: over budget is a VirtqueueError, so the queue breaks and the
 * transport sets DEVICE_NEEDS_RESET, the spec's answer to a driver that broke the ring);
 * the per-kick figures follow from them and are what the bounded-work fuzz properties hold
 * every kick to. A device's own work (copying, frames) is budgeted by its descriptor's
 * `kickBudget`, on top of this.
 *
 * None of it refuses a chain a stock Linux driver builds: Linux sizes every chain from the
 * device's limits and the queue size (virtio-blk: ≤ seg_max + 2 = 256 descriptors on our 256
 * queue; virtio_net: ≤ MAX_SKB_FRAGS + 2 = 19; virtio-rng and virtio-console: 1), and never
 * gets near 4 GiB in one request.
 */
import { DESC_SIZE, RING_ENTRIES, USED_ELEM_SIZE } from './queue/layout.ts';
import type { RingLayout } from './queue/virtqueue.ts';

/**
 * Buffer descriptors in one chain, direct and indirect together: at most the queue size.
 * §2.7.5.3.1: "A driver MUST NOT create a descriptor chain longer than the Queue Size of the
 * device" (and §2.7.5: the table size "is the maximum possible descriptor chain length").
 * A descriptor that only points at an indirect table carries no buffer and is not counted
 * (so a full indirect table of `size` entries is legal); the walk reads it, hence
 * `maxDescriptorReadsPerChain` is one more.
 */
export function maxChainDescriptors(queueSize: number): number {
  return queueSize;
}

/**
 * Entries in one indirect table (its len / 16): at most the queue size. A longer table could
 * only describe a chain longer than §2.7.5.3.1 allows, and refusing it from its length alone
 * means a 64 MiB table (4M entries) costs one descriptor read, not a walk. QEMU stops at
 * 1024 entries (VIRTQUEUE_MAX_SIZE); our queues are ≤ 256, so this is stricter.
 */
export function maxIndirectEntries(queueSize: number): number {
  return queueSize;
}

/**
 * Descriptor reads in one chain: its buffer descriptors plus at most one descriptor that
 * points at an indirect table (§2.7.5.3.1: no INDIRECT inside an indirect table).
 */
export function maxDescriptorReadsPerChain(queueSize: number): number {
  return maxChainDescriptors(queueSize) + 1;
}

/**
 * Bytes of one chain, driver-readable and device-writable together: below 2^32.
 * §2.7.5.2: "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total"; one
 * byte less, so the bytes a device writes always fit the used element's le32 len (§2.7.8)
 * and no length a device derives from a chain can wrap.
 */
export const MAX_CHAIN_BYTES = 2 ** 32 - 1;

/**
 * Chains popped in one kick: at most the queue size. Split: the engine refuses an avail idx
 * more than `size` ahead of what it consumed, and a head that is in flight, and the guest
 * cannot publish more while the device runs. Packed: a list may not run past the slots not
 * held in flight, and after `size` slots the walk meets its own used descriptors (AVAIL =
 * USED, never available, §2.8.1) or slots still carrying the previous wrap counter. Either
 * way a kick pops at most `size` chains.
 */
export function maxChainsPerKick(queueSize: number): number {
  return queueSize;
}

/** Descriptor reads in one kick: size chains of (size + 1) reads, 65,792 on a 256 queue. */
export function maxDescriptorReadsPerKick(queueSize: number): number {
  return maxChainsPerKick(queueSize) * maxDescriptorReadsPerChain(queueSize);
}

/**
 * Ring bytes the engine itself may touch per chain besides its descriptors: the avail idx
 * and entry it reads on pop (plus a pending() check), avail_event it publishes, the used
 * element and used idx it writes, and used_event or avail->flags read for the interrupt
 * decision. Rounded up generously: the point is the order of the bound, not a byte count.
 */
const RING_BYTES_PER_CHAIN = 2 + 2 + 2 + 2 + USED_ELEM_SIZE + 2 + 2 + 16;

/** Per kick, besides the chains: the empty-ring check, notifications on/off, the interrupt. */
const RING_BYTES_PER_KICK = 64 + RING_ENTRIES;

/**
 * Packed only: PackedQueue.pending() reads the 2-byte flags of each available slot ahead of
 * the device (at most `size`). Budgeted as one such walk per chain popped, more than any
 * device asks (net asks once per transmit pass).
 */
function packedPendingBytesPerChain(queueSize: number): number {
  return 2 * queueSize;
}

/**
 * Guest RAM bytes the queue engine touches in one kick: every chain's descriptor reads
 * (16 bytes each) plus its ring bookkeeping. Split: 1.05 MiB on a 256 queue, 4.2 KiB on a 16
 * queue; packed adds the pending() walks (128 KiB more on a 256 queue).
 */
export function maxRingBytesPerKick(queueSize: number, layout: RingLayout = 'split'): number {
  const perChain =
    maxDescriptorReadsPerChain(queueSize) * DESC_SIZE + RING_BYTES_PER_CHAIN + (layout === 'packed' ? packedPendingBytesPerChain(queueSize) : 0);
  return maxChainsPerKick(queueSize) * perChain + RING_BYTES_PER_KICK;
}
