import { describe, expect, it } from 'vitest';
import { afterRestoreCommand } from './after-restore.ts';
import { ATTACH_DISK_COMMAND, MOUNT_DISK_COMMAND } from './late-disk.ts';

describe('afterRestoreCommand', () => {
  const now = Date.UTC(2026, 11, 4, 18, 0, 0);

  it('sets the clock, stirs the entropy pool, and mounts the disk only when asked', () => {
    const withDisk = afterRestoreCommand({ attachDisk: true, now });
    expect(withDisk).toContain(`date -u -s @${now / 1000}`);
    expect(withDisk).toContain('of=/dev/urandom');
    expect(withDisk.endsWith(MOUNT_DISK_COMMAND)).toBe(true);
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
});
