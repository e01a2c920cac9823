/**
 * virtio-rng end to end: the guest's stock virtio_pci + virtio_rng drivers bind to our
 * PCI function and /dev/hwrng returns bytes our device produced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

describe('virtio-rng in the real guest', () => {
  let vm: NodeVm;
  /** Every byte our device handed to the guest, in order. */
  const served: string[] = [];

  beforeAll(async () => {
    vm = await startNodeVm({
      devices: {
        rng: {
          source: (buf) => {
            for (let at = 0; at < buf.length; at += 65536) crypto.getRandomValues(buf.subarray(at, at + 65536) as Uint8Array<ArrayBuffer>);
            served.push(hex(buf));
          },
        },
      },
    });
    await vm.session.ready;
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it('is bound by the stock drivers on the modern transport', async () => {
    const current = await vm.session.run('cat /sys/class/misc/hw_random/rng_current');
    expect(current.output.trim()).toMatch(/^virtio_rng/);
    const drv = await vm.session.run('basename $(readlink /sys/bus/virtio/devices/virtio0/driver)');
    expect(drv.output.trim()).toBe('virtio_rng');
    const pci = await vm.session.run('basename $(readlink /sys/bus/virtio/devices/virtio0/../driver)');
    expect(pci.output.trim()).toBe('virtio-pci');
    const ids = await vm.session.run('cat /sys/bus/virtio/devices/virtio0/../vendor /sys/bus/virtio/devices/virtio0/../device');
    expect(ids.output.split('\n').slice(0, 2)).toEqual(['0x1af4', '0x1044']);
    // VERSION_1 (bit 32) negotiated: the modern transport, not legacy.
    const features = await vm.session.run('cat /sys/bus/virtio/devices/virtio0/features');
    expect(features.output[32]).toBe('1');
  });

  it('returns bytes our device produced', async () => {
    const before = vm.machine.deviceStats()[0];
    const r = await vm.session.run('head -c 64 /dev/hwrng | od -An -tx1 -v');
    expect(r.status).toBe(0);
    const got = r.output.replace(/\s+/g, '');
    expect(got).toMatch(/^[0-9a-f]{128}$/);
    expect(served.join('')).toContain(got);
    const after = vm.machine.deviceStats()[0];
    expect(after.name).toBe('virtio-rng');
    expect(after.notifies).toBeGreaterThan(before.notifies);
    expect(after.interrupts).toBeGreaterThan(before.interrupts);
    expect(after.extra.bytesServed).toBeGreaterThanOrEqual(before.extra.bytesServed + 64);
    expect(vm.deviceErrors).toEqual([]);
  });

  it('keeps serving under a longer read', async () => {
    const r = await vm.session.run('head -c 262144 /dev/hwrng | wc -c');
    expect(r.status).toBe(0);
    expect(r.output.trim()).toBe('262144');
    expect(vm.deviceErrors).toEqual([]);
  });
});
