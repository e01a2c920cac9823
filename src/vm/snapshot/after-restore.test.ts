import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { afterRestoreSteps } from './after-restore.ts';
import { ATTACH_DISK_COMMAND, MOUNT_DISK_COMMAND } from './late-disk.ts';

describe('afterRestoreSteps', () => {
  const now = Date.UTC(2026, 11, 4, 18, 0, 0);

  it('sets the clock, stirs the entropy pool, and mounts the disk only when asked', () => {
    const withDisk = afterRestoreSteps({ attachDisk: true, now });
    expect(withDisk.mount).toBe(MOUNT_DISK_COMMAND);
    expect(withDisk.background).toContain(`date -u -s @${now / 1000}`);
    expect(withDisk.background).toContain('of=/dev/urandom');
    expect(withDisk.background).not.toContain('/dev/vda');
    const without = afterRestoreSteps({ attachDisk: false, now });
    expect(without.mount).toBeUndefined();
    expect(without.background).not.toContain(ATTACH_DISK_COMMAND);
    expect(without.background).not.toContain('/dev/vda');
  });

  it("gives eth0 the tab's MAC and a new DHCP client, only with a NIC", () => {
    const cmd = afterRestoreSteps({ attachDisk: false, mac: '02:AB:cd:00:11:22', now }).background;
    expect(cmd).toContain('ip link set dev eth0 address 02:ab:cd:00:11:22');
    // The old client goes (by the pid file it was started with) before the new one starts, with one of its own.
    const kill = cmd.indexOf('read -r p < /run/net/udhcpc.pid && kill "$p"');
    expect(kill).toBeGreaterThanOrEqual(0);
    expect(kill).toBeLessThan(cmd.indexOf('udhcpc -f -i eth0'));
    expect(cmd).toContain('-p /run/net/udhcpc.pid');
    // DHCP first: it takes the longest.
    expect(cmd.indexOf('udhcpc -f')).toBeLessThan(cmd.indexOf('date -u'));
    expect(afterRestoreSteps({ attachDisk: false, now }).background).not.toContain('eth0');
  });

  it('refuses anything but a MAC where one goes into the shell line', () => {
    for (const mac of ['02:00:00:00:00:0g', '02:00:00:00:00', '02:00:00:00:00:00; reboot', '', '0200.0000.0000']) {
      expect(() => afterRestoreSteps({ attachDisk: false, mac })).toThrow(/not a MAC/);
    }
  });

  it("the mount's line ends with its status; the background line returns at once and then runs the rest (a real sh, stub commands)", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vl-after-'));
    try {
      const log = path.join(dir, 'log');
      const stub = (name: string, status: string, delay = '') => {
        writeFileSync(path.join(dir, name), `#!/bin/sh\n${delay}echo ${name} >> ${log}\nexit ${status}\n`);
        chmodSync(path.join(dir, name), 0o755);
      };
      const sh = (cmd: string) => spawnSync('/bin/sh', ['-c', cmd], { env: { PATH: dir } });
      for (const [mountStatus, attachStatus, want] of [['0', '0', 0], ['32', '0', 0], ['32', '5', 5]] as const) {
        writeFileSync(log, '');
        stub('mount', mountStatus);
        stub('virtio-lab-disk', attachStatus);
        const steps = afterRestoreSteps({ attachDisk: true, now });
        expect(sh(steps.mount!).status).toBe(want);
        expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(mountStatus === '0' ? ['mount'] : ['mount', 'virtio-lab-disk']);
      }
      // The background line does not wait for what it starts (here a date that takes 0.3 s).
      writeFileSync(log, '');
      stub('date', '0', '/bin/sleep 0.3\n');
      stub('dd', '0');
      const r = sh(afterRestoreSteps({ attachDisk: true, now }).background);
      expect(r.status).toBe(0);
      expect(readFileSync(log, 'utf8')).toBe('');
      for (let i = 0; i < 100 && !readFileSync(log, 'utf8').includes('dd'); i++) await new Promise((res) => setTimeout(res, 20));
      expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['date', 'dd']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
