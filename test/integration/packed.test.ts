/**
 * Packed virtqueues (§2.8) end to end: every function offers VIRTIO_F_RING_PACKED (the Node
 * runner's `ring: 'packed'`, the page's ?ring=packed), the guest's stock virtio_ring takes it
 * (bit 34 of /sys/bus/virtio/devices/* /features), our engine serves every queue as a
 * PackedQueue, and the blk (dd + md5, fio verify), net (DHCP, ping, wget and nc with md5)
 * and rng checks of the split-ring tests pass unchanged.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';
import { blankImage, BOOT_TIMEOUT, md5, MiB, sh, startNetLab, statsOf, type NetLab } from './guest.ts';

/** VIRTIO_F_RING_PACKED: character 34 of the features file (bit 0 first). */
const RING_PACKED_BIT = 34;

/** Each virtio device's name and its negotiated features as the guest shows them. */
async function guestFeatures(vm: NodeVm): Promise<Array<{ dev: string; features: string }>> {
  const out = await sh(vm, 'for d in /sys/bus/virtio/devices/*; do echo "$(basename $d) $(cat $d/features)"; done');
  return out.split('\n').map((line) => {
    const [dev, features] = line.trim().split(/\s+/);
    return { dev: dev!, features: features! };
  });
}

/** Layouts of every queue the driver enabled, per function. */
function engineLayouts(vm: NodeVm): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const fn of vm.machine.devices.all) {
    const layouts: string[] = [];
    for (let i = 0; i < fn.numQueues; i++) {
      const q = fn.queue(i);
      if (q) layouts.push(q.layout);
    }
    out[fn.name] = layouts;
  }
  return out;
}

describe('packed rings in the real guest: blk, rng, console', () => {
  let dir: string;
  let vm: NodeVm;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-packed-'));
    const image = blankImage(dir, 'packed.img');
    vm = await startNodeVm({ disk: { path: image, name: 'packed-disk' }, devices: { ring: 'packed' } });
    await vm.session.ready;
  }, BOOT_TIMEOUT);

  afterAll(async () => {
    await vm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the stock drivers negotiate VIRTIO_F_RING_PACKED (bit 34) and every queue is a PackedQueue', async () => {
    const features = await guestFeatures(vm);
    expect(features.length).toBeGreaterThanOrEqual(3); // rng, blk, console
    for (const { dev, features: bits } of features) expect(bits[RING_PACKED_BIT], dev).toBe('1');
    const layouts = engineLayouts(vm);
    for (const name of ['virtio-rng', 'virtio-blk', 'virtio-console']) {
      expect(layouts[name]!.length, name).toBeGreaterThan(0);
      expect(new Set(layouts[name]), name).toEqual(new Set(['packed']));
    }
    expect(vm.deviceErrors).toEqual([]);
  });

  it('blk: a file survives sync and dropped caches (md5), read back from the device', async () => {
    await sh(vm, 'dd if=/dev/urandom of=/mnt/disk/blob bs=64k count=16 2>/dev/null && sync');
    const md5 = (await sh(vm, 'md5sum /mnt/disk/blob')).split(/\s+/)[0];
    await sh(vm, 'echo 3 > /proc/sys/vm/drop_caches');
    const readsBefore = statsOf(vm, 'virtio-blk').extra.bytesRead!;
    expect((await sh(vm, 'md5sum /mnt/disk/blob')).split(/\s+/)[0]).toBe(md5);
    expect(statsOf(vm, 'virtio-blk').extra.bytesRead! - readsBefore).toBeGreaterThanOrEqual(MiB);
    expect(vm.deviceErrors).toEqual([]);
  }, 90_000);

  const fio = (args: string) =>
    sh(vm, `fio --name=v --filename=/dev/vda --direct=1 --bs=4k --size=8m --verify=crc32c --verify_fatal=1 ${args} --output-format=terse --terse-version=3`, 180_000);

  it('blk: fio verify, psync at depth 1 and libaio at depth 32', async () => {
    await sh(vm, 'umount /mnt/disk');
    expect((await fio('--rw=write --ioengine=psync --iodepth=1')).split(';')[4]).toBe('0');
    const before = statsOf(vm, 'virtio-blk');
    expect((await fio('--rw=randwrite --ioengine=libaio --iodepth=32 --offset=16m')).split(';')[4]).toBe('0');
    const after = statsOf(vm, 'virtio-blk');
    expect(after.extra.requestsOut! - before.extra.requestsOut!).toBeGreaterThanOrEqual(2048);
    expect(after.extra.ioErrors).toBe(0);
    expect(vm.deviceErrors).toEqual([]);
    expect(vm.diskErrors).toEqual([]);
  }, 400_000);

  it('rng: /dev/hwrng reads bytes through the packed ring', async () => {
    expect(await sh(vm, 'cat /sys/class/misc/hw_random/rng_current')).toMatch(/^virtio_rng/);
    expect(await sh(vm, 'head -c 4096 /dev/hwrng | wc -c')).toBe('4096');
    expect(statsOf(vm, 'virtio-rng').errors).toBe(0);
  });
});

describe('packed rings in the real guest: net through our relay', () => {
  let lab: NetLab;

  beforeAll(async () => {
    lab = await startNetLab('packed', { ring: 'packed' });
  }, BOOT_TIMEOUT);

  afterAll(async () => {
    await lab?.stop();
  });

  it('virtio_net negotiates VIRTIO_F_RING_PACKED and its queues are PackedQueues; DHCP configured eth0', async () => {
    const eth0 = await sh(lab.vm, 'basename $(readlink /sys/class/net/eth0/device)');
    const features = await sh(lab.vm, `cat /sys/bus/virtio/devices/${eth0}/features`);
    expect(features[RING_PACKED_BIT]).toBe('1');
    expect(new Set(engineLayouts(lab.vm)['virtio-net'])).toEqual(new Set(['packed']));
    expect(await sh(lab.vm, 'ip route')).toMatch(/default via 10\.0\.2\.2/);
  });

  it('pings the gateway', async () => {
    expect(await sh(lab.vm, 'ping -c 5 -i 0.2 10.0.2.2')).toMatch(/5 packets transmitted, 5 packets received, 0% packet loss/);
  });

  it('downloads with wget and uploads with nc through the NAT (md5 both ways)', async () => {
    const got = await sh(lab.vm, `wget -q -O /tmp/p.bin http://10.0.2.2:${lab.filesPort}/payload.bin && md5sum /tmp/p.bin`);
    expect(got.split(' ')[0]).toBe(md5(lab.payload));
    await sh(lab.vm, `nc 10.0.2.2 ${lab.sinkPort} < /tmp/p.bin`);
    expect(lab.uploads).toHaveLength(1);
    expect(await lab.uploads[0]).toBe(md5(lab.payload));
    const stats = statsOf(lab.vm, 'virtio-net');
    expect(stats.extra.txBytes).toBeGreaterThan(lab.payload.length);
    expect(stats.extra.rxBytes).toBeGreaterThan(lab.payload.length);
    expect(lab.vm.deviceErrors).toEqual([]);
  }, 130_000);
});
