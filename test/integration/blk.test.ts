/**
 * virtio-blk end to end: the guest's stock virtio_blk driver on our device, over a raw
 * image file on the host (FileBlockBackend). /init formats the blank disk and mounts it;
 * data written in the guest survives drop_caches, the VM's end, and a second boot; fio's
 * verify jobs pass on the raw device, synchronous and at queue depth 32.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';
import { blankImage, BOOT_TIMEOUT, MiB, sh } from './guest.ts';

const blkStats = (vm: NodeVm) => vm.machine.deviceStats().find((d) => d.name === 'virtio-blk')!;

describe('virtio-blk in the real guest: filesystem', () => {
  let dir: string;
  let image: string;
  let vm: NodeVm | undefined;
  let md5 = '';

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-blk-'));
    image = blankImage(dir, 'lab.img');
    vm = await startNodeVm({ disk: { path: image, name: 'lab-disk' } });
    await vm.session.ready;
  }, BOOT_TIMEOUT);

  afterAll(async () => {
    await vm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is bound by virtio_blk, named by GET_ID, formatted and mounted by /init', async () => {
    const v = vm!;
    expect(await sh(v, 'readlink /sys/block/vda/device/driver')).toMatch(/\/virtio_blk$/);
    expect(await sh(v, 'cat /sys/block/vda/serial')).toBe('lab-disk');
    expect(await sh(v, 'cat /sys/block/vda/size /sys/block/vda/ro')).toBe('131072\n0');
    expect(await sh(v, 'grep " /mnt/disk " /proc/mounts')).toMatch(/^\/dev\/vda \/mnt\/disk ext4 rw/);
    expect(await sh(v, 'cat /sys/block/vda/queue/write_cache')).toBe('write back');
    // The rng keeps virtio0; the disk comes after it.
    expect(await sh(v, 'basename $(readlink /sys/bus/virtio/devices/virtio0/driver)')).toBe('virtio_rng');
    expect(v.deviceErrors).toEqual([]);
  });

  it('keeps a file’s bytes across sync and dropped caches; fstrim discards', async () => {
    const v = vm!;
    const before = blkStats(v);
    await sh(v, 'dd if=/dev/urandom of=/mnt/disk/blob bs=64k count=16 2>/dev/null && sync');
    md5 = (await sh(v, 'md5sum /mnt/disk/blob')).split(/\s+/)[0];
    expect(md5).toMatch(/^[0-9a-f]{32}$/);
    await sh(v, 'echo 3 > /proc/sys/vm/drop_caches');
    const readsBefore = blkStats(v).extra.bytesRead;
    expect((await sh(v, 'md5sum /mnt/disk/blob')).split(/\s+/)[0]).toBe(md5);
    const after = blkStats(v);
    expect(after.extra.bytesRead - readsBefore).toBeGreaterThanOrEqual(MiB); // really re-read from the device
    expect(after.extra.bytesWritten - before.extra.bytesWritten).toBeGreaterThanOrEqual(MiB);
    expect(after.extra.requestsFlush).toBeGreaterThan(before.extra.requestsFlush); // sync → journal commit → FLUSH
    await sh(v, 'fstrim /mnt/disk');
    expect(blkStats(v).extra.requestsDiscard).toBeGreaterThan(0);
    expect(after.extra.ioErrors).toBe(0);
    expect(v.diskErrors).toEqual([]);
  });

  it('leaves an ext4 image on the host that a second, read-only boot reads back', async () => {
    await vm!.stop();
    vm = undefined;
    const fd = fs.openSync(image, 'r');
    const magic = Buffer.alloc(2);
    fs.readSync(fd, magic, 0, 2, 1080);
    fs.closeSync(fd);
    expect(magic.readUInt16LE(0)).toBe(0xef53);

    vm = await startNodeVm({ disk: { path: image, readOnly: true } });
    await vm.session.ready;
    expect(await sh(vm, 'cat /sys/block/vda/ro')).toBe('1');
    expect(await sh(vm, 'grep " /mnt/disk " /proc/mounts')).toMatch(/ext4 ro/);
    expect((await sh(vm, 'md5sum /mnt/disk/blob')).split(/\s+/)[0]).toBe(md5);
    const r = await vm.session.run('dd if=/dev/zero of=/dev/vda bs=4k count=1 oflag=direct 2>&1');
    expect(r.status).not.toBe(0);
    expect(blkStats(vm).extra.bytesWritten).toBe(0);
  }, BOOT_TIMEOUT);
});

describe('virtio-blk in the real guest: fio verify on the raw device', () => {
  let dir: string;
  let vm: NodeVm;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-blk-fio-'));
    vm = await startNodeVm({ disk: { path: blankImage(dir, 'fio.img') } });
    await vm.session.ready;
    // /init formatted and mounted it; fio gets the whole raw device.
    await sh(vm, 'umount /mnt/disk');
  }, BOOT_TIMEOUT);

  afterAll(async () => {
    await vm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const fio = (args: string) =>
    sh(vm, `fio --name=v --filename=/dev/vda --direct=1 --bs=4k --size=8m --verify=crc32c --verify_fatal=1 ${args} --output-format=terse --terse-version=3`, 180_000);

  it('sequential write + verify, psync, iodepth 1', async () => {
    const out = await fio('--rw=write --ioengine=psync --iodepth=1');
    expect(out.split(';')[4]).toBe('0'); // terse field 5: error
  }, 200_000);

  it('random write + verify, libaio, iodepth 32', async () => {
    const before = blkStats(vm);
    const out = await fio('--rw=randwrite --ioengine=libaio --iodepth=32 --offset=16m');
    expect(out.split(';')[4]).toBe('0');
    const after = blkStats(vm);
    expect(after.extra.requestsOut - before.extra.requestsOut).toBeGreaterThanOrEqual(2048);
    expect(after.extra.ioErrors).toBe(0);
    expect(vm.deviceErrors).toEqual([]);
    expect(vm.diskErrors).toEqual([]);
  }, 200_000);

  it('sequential write + verify, libaio, iodepth 32, 64 KiB blocks', async () => {
    const out = await fio('--rw=write --ioengine=libaio --iodepth=32 --bs=64k --offset=32m');
    expect(out.split(';')[4]).toBe('0');
  }, 200_000);

  it('random write + verify, psync, iodepth 1', async () => {
    const out = await fio('--rw=randwrite --ioengine=psync --iodepth=1 --size=2m --offset=48m');
    expect(out.split(';')[4]).toBe('0');
    expect(vm.deviceErrors).toEqual([]);
  }, 200_000);
});
