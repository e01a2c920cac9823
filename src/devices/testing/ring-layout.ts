/**
 * The ring layout a device test runs on, for harnesses and properties that run on both: split
 * (§2.7) or packed (§2.8, VIRTIO_F_RING_PACKED).
 */
import { Feature, featureBit } from '../../virtio/constants.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';

export const RING_LAYOUTS: readonly RingLayout[] = ['split', 'packed'];

const PACKED = featureBit(Feature.VIRTIO_F_RING_PACKED);

/**
 * The features a driver on `ring` asks for: `features` with VIRTIO_F_RING_PACKED set for packed
 * and cleared for split; undefined (every offered feature) stays undefined, since the function
 * offers packed only when built with `ring: 'packed'`.
 */
export function ringFeatures(features: bigint, ring: RingLayout): bigint;
export function ringFeatures(features: bigint | undefined, ring: RingLayout): bigint | undefined;
export function ringFeatures(features: bigint | undefined, ring: RingLayout): bigint | undefined {
  if (features === undefined) return undefined;
  return ring === 'packed' ? features | PACKED : features & ~PACKED;
}

/** A property's name on `ring`: unchanged for split, " (packed)" appended for packed. */
export function onRing(name: string, ring: RingLayout): string {
  return ring === 'packed' ? `${name} (packed)` : name;
}
