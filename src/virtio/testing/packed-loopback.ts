/**
 * A loopback device on a DriverMock that negotiated VIRTIO_F_RING_PACKED (§2.8), queue 0
 * enabled: what the packed-ring engine and inspector tests start from.
 */
import { Feature, featureBit, features } from '../constants.ts';
import { PackedQueue } from '../queue/packed-queue.ts';
import { DriverMock } from './driver-mock.ts';
import { LoopbackDevice } from './loopback-device.ts';
import { PackedDriverQueue } from './packed-driver-queue.ts';

export const PACKED = featureBit(Feature.VIRTIO_F_RING_PACKED);
/** Packed with indirect descriptors and event suppression by index. */
export const PACKED_ALL = features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_INDIRECT_DESC, Feature.VIRTIO_F_RING_EVENT_IDX) | PACKED;
export const PACKED_NO_EVENT_IDX = features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_INDIRECT_DESC) | PACKED;

export interface PackedLoopbackOptions {
  /** The device's maximum queue size (default 8). */
  size?: number;
  /** The device holds chains instead of completing them at once. */
  held?: boolean;
  features?: bigint;
  /** The driver's starting ring position. */
  startIdx?: number;
  /** The queue size the driver writes (default: the device's maximum). */
  queueSize?: number;
  memorySize?: number;
}

export function packedLoopback(opts: PackedLoopbackOptions = {}) {
  const device = new LoopbackDevice({ maxQueueSize: opts.size ?? 8, autoComplete: !opts.held });
  const t = DriverMock.create(device, { memorySize: opts.memorySize ?? 1 << 16, pci: { ring: 'packed' } });
  const [q] = t.initRings({ features: opts.features ?? PACKED_ALL, startIdx: opts.startIdx, size: opts.queueSize });
  const engine = t.fn.queue(0);
  if (!(q instanceof PackedDriverQueue) || !(engine instanceof PackedQueue)) throw new Error('not packed');
  return { device, t, q, engine };
}
