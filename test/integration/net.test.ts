/**
 * virtio-net end to end in Node: the real guest, our device, a WebSocket to our relay on
 * 127.0.0.1 — DHCP lease, ping to the gateway, and TCP through the gateway's NAT both ways
 * (wget of a file this test serves; nc uploading it back), checked by md5.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, startNetLab, statsOf, type NetLab } from './guest.ts';

describe('virtio-net in the real guest, through our relay', () => {
  let lab: NetLab;

  beforeAll(async () => {
    lab = await startNetLab('itest');
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
  });

  it('is bound by virtio_net and configured by DHCP', async () => {
    expect((await lab.vm.session.run('basename $(readlink /sys/class/net/eth0/device/driver)')).output.trim()).toBe('virtio_net');
    expect((await lab.vm.session.run('cat /sys/class/net/eth0/address')).output.trim()).toBe(lab.vm.mac);
    expect((await lab.vm.session.run('ip route')).output).toMatch(/default via 10\.0\.2\.2/);
    expect((await lab.vm.session.run('cat /etc/resolv.conf')).output).toMatch(/nameserver 10\.0\.2\.2/);
  });

  it('pings the gateway', async () => {
    const r = await lab.vm.session.run('ping -c 5 -i 0.2 10.0.2.2');
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/5 packets transmitted, 5 packets received, 0% packet loss/);
  });

  it('a DHCP renewal (udhcpc, SIGUSR1) keeps the one address, the default route and the lease file', async () => {
    const before = (await lab.vm.session.run('cat /run/net/eth0')).output;
    expect(before).toMatch(/^ip=10\.0\.2\.\d+\/24\n/);
    // udhcpc logs the lease before its script runs, and the script replaces the default
    // route (delete, then add) before it writes the lease file last: the file is removed
    // first and waited for, or the checks can land between the route's delete and add.
    const r = await lab.vm.session.run(
      'rm /run/net/eth0; read -r p < /run/net/udhcpc.pid && kill -USR1 "$p"; for i in $(seq 50); do [ "$(grep -c "lease of .* obtained" /run/net/udhcpc.log)" -ge 2 ] && [ -e /run/net/eth0 ] && [ "$(wc -l < /run/net/eth0)" -ge 3 ] && break; sleep 0.1; done; ' +
        'grep -c "lease of" /run/net/udhcpc.log; ip -4 addr show dev eth0 | grep -c inet; ip route | grep -c "^default via 10.0.2.2 dev eth0"; cat /run/net/eth0',
    );
    expect(r.output).toBe(`2\n1\n1\n${before}`);
    expect((await lab.vm.session.run('ping -c 1 -W 5 10.0.2.2')).status).toBe(0);
  });

  it('resolves lab names', async () => {
    const r = await lab.vm.session.run('nslookup gateway 10.0.2.2');
    expect(r.output).toMatch(/Address:? .*10\.0\.2\.2/);
  });

  it('downloads from the host through the NAT with wget (md5 matches)', async () => {
    const r = await lab.vm.session.run(`wget -q -O /tmp/p.bin http://10.0.2.2:${lab.filesPort}/payload.bin && md5sum /tmp/p.bin`, {
      timeoutMs: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.output.split(' ')[0]).toBe(md5(lab.payload));
  }, 70_000);

  it('uploads to the host through the NAT with nc (md5 matches)', async () => {
    const r = await lab.vm.session.run(`nc 10.0.2.2 ${lab.sinkPort} < /tmp/p.bin`, { timeoutMs: 60_000 });
    expect(r.status).toBe(0);
    expect(lab.uploads).toHaveLength(1);
    expect(await lab.uploads[0]).toBe(md5(lab.payload));
    const stats = statsOf(lab.vm, 'virtio-net');
    expect(stats.extra.txBytes).toBeGreaterThan(lab.payload.length);
    expect(stats.extra.rxBytes).toBeGreaterThan(lab.payload.length);
    expect(lab.vm.deviceErrors).toEqual([]);
  }, 70_000);
});
