/** The real guest on the real v86 in this Node process: the machinery `npm run vm` uses. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BlockBackend } from '../../src/backends/block-backend.ts';
import { FileBlockBackend } from '../../src/backends/file-block-backend.ts';
import { LAB_CMDLINE } from '../../src/vm/machine.ts';
import { defaultGuestDir, startNodeVm, type NodeVm } from '../../src/vm/node/node-machine.ts';
import { ATTACH_DISK_COMMAND } from '../../src/vm/snapshot/late-disk.ts';
import { lateDiskGuestDir, templateDiskFile } from '../../src/vm/snapshot/node-guest.ts';

const MiB = 1024 * 1024;

describe('Node runner: real guest', () => {
  let vm: NodeVm;

  beforeAll(async () => {
    vm = await startNodeVm();
    await vm.session.ready; // resolves at the first shell prompt (boot time: npm run bench:boot)
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
  });

  it("boots our kernel with the lab machine's command line", () => {
    const log = vm.session.log();
    expect(log).toContain('Linux version 6.1');
    // The manifest's line plus the machine's own addition: this is the lab's Machine, not a bare v86.
    expect(log).toMatch(new RegExp(`Kernel command line: .*${LAB_CMDLINE}`));
  });

  it('takes the TCP receive buffers the command line sets (the kernel default is ~790 KB at most)', async () => {
    const r = await vm.session.run('cat /proc/sys/net/ipv4/tcp_rmem');
    expect(r.output.trim().split(/\s+/)).toEqual(['4096', '1048576', '4194304']);
  });

  it('runs commands with output and exit status', async () => {
    const r = await vm.session.run('uname -r');
    expect(r.status).toBe(0);
    expect(r.output.trim()).toMatch(/^6\.1\.\d+/);
    expect((await vm.session.run('false')).status).toBe(1);
    expect(await vm.session.run('echo $((6*7)); exit_code=3; (exit $exit_code)')).toEqual({ output: '42\n', status: 3 });
  });

  it('has the tools the later issues rely on', async () => {
    const fio = await vm.session.run('fio --version');
    expect(fio.status).toBe(0);
    expect(fio.output).toMatch(/^fio-3\.\d+/);
    expect((await vm.session.run('hostname')).output.trim()).toBe('virtio-lab');
  });
});

/**
 * virtio_lab.disk=late: the guest boots to its prompt without reading or mounting /dev/vda
 * (so a snapshot taken there holds nothing of the disk), and `virtio-lab-disk attach` does
 * later what /init does by default. The disk is a fresh one from the image's ext4 template,
 * as the page's disk store makes it.
 */
describe('Node runner: disk attached late (virtio_lab.disk=late)', () => {
  let vm: NodeVm;
  let dir: string;
  const guestIo: { op: 'read' | 'write'; offset: number; length: number }[] = [];
  let bootIo = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vl-late-'));
    const guestDir = lateDiskGuestDir(defaultGuestDir, path.join(dir, 'guest'));
    const image = path.join(dir, 'late.img');
    await templateDiskFile(defaultGuestDir, image, 32);

    const file = FileBlockBackend.open(image);
    const counted: BlockBackend = {
      size: file.size,
      readOnly: file.readOnly,
      coalesceRequests: file.coalesceRequests,
      read: (offset, dst) => (guestIo.push({ op: 'read', offset, length: dst.length }), file.read(offset, dst)),
      write: (offset, src) => (guestIo.push({ op: 'write', offset, length: src.length }), file.write(offset, src)),
      flush: () => file.flush(),
      discard: (offset, length) => file.discard(offset, length),
      writeZeroes: (offset, length) => file.writeZeroes(offset, length),
      close: () => file.close(),
    };
    vm = await startNodeVm({ guestDir, disk: { backend: counted, name: 'late' } });
    await vm.session.ready;
    bootIo = guestIo.length;
  }, 120_000);

  afterAll(async () => {
    await vm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reaches the prompt with /dev/vda present, unmounted, unwritten and uncached', async () => {
    expect(vm.session.log()).toContain("/dev/vda left alone until 'virtio-lab-disk attach'");
    expect((await vm.session.run('cat /sys/block/vda/size')).output.trim()).toBe(String((32 * MiB) / 512));
    expect((await vm.session.run('grep -c /dev/vda /proc/mounts')).output.trim()).toBe('0');
    // The kernel's partition scan reads the first sectors and drops them at its last close;
    // nothing wrote, and no block device data is left in the page cache ("Buffers").
    expect(guestIo.filter((io) => io.op === 'write')).toEqual([]);
    expect((await vm.session.run("awk '$3 == \"vda\" { print $8 }' /proc/diskstats")).output.trim()).toBe('0');
    expect((await vm.session.run("awk '/^Buffers:/ { print $2 }' /proc/meminfo")).output.trim()).toBe('0');
    expect((await vm.session.run('virtio-lab-disk status')).status).toBe(1);
  }, 60_000);

  it('attaches on request, then reads and writes files on it', async () => {
    const attach = await vm.session.run(ATTACH_DISK_COMMAND);
    expect(attach.output).toContain('/dev/vda mounted at /mnt/disk (read-write)');
    expect(attach.status).toBe(0);
    expect(guestIo.length).toBeGreaterThan(bootIo);
    expect((await vm.session.run(ATTACH_DISK_COMMAND)).output).toContain('already mounted');
    const w = await vm.session.run('seq 1 5000 > /mnt/disk/seq.txt && sync && md5sum /mnt/disk/seq.txt');
    expect(w.status).toBe(0);
    expect(guestIo.some((io) => io.op === 'write')).toBe(true);
    const r = await vm.session.run('echo 3 > /proc/sys/vm/drop_caches; md5sum /mnt/disk/seq.txt; ls /mnt/disk');
    expect(r.output.split('\n')[0]).toBe(w.output.trim());
    expect(r.output).toContain('lost+found');
  }, 90_000);
});
