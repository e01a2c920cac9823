/**
 * VM states with the real guest on the real v86 in this process: the boot state (saved at
 * the first prompt of a boot with the disk attached late) restored into a fresh machine with
 * another disk, and a saved state that carries its mounted disk.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileBlockBackend } from '../../src/backends/file-block-backend.ts';
import { captureLabState, imageIdentity, readLabState, restoreLabState, type LabIdentity } from '../../src/vm/lab-states.ts';
import { loadGuestImageFromDir, defaultGuestDir, startNodeVm, v86Wasm, type NodeVm } from '../../src/vm/node/node-machine.ts';
import { Machine } from '../../src/vm/machine.ts';
import { AGENT_PORT } from '../../src/vm/console-session-agent.ts';
import { FIRMWARE_END } from '../../src/vm/v86-adapter.ts';
import { afterRestoreSteps } from '../../src/vm/snapshot/after-restore.ts';
import { lateDiskGuestDir, templateDiskFile } from '../../src/vm/snapshot/node-guest.ts';
import { restoreSparseDisk } from '../../src/vm/snapshot/sparse-disk.ts';
import { loadZstd } from '../../src/vm/snapshot/zstd-node.ts';
import { SnapshotError } from '../../src/vm/snapshot/snapshot-error.ts';

const MiB = 1024 * 1024;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

describe('VM states: real guest, save and restore', () => {
  let dir: string;
  let guestDir: string;
  let id: LabIdentity;
  let bootState: Uint8Array;
  let vm: NodeVm | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vl-restore-'));
    guestDir = lateDiskGuestDir(defaultGuestDir, path.join(dir, 'guest'));
    const manifest = (await loadGuestImageFromDir(guestDir)).manifest;
    id = { imageSha256: await imageIdentity(manifest, manifest.cmdline), memoryMiB: manifest.memoryMiB, ring: 'split' };
    await templateDiskFile(defaultGuestDir, path.join(dir, 'a.img'), 32);
    const booted = await startNodeVm({ guestDir, disk: { path: path.join(dir, 'a.img'), name: 'a' } });
    try {
      await booted.session.ready;
      const disk = (booted.machine.devices.blk!.device as unknown as { backend: FileBlockBackend }).backend;
      const captured = await captureLabState(booted.machine, id, { kind: 'boot', name: 'boot', screen: new TextEncoder().encode(booted.session.log()), disk: { name: 'a', backend: disk, include: false } }, await loadZstd());
      bootState = await captured.encode();
      // The guest runs on after the capture.
      expect((await booted.session.run('echo still-$((1+1))')).output).toBe('still-2\n');
    } finally {
      await booted.stop();
    }
  }, 180_000);

  afterAll(async () => {
    await vm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the boot state is a small file', () => {
    expect(bootState.length).toBeGreaterThan(1_000_000);
    expect(bootState.length).toBeLessThanOrEqual(12_000_000);
  });

  it('restores with another, larger disk: the capacity change reaches the guest, the disk mounts, blk I/O works', async () => {
    await templateDiskFile(defaultGuestDir, path.join(dir, 'b.img'), 64);
    const state = readLabState(bootState, id.imageSha256, await loadZstd());
    vm = await startNodeVm({ guestDir, disk: { path: path.join(dir, 'b.img'), name: 'b' }, restore: state });
    await vm.session.ready;
    // As the page does: the mount in a subshell of the agent, then the rest.
    const steps = afterRestoreSteps({ attachDisk: true });
    const mounted = await vm.session.run(steps.mount!, { timeoutMs: 60_000, subshell: true });
    expect(mounted.status).toBe(0);
    expect((await vm.session.run(steps.background, { subshell: true })).status).toBe(0);
    expect((await vm.session.run('cat /sys/block/vda/size')).output.trim()).toBe(String((64 * MiB) / 512));
    expect((await vm.session.run('grep /mnt/disk /proc/mounts')).output).toMatch(/^\/dev\/vda \/mnt\/disk ext4 rw/);
    const w = await vm.session.run('head -c 200000 /dev/urandom > /mnt/disk/x && sync && echo 3 > /proc/sys/vm/drop_caches && md5sum < /mnt/disk/x');
    expect(w.status).toBe(0);
    expect((await vm.session.run('head -c 16 /dev/hwrng | wc -c')).output.trim()).toBe('16');
    expect(vm.deviceErrors).toEqual([]);
  }, 120_000);

  it('a saved state carries its mounted disk: restored into a fresh copy, the guest sees its files', async () => {
    const live = vm!;
    expect((await live.session.run('echo saved-file > /mnt/disk/s && sync')).status).toBe(0);
    const disk = (live.machine.devices.blk!.device as unknown as { backend: FileBlockBackend }).backend;
    const captured = await captureLabState(live.machine, id, { kind: 'saved', name: 'mine', screen: new Uint8Array(), disk: { name: 'b', backend: disk, include: true } }, await loadZstd());
    const saved = await captured.encode();
    await live.stop();
    vm = undefined;
    const original = readFileSync(path.join(dir, 'b.img'));

    const state = readLabState(saved, id.imageSha256, await loadZstd());
    expect(state.decoded.meta.disk).toMatchObject({ name: 'b', included: true, size: 64 * MiB });
    // Put the disk back into a new file, as the page does into OPFS.
    const copy = path.join(dir, 'copy.img');
    writeFileSync(copy, new Uint8Array(0));
    truncateSync(copy, state.decoded.meta.disk!.size);
    const sink = FileBlockBackend.open(copy);
    await restoreSparseDisk(state.decoded.disk!, sink, await loadZstd());
    sink.close();
    expect(md5(readFileSync(copy))).toBe(md5(original));

    vm = await startNodeVm({ guestDir, disk: { path: copy, name: 'b' }, restore: state });
    await vm.session.ready;
    const steps = afterRestoreSteps({ attachDisk: false });
    expect(steps.mount).toBeUndefined();
    expect((await vm.session.run(steps.background, { subshell: true })).status).toBe(0);
    expect((await vm.session.run('cat /mnt/disk/s')).output).toBe('saved-file\n');
  }, 120_000);

  it('a machine made for a restore (no kernel in RAM, RAM not zeroed again) gets the RAM a booted machine gets', async () => {
    const [image, wasm] = await Promise.all([loadGuestImageFromDir(guestDir), v86Wasm()]);
    // Never written: neither machine runs.
    const backend = FileBlockBackend.open(path.join(dir, 'a.img'));
    const make = (forRestore: boolean) =>
      Machine.create({ image, wasm, forRestore, onSerial: () => undefined, devices: { blk: { backend, name: 'a' }, console: { ports: [AGENT_PORT] }, onDeviceError: () => undefined } });
    const fresh = await make(true);
    const loaded = await make(false); // kernel and initrd in RAM, as before a boot
    try {
      const nonZeroWordsAbove = (m: Machine) => {
        const words = new Uint32Array(m.ram.read(FIRMWARE_END, m.ram.size - FIRMWARE_END).buffer);
        let n = 0;
        for (let i = 0; i < words.length; i++) if (words[i] !== 0) n++;
        return n;
      };
      // What the shortcut relies on: v86 writes nothing above the firmware without a kernel.
      expect(nonZeroWordsAbove(fresh)).toBe(0);
      expect(nonZeroWordsAbove(loaded)).toBeGreaterThan(100_000);
      expect(() => fresh.start()).toThrow(/restored into/);
      const state = readLabState(bootState, id.imageSha256, await loadZstd());
      await restoreLabState(fresh, state);
      await restoreLabState(loaded, state);
      const size = fresh.ram.size;
      expect(size).toBe(image.manifest.memoryMiB * MiB);
      expect(md5(fresh.ram.read(0, size))).toBe(md5(loaded.ram.read(0, size)));
    } finally {
      await fresh.stop();
      await loaded.stop();
      backend.close();
    }
  }, 60_000);

  it('refuses a state of another image, and a damaged one', async () => {
    const zstd = await loadZstd();
    expect(() => readLabState(bootState, 'ab'.repeat(32), zstd)).toThrow(SnapshotError);
    const damaged = bootState.slice();
    damaged[damaged.length >> 1] ^= 0xff;
    expect(() => readLabState(damaged, id.imageSha256, zstd)).toThrow(/damaged/);
  });
});
