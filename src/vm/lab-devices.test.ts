import { describe, expect, it } from 'vitest';
import { MemoryBlockBackend } from '../backends/memory-block-backend.ts';
import { memoryLinkPair } from '../backends/memory-frame-link.ts';
import type { PciBus, PciFunction } from '../virtio/bus.ts';
import { DeviceStatus as S } from '../virtio/constants.ts';
import { CommonCfg } from '../virtio/pci/layout.ts';
import { ArrayMemory } from '../virtio/testing/array-memory.ts';
import { deviceStats, plugLabDevices } from './lab-devices.ts';

function recordingBus(): PciBus & { attached: PciFunction[] } {
  const attached: PciFunction[] = [];
  return {
    attached,
    attach: (fn) => {
      attached.push(fn);
      return { memory: new ArrayMemory(1 << 16), irq: { raise() {}, lower() {} } };
    },
  };
}

describe('plugLabDevices', () => {
  it("offers VIRTIO_F_RING_PACKED on every function only with ring 'packed' (?ring=packed, --ring packed)", () => {
    const packedBit = 1n << 34n;
    const options = () => ({ onDeviceError() {}, net: { link: memoryLinkPair()[0], mac: '02:00:00:00:00:01' }, blk: { backend: new MemoryBlockBackend(8192), name: 'd' } });
    const split = plugLabDevices(recordingBus(), options());
    expect(split.all.map((fn) => fn.offeredFeatures & packedBit)).toEqual([0n, 0n, 0n]);
    const packed = plugLabDevices(recordingBus(), { ...options(), ring: 'packed' });
    expect(packed.all.map((fn) => fn.offeredFeatures & packedBit)).toEqual([packedBit, packedBit, packedBit]);
  });

  it('plugs the rng alone when nothing else is asked for', () => {
    const bus = recordingBus();
    const devices = plugLabDevices(bus, { onDeviceError() {} });
    expect(bus.attached.map((f) => f.name)).toEqual(['virtio-rng']);
    expect(devices.rng).toBe(devices.all[0]);
    expect(devices.blk).toBeUndefined();
    expect(devices.net).toBeUndefined();
  });

  it('plugs in registry order, keyed by kind, with the status() stats keys users read', () => {
    const bus = recordingBus();
    const [link] = memoryLinkPair();
    const devices = plugLabDevices(bus, {
      onDeviceError() {},
      net: { link, mac: '02:00:00:00:00:01', mtu: 1400 },
      blk: { backend: new MemoryBlockBackend(8192, { readOnly: true }), name: 'd' },
    });
    expect(bus.attached.map((f) => f.name)).toEqual(['virtio-rng', 'virtio-blk', 'virtio-net']);
    expect(devices.all).toEqual(bus.attached);
    expect([devices.rng?.name, devices.blk?.name, devices.net?.name]).toEqual(['virtio-rng', 'virtio-blk', 'virtio-net']);

    const [rng, blk, net] = devices.all.map((fn) => deviceStats(fn, { reads: 3, writes: 4 }));
    expect(Object.keys(rng!)).toEqual(['name', 'status', 'notifies', 'interrupts', 'isrReads', 'errors', 'resets', 'barReads', 'barWrites', 'extra']);
    expect(rng).toMatchObject({ name: 'virtio-rng', barReads: 3, barWrites: 4, extra: { bytesServed: 0 } });
    // Keys e2e tests, benchmarks and users' scripts read: they may grow, never change.
    expect(Object.keys(blk!.extra)).toEqual(
      expect.arrayContaining(['requests', 'requestsIn', 'requestsOut', 'bytesRead', 'bytesWritten', 'hostMs', 'hostUsPerRequest', 'batches']),
    );
    expect(blk!.extra).toMatchObject({ capacitySectors: 16, readOnly: 1, writeback: 1 });
    expect(Object.keys(net!.extra)).toEqual(
      expect.arrayContaining(['txFrames', 'txBytes', 'rxFrames', 'rxBytes', 'rxDrops', 'txDrops', 'backlogFrames', 'hostMs']),
    );
    expect(net!.extra).toMatchObject({ mtu: 1400, linkUp: 1 });
  });

  it("reports a device's errors under its function's name", () => {
    const errors: string[] = [];
    const devices = plugLabDevices(recordingBus(), { onDeviceError: (device) => errors.push(device) });
    const bar = devices.rng!.bars[0]!;
    bar.write(CommonCfg.DEVICE_STATUS, 1, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK); // without FEATURES_OK
    expect(errors).toEqual(['virtio-rng']);
  });
});
