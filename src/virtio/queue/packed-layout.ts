/**
 * Packed virtqueue memory layout (§2.8): the descriptor ring and the two event suppression
 * structures. The device side and the driver mock both read these, so they are written once.
 */
import { PACKED_EVENT_WRAP_SHIFT } from '../constants.ts';

/** §2.8.13 struct pvirtq_desc: le64 addr, le32 len, le16 id, le16 flags (16 bytes). */
export const PACKED_DESC_SIZE = 16;
export const PackedDescField = { ADDR: 0, LEN: 8, ID: 12, FLAGS: 14 } as const;

/** §2.8.14 struct pvirtq_event_suppress: le16 desc (off_wrap), le16 flags. */
export const EVENT_SUPPRESS_SIZE = 4;
export const EventSuppressField = { OFF_WRAP: 0, FLAGS: 2 } as const;

/** §2.8.10.1 alignment: Descriptor Ring 16, Device and Driver Event Suppression 4. */
export const PackedRingAlign = { DESC: 16, DRIVER: 4, DEVICE: 4 } as const;

export function packedRingBytes(size: number): number {
  return PACKED_DESC_SIZE * size;
}

/** off_wrap for ring position `offset` seen with wrap counter `wrap`. */
export function offWrap(offset: number, wrap: boolean): number {
  return (offset & 0x7fff) | (wrap ? 1 << PACKED_EVENT_WRAP_SHIFT : 0);
}

/** The offset and wrap counter an off_wrap value names. */
export function splitOffWrap(value: number): { offset: number; wrap: boolean } {
  return { offset: value & 0x7fff, wrap: (value >> PACKED_EVENT_WRAP_SHIFT) === 1 };
}
