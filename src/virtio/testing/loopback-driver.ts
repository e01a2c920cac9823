/**
 * The starting point of the queue and inspector tests: a LoopbackDevice with one queue,
 * brought up by a DriverMock in 64 KiB of guest memory.
 */
import { Feature, features } from '../constants.ts';
import { DriverMock } from './driver-mock.ts';
import { LoopbackDevice } from './loopback-device.ts';

/** VERSION_1 and both ring features (what the loopback device offers). */
export const ALL_RING_FEATURES = features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_INDIRECT_DESC, Feature.VIRTIO_F_RING_EVENT_IDX);
/** The same without EVENT_IDX: suppression through the NO_NOTIFY / NO_INTERRUPT flags. */
export const NO_EVENT_IDX = features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_INDIRECT_DESC);

export interface LoopbackQueueOptions {
  features?: bigint;
  /** The device's max queue size, which the driver uses (default 8). */
  size?: number;
  /** Chains stay held until the test completes them (LoopbackDevice autoComplete: false). */
  held?: boolean;
  startIdx?: number;
}

export function loopbackQueue(opts: LoopbackQueueOptions = {}) {
  const device = new LoopbackDevice({ maxQueueSize: opts.size ?? 8, autoComplete: !opts.held });
  const t = DriverMock.create(device, { memorySize: 1 << 16 });
  const [q] = t.init({ features: opts.features ?? ALL_RING_FEATURES, startIdx: opts.startIdx });
  return { device, t, q };
}
