import { describe, expect, it } from 'vitest';
import { BlkFeature, DeviceId, Feature, NetFeature, features, featureNames, statusNames } from './constants.ts';

describe('constants', () => {
  it('names generic and device-specific feature bits', () => {
    const blk = features(Feature.VIRTIO_F_VERSION_1, Feature.VIRTIO_F_RING_EVENT_IDX, BlkFeature.VIRTIO_BLK_F_FLUSH);
    expect(featureNames(blk, DeviceId.BLOCK)).toEqual([
      'VIRTIO_BLK_F_FLUSH',
      'VIRTIO_F_RING_EVENT_IDX',
      'VIRTIO_F_VERSION_1',
    ]);
    expect(featureNames(features(NetFeature.VIRTIO_NET_F_MAC, 63), DeviceId.NET)).toEqual([
      'VIRTIO_NET_F_MAC',
      'VIRTIO_NET_F_SPEED_DUPLEX',
    ]);
    // What Linux 6.1's virtio_blk negotiated with our device (docs/design.md): lo 0x30000244, hi 0x1.
    expect(featureNames(0x1_3000_0244n, DeviceId.BLOCK)).toEqual([
      'VIRTIO_BLK_F_SEG_MAX',
      'VIRTIO_BLK_F_BLK_SIZE',
      'VIRTIO_BLK_F_FLUSH',
      'VIRTIO_F_RING_INDIRECT_DESC',
      'VIRTIO_F_RING_EVENT_IDX',
      'VIRTIO_F_VERSION_1',
    ]);
    expect(featureNames(features(3, 34), DeviceId.ENTROPY)).toEqual(['bit 3', 'VIRTIO_F_RING_PACKED']);
  });

  it('names status bits', () => {
    expect(statusNames(0x4f)).toEqual(['ACKNOWLEDGE', 'DRIVER', 'DRIVER_OK', 'FEATURES_OK', 'DEVICE_NEEDS_RESET']);
  });
});
