import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { afterRestoreCommand } from './after-restore.ts';
import { ATTACH_DISK_COMMAND, MOUNT_DISK_COMMAND } from './late-disk.ts';

describe('afterRestoreCommand', () => {
  const now = Date.UTC(2026, 11, 4, 18, 0, 0);

  it('sets the clock, stirs the entropy pool, and mounts the disk only when asked', () => {
    const withDisk = afterRestoreCommand({ attachDisk: true, now });
    expect(withDisk).toContain(`date -u -s @${now / 1000}`);
    expect(withDisk).toContain('of=/dev/urandom');
    expect(withDisk.startsWith(MOUNT_DISK_COMMAND)).toBe(true);
    expect(afterRestoreCommand({ attachDisk: false, now })).not.toContain(ATTACH_DISK_COMMAND);
    expect(afterRestoreCommand({ attachDisk: false, now })).not.toContain('/dev/vda');
  });

  it("gives eth0 the tab's MAC and a new DHCP client, only with a NIC", () => {
    const cmd = afterRestoreCommand({ attachDisk: false, mac: '02:AB:cd:00:11:22', now });
    expect(cmd).toContain('ip link set dev eth0 address 02:ab:cd:00:11:22');
    expect(cmd.indexOf('killall -q udhcpc')).toBeLessThan(cmd.indexOf('udhcpc -f -i eth0'));
    expect(afterRestoreCommand({ attachDisk: false, now })).not.toContain('eth0');
  });

  it('refuses anything but a MAC where one goes into the shell line', () => {
    for (const mac of ['02:00:00:00:00:0g', '02:00:00:00:00', '02:00:00:00:00:00; reboot', '', '0200.0000.0000']) {
      expect(() => afterRestoreCommand({ attachDisk: false, mac })).toThrow(/not a MAC/);
    }
  });

  it('mounts first, starts the rest after it, and ends with the mount\'s status (a real sh, stub commands)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vl-after-'));
    try {
      const log = path.join(dir, 'log');
      const stub = (name: string, status: string) => {
        writeFileSync(path.join(dir, name), `#!/bin/sh\necho ${name} >> ${log}\nexit ${status}\n`);
        chmodSync(path.join(dir, name), 0o755);
      };
      for (const name of ['date', 'dd', 'virtio-lab-disk']) stub(name, '0');
      for (const [mountStatus, attachStatus, want] of [['0', '0', 0], ['32', '0', 0], ['32', '5', 5]] as const) {
        writeFileSync(log, '');
        stub('mount', mountStatus);
        stub('virtio-lab-disk', attachStatus);
        const cmd = afterRestoreCommand({ attachDisk: true, now });
        const r = spawnSync('/bin/sh', ['-c', cmd], { env: { PATH: dir } });
        expect(r.status).toBe(want);
        // The background part: the clock and the entropy, after the mount.
        for (let i = 0; i < 100 && !readFileSync(log, 'utf8').includes('dd'); i++) await new Promise((res) => setTimeout(res, 20));
        const lines = readFileSync(log, 'utf8').trim().split('\n');
        expect(lines[0]).toBe('mount');
        expect(lines.slice(-2)).toEqual(['date', 'dd']);
        expect(lines.includes('virtio-lab-disk')).toBe(mountStatus !== '0');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
