import { describe, expect, it } from 'vitest';
import { Feature, IsrBit, NetFeature as N, featureBit, features } from '../../virtio/constants.ts';
import { GuardedMemory } from '../../virtio/inspect/guarded-memory.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { chain } from '../testing/chain.ts';
import type { DriverRing } from '../../virtio/testing/driver-mock.ts';
import { NetConfigOffset, formatMac } from './config.ts';
import { CTRL_MAX_REQUEST_BYTES, MAC_TABLE_ENTRIES } from './ctrl-budget.ts';
import { announceAckRequest, ctrlRequest, macAddrRequest, macList, macTableRequest, offloadsRequest, rxModeRequest, sendCtrl } from './ctrl-testing.ts';
import { netDecoder } from './inspect.ts';
import { NET_CTRLQ, NetCtrlClass, NetCtrlMac, NetCtrlRx, VIRTIO_NET_ERR, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_OK, VIRTIO_NET_S_ANNOUNCE } from './spec.ts';
import { GUEST_MAC, NetHarness, PEER_MAC, ethernet, finishL4, ipv4, udp } from './testing.ts';

const OTHER = Uint8Array.of(0x02, 0x00, 0x00, 0x99, 0x88, 0x77);
const NEW_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const ALL_HOSTS = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0x01);
const MDNS = Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb);

const BASE = features(Feature.VIRTIO_F_VERSION_1, N.VIRTIO_NET_F_MAC, N.VIRTIO_NET_F_STATUS, N.VIRTIO_NET_F_MTU, N.VIRTIO_NET_F_MRG_RXBUF, N.VIRTIO_NET_F_GUEST_CSUM);
const CTRL_ALL = features(N.VIRTIO_NET_F_CTRL_VQ, N.VIRTIO_NET_F_CTRL_RX, N.VIRTIO_NET_F_CTRL_RX_EXTRA, N.VIRTIO_NET_F_CTRL_MAC_ADDR, N.VIRTIO_NET_F_GUEST_ANNOUNCE, N.VIRTIO_NET_F_CTRL_GUEST_OFFLOADS);

function lab(wanted = BASE | CTRL_ALL) {
  const t = NetHarness.create({ features: wanted });
  const cq = t.driver.queues[NET_CTRLQ] as DriverRing;
  t.postRx(32);
  /** Which of these destinations reach the guest now. */
  const passes = (...dsts: Uint8Array[]) =>
    dsts.map((dst) => {
      t.inject(ethernet(new Uint8Array(46).fill(7), 0x88b5, dst, PEER_MAC));
      const got = t.received();
      t.postRx(got.length, undefined, true);
      return got.length === 1;
    });
  return { t, cq, send: (request: Uint8Array, split?: number[], ackBytes?: number) => sendCtrl(cq, request, split, ackBytes), passes };
}

/** What Linux's virtnet_set_rx_mode sends when eth0 comes up: promisc off, allmulti off, the address lists. */
function linuxRxMode(l: ReturnType<typeof lab>, multicast = [ALL_HOSTS]) {
  expect(l.send(rxModeRequest(NetCtrlRx.PROMISC, false)).ack).toBe(VIRTIO_NET_OK);
  expect(l.send(rxModeRequest(NetCtrlRx.ALLMULTI, false)).ack).toBe(VIRTIO_NET_OK);
  // Linux puts header, unicast list and multicast list in three descriptors.
  const uni = macList([]).length;
  expect(l.send(macTableRequest([], multicast), [2, uni]).ack).toBe(VIRTIO_NET_OK);
}

describe('virtio-net control queue', () => {
  it('powers on promiscuous: every frame reaches a driver that set no filter', () => {
    const l = lab();
    expect(l.passes(GUEST_MAC, OTHER, BROADCAST, MDNS)).toEqual([true, true, true, true]);
    expect(l.t.device.control.stats.rxDropsFiltered).toBe(0);
  });

  it('filters as Linux sets it on ifup: our MAC, broadcast and joined groups pass; the rest is dropped and counted', () => {
    const l = lab();
    linuxRxMode(l);
    expect(l.passes(GUEST_MAC, OTHER, BROADCAST, ALL_HOSTS, MDNS)).toEqual([true, false, true, true, false]);
    expect(l.t.device.control.stats.rxDropsFiltered).toBe(2);
    expect(l.send(rxModeRequest(NetCtrlRx.ALLMULTI, true)).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(MDNS, OTHER)).toEqual([true, false]);
    expect(l.send(rxModeRequest(NetCtrlRx.PROMISC, true)).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(OTHER, MDNS)).toEqual([true, true]);
    expect(l.t.device.control.stats.ctrlErrors).toBe(0);
  });

  it('RX_EXTRA: NOBCAST, NOUNI (even our MAC), ALLUNI, and NOMULTI over ALLMULTI', () => {
    const l = lab();
    linuxRxMode(l);
    expect(l.send(rxModeRequest(NetCtrlRx.NOBCAST, true)).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(BROADCAST, GUEST_MAC)).toEqual([false, true]);
    expect(l.send(rxModeRequest(NetCtrlRx.ALLUNI, true)).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(OTHER)).toEqual([true]);
    expect(l.send(rxModeRequest(NetCtrlRx.NOUNI, true)).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(GUEST_MAC, OTHER)).toEqual([false, false]);
    expect(l.send(rxModeRequest(NetCtrlRx.ALLMULTI, true)).ack).toBe(VIRTIO_NET_OK);
    expect(l.send(rxModeRequest(NetCtrlRx.NOMULTI, true)).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(ALL_HOSTS, MDNS)).toEqual([false, false]);
  });

  it('the unicast table adds addresses; a list over the table size lets every address of its kind through', () => {
    const l = lab();
    linuxRxMode(l);
    expect(l.send(macTableRequest([OTHER], [ALL_HOSTS])).ack).toBe(VIRTIO_NET_OK);
    const stranger = Uint8Array.of(2, 9, 9, 9, 9, 9);
    expect(l.passes(OTHER, stranger)).toEqual([true, false]);
    const full = Array.from({ length: MAC_TABLE_ENTRIES }, (_, i) => Uint8Array.of(2, 1, 1, 1, i >> 8, i & 0xff));
    expect(l.send(macTableRequest(full, [])).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(full[MAC_TABLE_ENTRIES - 1]!, stranger, ALL_HOSTS)).toEqual([true, false, false]);
    const over = [...full, Uint8Array.of(2, 1, 1, 2, 0, 0)];
    expect(l.send(macTableRequest(over, [])).ack).toBe(VIRTIO_NET_OK);
    expect(l.passes(stranger, MDNS)).toEqual([true, false]);
    expect(l.t.device.control.filter.state.unicast).toMatchObject({ overflow: true });
    expect(l.t.device.control.filter.state.unicast.macs).toHaveLength(MAC_TABLE_ENTRIES);
  });

  it('MAC_ADDR_SET changes the NIC: config mac (before the ack, no config interrupt), filter, inspector; a reset brings the first back', () => {
    const l = lab();
    linuxRxMode(l);
    l.t.driver.readIsr();
    expect(l.send(macAddrRequest(NEW_MAC)).ack).toBe(VIRTIO_NET_OK);
    expect(Array.from({ length: 6 }, (_, i) => l.t.driver.readConfig(NetConfigOffset.MAC + i, 1))).toEqual([...NEW_MAC]);
    expect(l.t.driver.readIsr() & IsrBit.CONFIG).toBe(0);
    expect(formatMac(l.t.device.mac)).toBe('52:54:00:12:34:56');
    expect(l.t.device.control.stats.macChanges).toBe(1);
    expect(l.passes(NEW_MAC, GUEST_MAC)).toEqual([true, false]);
    l.t.driver.status = 0; // the driver resets the device
    expect(formatMac(l.t.device.mac)).toBe(formatMac(GUEST_MAC));
    expect(l.t.driver.readConfig(NetConfigOffset.MAC + 5, 1)).toBe(GUEST_MAC[5]);
    expect(l.t.device.control.filter.promisc).toBe(true);
  });

  it('answers VIRTIO_NET_ERR to malformed and unsupported requests, changing nothing', () => {
    const l = lab();
    linuxRxMode(l);
    const before = JSON.stringify(l.t.device.control.filter.state, (_, v) => (v instanceof Uint8Array ? [...v] : v));
    const bad: Array<[string, Uint8Array, RegExp]> = [
      ['no command', Uint8Array.of(0), /no class and command/],
      ['VLAN class', ctrlRequest(NetCtrlClass.VLAN, 0, Uint8Array.of(1, 0)), /class VLAN is not supported/],
      ['MQ class', ctrlRequest(NetCtrlClass.MQ, 0, Uint8Array.of(1, 0)), /class MQ is not supported/],
      ['class 200', ctrlRequest(200, 0), /class 200 is not supported/],
      ['RX command 6', ctrlRequest(NetCtrlClass.RX, 6, Uint8Array.of(1)), /unknown RX command 6/],
      ['RX value 2', ctrlRequest(NetCtrlClass.RX, NetCtrlRx.PROMISC, Uint8Array.of(2)), /neither 0 nor 1/],
      ['RX two bytes', ctrlRequest(NetCtrlClass.RX, NetCtrlRx.PROMISC, Uint8Array.of(1, 1)), /takes 1 bytes of data, got 2/],
      ['MAC command 2', ctrlRequest(NetCtrlClass.MAC, 2), /unknown MAC command/],
      ['ADDR_SET short', ctrlRequest(NetCtrlClass.MAC, NetCtrlMac.ADDR_SET, NEW_MAC.subarray(0, 5)), /takes 6 bytes/],
      ['ADDR_SET multicast', macAddrRequest(MDNS), /multicast address/],
      ['ADDR_SET zero', macAddrRequest(new Uint8Array(6)), /00:00:00:00:00:00/],
      ['table entries past the data', ctrlRequest(NetCtrlClass.MAC, NetCtrlMac.TABLE_SET, macList([OTHER], 0xffffffff)), /run past/],
      ['table without multicast list', ctrlRequest(NetCtrlClass.MAC, NetCtrlMac.TABLE_SET, macList([OTHER])), /run past/],
      ['table with trailing bytes', Uint8Array.of(...macTableRequest([], []), 0), /1 bytes after its lists/],
      ['ANNOUNCE with data', ctrlRequest(NetCtrlClass.ANNOUNCE, 0, Uint8Array.of(0)), /takes 0 bytes/],
      ['ANNOUNCE nothing pending', announceAckRequest(), /no announce pending/],
      ['OFFLOADS short', ctrlRequest(NetCtrlClass.GUEST_OFFLOADS, 0, new Uint8Array(7)), /takes 8 bytes/],
      ['OFFLOADS unnegotiated', offloadsRequest(featureBit(N.VIRTIO_NET_F_GUEST_TSO4)), /offloads 0x80 not negotiated/],
      ['over the budget', ctrlRequest(NetCtrlClass.RX, 0, new Uint8Array(CTRL_MAX_REQUEST_BYTES)), /at most 4096/],
    ];
    for (const [name, request, why] of bad) {
      const errors = l.t.device.control.stats.ctrlErrors;
      expect(l.send(request), name).toMatchObject({ len: 1, ack: VIRTIO_NET_ERR });
      expect(l.t.device.control.lastError, name).toMatch(why);
      expect(l.t.device.control.stats.ctrlErrors, name).toBe(errors + 1);
    }
    expect(JSON.stringify(l.t.device.control.filter.state, (_, v) => (v instanceof Uint8Array ? [...v] : v))).toBe(before);
    expect(formatMac(l.t.device.mac)).toBe(formatMac(GUEST_MAC));
    // No room for the ack: nothing is done, the chain comes back empty.
    expect(l.send(rxModeRequest(NetCtrlRx.PROMISC, true), [2], 0)).toMatchObject({ len: 0, ack: undefined });
    expect(l.t.device.control.filter.promisc).toBe(false);
    expect(l.t.driver.errors).toEqual([]);
    // And an honest request still works.
    expect(l.send(rxModeRequest(NetCtrlRx.PROMISC, true)).ack).toBe(VIRTIO_NET_OK);
  });

  it('refuses commands whose feature was not negotiated', () => {
    const l = lab(BASE | features(N.VIRTIO_NET_F_CTRL_VQ, N.VIRTIO_NET_F_CTRL_RX));
    expect(l.send(rxModeRequest(NetCtrlRx.PROMISC, false)).ack).toBe(VIRTIO_NET_OK);
    expect(l.send(rxModeRequest(NetCtrlRx.NOBCAST, true)).ack).toBe(VIRTIO_NET_ERR);
    expect(l.t.device.control.lastError).toMatch(/CTRL_RX_EXTRA not negotiated/);
    expect(l.send(macAddrRequest(NEW_MAC)).ack).toBe(VIRTIO_NET_ERR);
    expect(l.t.device.control.lastError).toMatch(/CTRL_MAC_ADDR not negotiated/);
    expect(l.send(offloadsRequest(0n)).ack).toBe(VIRTIO_NET_ERR);
    expect(l.t.device.requestAnnounce()).toBe(false);
    // Control features without CTRL_VQ (§5.1.3.1) count as not negotiated: no announce that could never be acked.
    const noQueue = lab(BASE | features(N.VIRTIO_NET_F_GUEST_ANNOUNCE, N.VIRTIO_NET_F_CTRL_RX));
    expect(noQueue.t.device.requestAnnounce()).toBe(false);
    const bare = lab(BASE | features(N.VIRTIO_NET_F_CTRL_VQ));
    expect(bare.send(rxModeRequest(NetCtrlRx.PROMISC, false)).ack).toBe(VIRTIO_NET_ERR);
    expect(bare.passes(OTHER)).toEqual([true]);
  });

  it('GUEST_ANNOUNCE: the device sets ANNOUNCE with a config interrupt; the driver acks, which clears it quietly', () => {
    const l = lab();
    l.t.driver.readIsr();
    expect(l.t.device.requestAnnounce()).toBe(true);
    expect(l.t.device.requestAnnounce()).toBe(false); // one pending at a time
    expect(l.t.driver.readIsr() & IsrBit.CONFIG).toBe(IsrBit.CONFIG);
    expect(l.t.driver.readConfig(NetConfigOffset.STATUS, 2) & VIRTIO_NET_S_ANNOUNCE).toBe(VIRTIO_NET_S_ANNOUNCE);
    expect(l.send(announceAckRequest()).ack).toBe(VIRTIO_NET_OK);
    expect(l.t.driver.readConfig(NetConfigOffset.STATUS, 2) & VIRTIO_NET_S_ANNOUNCE).toBe(0);
    expect(l.t.driver.readIsr() & IsrBit.CONFIG).toBe(0);
    expect(l.t.device.control.stats).toMatchObject({ announcesRequested: 1, announcesAcked: 1 });
    // A link flap keeps a pending announce; the ack keeps the link.
    l.t.device.requestAnnounce();
    l.t.peer.setUp(false);
    l.t.peer.setUp(true);
    expect(l.t.driver.readConfig(NetConfigOffset.STATUS, 2)).toBe(1 | VIRTIO_NET_S_ANNOUNCE);
    l.send(announceAckRequest());
    expect(l.t.driver.readConfig(NetConfigOffset.STATUS, 2)).toBe(1);
  });

  it('GUEST_OFFLOADS_SET changes what rx delivers: no DATA_VALID once GUEST_CSUM is off', () => {
    const l = lab();
    const frame = () => finishL4(ethernet(ipv4({ protocol: 17, src: Uint8Array.of(10, 0, 2, 2), dst: Uint8Array.of(10, 0, 2, 15), payload: udp(new Uint8Array(20).fill(3)) }), 0x0800, GUEST_MAC, PEER_MAC));
    const dataValid = () => {
      l.t.inject(frame());
      const [got] = l.t.received();
      l.t.postRx(1);
      return (got!.hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID) !== 0;
    };
    const csum = featureBit(N.VIRTIO_NET_F_GUEST_CSUM);
    expect(l.t.device.guestOffloads).toBe(csum);
    expect(dataValid()).toBe(true);
    expect(l.send(offloadsRequest(0n)).ack).toBe(VIRTIO_NET_OK);
    expect(l.t.device.guestOffloads).toBe(0n);
    expect(dataValid()).toBe(false);
    expect(l.send(offloadsRequest(csum)).ack).toBe(VIRTIO_NET_OK);
    expect(dataValid()).toBe(true);
  });

  it('serves every request of a kick, each with its own ack', () => {
    const l = lab();
    const requests = [rxModeRequest(NetCtrlRx.PROMISC, false), Uint8Array.of(9, 9), macAddrRequest(NEW_MAC), rxModeRequest(NetCtrlRx.ALLMULTI, true)];
    for (const r of requests) l.cq.add({ readable: [r], writable: [1] });
    l.cq.kick();
    expect(l.cq.used().map((u) => u.data[0])).toEqual([VIRTIO_NET_OK, VIRTIO_NET_ERR, VIRTIO_NET_OK, VIRTIO_NET_OK]);
  });

  it('the inspector decodes requests when popped and acks when completed', () => {
    const mem = new ArrayMemory(1 << 16);
    const g = new GuardedMemory(mem);
    const decode = (request: Uint8Array, ack: number) => {
      mem.write(0x1000, request);
      mem.write(0x8000, Uint8Array.of(ack));
      const c = chain([[0x1000, request.length]], [[0x8000, 1]]);
      return [netDecoder().popped!(g, NET_CTRLQ, c)!.detail, netDecoder().completed!(g, NET_CTRLQ, c, 1)!.detail];
    };
    expect(decode(macAddrRequest(NEW_MAC), VIRTIO_NET_OK)).toEqual(['MAC ADDR_SET 52:54:00:12:34:56', 'ack VIRTIO_NET_OK']);
    expect(decode(macTableRequest([OTHER], [ALL_HOSTS]), VIRTIO_NET_OK)[0]).toBe('MAC TABLE_SET unicast 02:00:00:99:88:77; multicast 01:00:5e:00:00:01');
    expect(decode(rxModeRequest(NetCtrlRx.NOBCAST, true), VIRTIO_NET_OK)[0]).toBe('RX NOBCAST on');
    expect(decode(offloadsRequest(2n), VIRTIO_NET_OK)[0]).toBe('GUEST_OFFLOADS SET 0x2');
    expect(decode(ctrlRequest(NetCtrlClass.VLAN, 0), VIRTIO_NET_ERR)).toEqual(['malformed: class VLAN is not supported', 'ack VIRTIO_NET_ERR (1)']);
    const huge = chain([[0x1000, CTRL_MAX_REQUEST_BYTES + 1]], [[0x8000, 1]]);
    expect(netDecoder().popped!(g, NET_CTRLQ, huge)!.detail).toMatch(/over 4096 B: refused/);
    expect(netDecoder().completed!(g, NET_CTRLQ, huge, 0)!.detail).toMatch(/no ack/);
  });
});
