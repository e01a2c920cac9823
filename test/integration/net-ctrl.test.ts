/**
 * virtio-net's control queue with the real guest (Linux 6.1's virtio_net), through our relay:
 * the driver negotiates CTRL_VQ and sets its receive filter on ifup; `ip link set … promisc`
 * reaches the device; `ip link set dev eth0 address …` changes the NIC's MAC (CTRL_MAC_ADDR),
 * the relay's switch moves the guest's port to it, and after a DHCP renewal for the new
 * address, ping goes on; an announce request is answered as Linux does (GUEST_ANNOUNCE).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetFeature } from '../../src/virtio/constants.ts';
import type { VirtioNet } from '../../src/devices/net/net.ts';
import { formatMac } from '../../src/devices/net/config.ts';
import { startNetLab, statsOf, type NetLab } from './guest.ts';

const NEW_MAC = '52:54:00:12:34:56';

describe('virtio-net control queue in the real guest', () => {
  let lab: NetLab;
  const nic = () => lab.vm.machine.devices.net!.device as VirtioNet;
  const ctrl = () => statsOf(lab.vm, 'virtio-net').extra;
  const run = async (cmd: string, timeoutMs = 30_000) => (await lab.vm.session.run(cmd, { timeoutMs })).output.trim();

  beforeAll(async () => {
    lab = await startNetLab('ctrl');
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
  });

  it('the driver negotiates CTRL_VQ and its companions, and turns promiscuous mode off on ifup', async () => {
    // /sys/…/features: one character per feature bit, '1' when negotiated.
    const bits = await run('cat /sys/class/net/eth0/device/features');
    for (const bit of [NetFeature.VIRTIO_NET_F_CTRL_VQ, NetFeature.VIRTIO_NET_F_CTRL_RX, NetFeature.VIRTIO_NET_F_CTRL_MAC_ADDR, NetFeature.VIRTIO_NET_F_GUEST_ANNOUNCE]) {
      expect(bits[bit], `feature bit ${bit}`).toBe('1');
    }
    expect(ctrl().ctrlRequests).toBeGreaterThanOrEqual(3);
    expect(ctrl().ctrlErrors).toBe(0);
    expect(nic().control.filter.promisc).toBe(false);
    // Linux's IPv4 all-hosts membership is in the multicast table.
    expect(nic().control.filter.state.multicast.macs.map(formatMac)).toContain('01:00:5e:00:00:01');
  }, 60_000);

  it('ip link set promisc on/off reaches the device', async () => {
    expect(await run('ip link set dev eth0 promisc on && echo done')).toBe('done');
    expect(nic().control.filter.promisc).toBe(true);
    expect(ctrl().rxPromisc).toBe(1);
    await run('ip link set dev eth0 promisc off');
    expect(nic().control.filter.promisc).toBe(false);
    // (busybox's ip has no allmulticast: ALLMULTI is the unit tests'.)
    expect(ctrl().ctrlErrors).toBe(0);
  }, 60_000);

  it('an announce request (as after a restore): the guest announces itself and acks', async () => {
    const arpsBefore = nic().stats.txFrames;
    expect(nic().requestAnnounce()).toBe(true);
    // The driver answers from its config work: wait for it (a loaded machine runs the guest slowly).
    for (let i = 0; i < 50 && ctrl().announcesAcked === 0; i++) await run('sleep 0.2');
    // Linux: netdev_notify_peers (a gratuitous ARP, at least one frame out), then ANNOUNCE_ACK.
    expect(ctrl().announcesAcked).toBe(1);
    expect(nic().config.announcePending).toBe(false);
    expect(nic().stats.txFrames).toBeGreaterThan(arpsBefore);
  }, 90_000);

  it('ip link set dev eth0 address … changes the NIC and the relay learns it; ping goes on', async () => {
    const before = await run('ping -c 2 -i 0.2 10.0.2.2');
    expect(before).toMatch(/2 packets received/);
    const oldMac = lab.vm.mac!;
    await run(`ip link set dev eth0 address ${NEW_MAC}`);
    expect(await run('cat /sys/class/net/eth0/address')).toBe(NEW_MAC);
    expect(formatMac(nic().mac)).toBe(NEW_MAC);
    expect(formatMac(nic().config.space.bytes)).toBe(NEW_MAC);
    expect(ctrl().macChanges).toBe(1);
    // The old lease is the old MAC's: the guest asks again for the new one (as the lab does after a restore).
    const renew = await run('killall -q udhcpc; udhcpc -n -q -f -i eth0 -s /usr/share/udhcpc/default.script >/dev/null 2>&1; ip -4 addr show eth0', 60_000);
    expect(renew).toMatch(/inet 10\.0\.2\.\d+\/24/);
    const after = await run('ping -c 3 -i 0.2 10.0.2.2');
    expect(after).toMatch(/3 packets transmitted, 3 packets received, 0% packet loss/);
    const room = lab.relay.stats().rooms.find((r) => r.name === 'ctrl')!;
    const macs = room.ports.map((p) => p.mac);
    expect(macs).toContain(NEW_MAC);
    expect(macs).not.toContain(oldMac);
    expect(room.macMoves).toBe(1);
    // Frames to the old MAC no longer reach the guest (filter on): the device counts them if any come.
    expect(nic().control.filter.accepts(Uint8Array.from([...oldMac.split(':').map((h) => parseInt(h, 16)), 0, 0, 0, 0, 0, 0, 8, 0]))).toBe(false);
    expect(lab.vm.deviceErrors).toEqual([]);
  }, 120_000);
});
