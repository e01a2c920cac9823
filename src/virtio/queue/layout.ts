/**
 * Split virtqueue memory layout (§2.7): byte offsets and sizes of the three areas.
 * The device side and the driver mock both read these, so they are written once.
 */

export const DESC_SIZE = 16;
export const USED_ELEM_SIZE = 8;

/** Offsets inside one virtq_desc. */
export const DescField = { ADDR: 0, LEN: 8, FLAGS: 12, NEXT: 14 } as const;

/** Offsets inside virtq_avail / virtq_used headers. */
export const RING_FLAGS = 0;
export const RING_IDX = 2;
export const RING_ENTRIES = 4;

/** §2.7 alignment requirements (Descriptor Table 16, Driver Area 2, Device Area 4). */
export const RingAlign = { DESC: 16, AVAIL: 2, USED: 4 } as const;

export function descTableBytes(size: number): number {
  return DESC_SIZE * size;
}

/** flags + idx + ring[size] (+ used_event when VIRTIO_F_RING_EVENT_IDX). */
export function availRingBytes(size: number, eventIdx: boolean): number {
  return RING_ENTRIES + 2 * size + (eventIdx ? 2 : 0);
}

/** flags + idx + ring[size] (+ avail_event when VIRTIO_F_RING_EVENT_IDX). */
export function usedRingBytes(size: number, eventIdx: boolean): number {
  return RING_ENTRIES + USED_ELEM_SIZE * size + (eventIdx ? 2 : 0);
}

/** Where the driver publishes used_event: after the avail ring entries. */
export function usedEventOffset(size: number): number {
  return RING_ENTRIES + 2 * size;
}

/** Where the device publishes avail_event: after the used ring entries. */
export function availEventOffset(size: number): number {
  return RING_ENTRIES + USED_ELEM_SIZE * size;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * §2.7.10 vring_need_event: should the other side be told, given that it asked to be told
 * when index `eventIdx` is passed, and the index just moved from `oldIdx` to `newIdx`?
 * All arithmetic is on 16-bit ring indices.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
