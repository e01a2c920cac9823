/** The virtio core's public surface, for the v86 adapter and the devices. */
export * from './bus.ts';
export * from './constants.ts';
export type { DeviceContext, VirtioDevice } from './device.ts';
export { ConfigSpace } from './config-space.ts';
export { RegionCursor, gatherReadable, scatterWritable } from './queue/descriptor-chain.ts';
export type { DescriptorChain, Region } from './queue/descriptor-chain.ts';
export { VirtqueueError } from './queue/errors.ts';
export { SplitQueue } from './queue/split-queue.ts';
export type { SplitQueueConfig } from './queue/split-queue.ts';
export { PackedQueue } from './queue/packed-queue.ts';
export type { PackedQueueConfig } from './queue/packed-queue.ts';
export type { PackedQueueState, RingLayout, SplitQueueState, Virtqueue, VirtqueueState } from './queue/virtqueue.ts';
export { VirtioPciFunction } from './pci/virtio-pci-function.ts';
export type { ErrorListener, VirtioPciOptions } from './pci/virtio-pci-function.ts';
export type { BarLayout } from './pci/layout.ts';
