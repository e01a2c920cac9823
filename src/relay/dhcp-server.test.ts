import { afterEach, describe, expect, it } from 'vitest';
import {
  buildDhcp,
  DHCPACK,
  DHCPINFORM,
  DHCPNAK,
  DHCPOFFER,
  DhcpOption,
  DHCPREQUEST,
  ipToString,
  macToString,
  parseIp,
  readU32,
  u32Bytes,
} from '../wire/index.ts';
import { dhcpClientFrame, dnsQuery, FakeGuest, gatewayRoom, GW_IP } from './testing.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('gateway: DHCP', () => {
  it('DISCOVER/OFFER/REQUEST/ACK with the options udhcpc needs', async () => {
    const { guest, gw } = gatewayRoom(cleanups);
    const { offer, ack } = await guest.lease(0xabcdef01);
    for (const d of [offer, ack]) {
      const m = d.dhcp!;
      expect(ipToString(m.yiaddr)).toBe('10.0.2.15');
      expect(m.op).toBe(2);
      expect(macToString(m.chaddr)).toBe('52:54:00:12:34:56');
      expect(ipToString(readU32(m.options.get(DhcpOption.SUBNET_MASK)!))).toBe('255.255.255.0');
      expect(ipToString(readU32(m.options.get(DhcpOption.ROUTER)!))).toBe('10.0.2.2');
      expect(ipToString(readU32(m.options.get(DhcpOption.DNS)!))).toBe('10.0.2.2');
      expect(ipToString(readU32(m.options.get(DhcpOption.SERVER_ID)!))).toBe('10.0.2.2');
      expect(readU32(m.options.get(DhcpOption.LEASE_TIME)!)).toBe(86400);
      expect(new TextDecoder().decode(m.options.get(DhcpOption.DOMAIN_NAME)!)).toBe('lab');
      expect(macToString(d.eth.dst)).toBe('52:54:00:12:34:56');
      expect(macToString(d.eth.src)).toBe('52:55:0a:00:02:02');
      expect(ipToString(d.ipv4!.src)).toBe('10.0.2.2');
      expect([d.udp!.srcPort, d.udp!.dstPort]).toEqual([67, 68]);
    }
    expect(offer.dhcp!.messageType).toBe(DHCPOFFER);
    expect(ack.dhcp!.messageType).toBe(DHCPACK);
    expect(gw.stats().leases).toEqual([{ ip: '10.0.2.15', mac: '52:54:00:12:34:56' }]);
  });

  it('keeps the lease stable per MAC, gives the next MAC the next address, NAKs a wrong request', async () => {
    const { guest, room, gw } = gatewayRoom(cleanups);
    await guest.lease(1);
    await guest.lease(2);
    expect(ipToString(guest.ip)).toBe('10.0.2.15');
    const other = new FakeGuest(room, '52:54:00:00:00:02');
    await other.lease(3);
    expect(ipToString(other.ip)).toBe('10.0.2.16');
    other.dhcp(DHCPREQUEST, 4, [[DhcpOption.REQUESTED_IP, u32Bytes(parseIp('10.0.2.15'))]]);
    const nak = await other.waitFor((d) => d.dhcp?.xid === 4);
    expect(nak.dhcp!.messageType).toBe(DHCPNAK);
    expect(macToString(nak.eth.dst)).toBe('ff:ff:ff:ff:ff:ff');
    // Broadcast flag → IP broadcast; a request for another server is ignored.
    guest.dhcp(1, 5, [], 0x8000);
    const offer = await guest.waitFor((d) => d.dhcp?.xid === 5);
    expect(ipToString(offer.ipv4!.dst)).toBe('255.255.255.255');
    guest.dhcp(DHCPREQUEST, 6, [[DhcpOption.SERVER_ID, u32Bytes(parseIp('10.0.2.99'))]]);
    // INFORM gets an ACK without a lease
    guest.dhcp(DHCPINFORM, 7);
    const inform = await guest.waitFor((d) => d.dhcp?.xid === 7);
    expect(inform.dhcp!.messageType).toBe(DHCPACK);
    expect(inform.dhcp!.yiaddr).toBe(0);
    expect(guest.take().filter((d) => d.dhcp?.xid === 6)).toEqual([]);
    expect(gw.stats().counts['dhcp-nak']).toBe(1);
  });

  it('exhausts a small pool and refuses a chaddr that is not the sender', async () => {
    const { room, gw } = gatewayRoom(cleanups, { dhcpStart: '10.0.2.15', dhcpEnd: '10.0.2.16' });
    const gs = [1, 2, 3].map((i) => new FakeGuest(room, `52:54:00:00:01:0${i}`));
    await gs[0].lease(1);
    await gs[1].lease(2);
    gs[2].dhcp(1, 3); // handled synchronously: no OFFER
    const replies = () => [...gs[0].take(), ...gs[2].take()].filter((d) => d.dhcp?.op === 2);
    expect(replies()).toEqual([]);
    expect(gw.stats().counts['dhcp-pool-exhausted']).toBe(1);
    // A DISCOVER whose chaddr is not the frame's source MAC is refused.
    const msg = buildDhcp({ op: 1, xid: 9, chaddr: gs[0].mac, options: [[DhcpOption.MESSAGE_TYPE, new Uint8Array([1])]] });
    gs[2].send(dhcpClientFrame(gs[2].mac, msg));
    expect(replies()).toEqual([]);
    expect(gw.stats().counts['drop-dhcp-chaddr']).toBe(1);
  });

  it('reclaims the least recently used lease of a MAC that is gone when the pool is used up', async () => {
    const { room, gw } = gatewayRoom(cleanups, { dhcpStart: '10.0.2.15', dhcpEnd: '10.0.2.17' });
    const gs = [1, 2, 3, 4].map((i) => new FakeGuest(room, `52:54:00:00:02:0${i}`));
    const ips: string[] = [];
    for (const [i, g] of gs.slice(0, 3).entries()) {
      await g.lease(i + 1);
      ips.push(ipToString(g.ip));
    }
    gs[3].dhcp(1, 9); // all three holders are on the switch: nothing to give
    expect(gs[3].take().filter((d) => d.dhcp?.op === 2)).toEqual([]);
    gs[0].port.detach();
    gs[1].port.detach();
    const back = new FakeGuest(room, '52:54:00:00:02:01'); // gs[0] returns: same address
    await back.lease(12);
    expect(ipToString(back.ip)).toBe(ips[0]);
    back.port.detach(); // gone again, but used more recently than gs[1]
    const fresh = new FakeGuest(room, '52:54:00:00:02:05');
    await fresh.lease(13);
    expect(ipToString(fresh.ip)).toBe(ips[1]);
    expect(gw.stats().counts['dhcp-lease-reclaimed']).toBe(1);
    expect(gw.leaseFor(gs[1].mac)).toBeNull();
    expect([gw.leaseFor(gs[0].mac), gw.leaseFor(gs[2].mac)]).toEqual([ips[0], ips[2]]);
  });

  it('names a guest by its DHCP hostname', async () => {
    const { guest, gw } = gatewayRoom(cleanups);
    await guest.lease(1);
    guest.dhcp(DHCPREQUEST, 2, [
      [DhcpOption.REQUESTED_IP, u32Bytes(guest.ip)],
      [DhcpOption.HOSTNAME, new TextEncoder().encode('Alpha')],
    ]);
    await guest.waitFor((d) => d.dhcp?.xid === 2);
    guest.udp(GW_IP, 5000, 53, dnsQuery('alpha.lab'));
    const r = await guest.waitFor((d) => d.dns !== undefined);
    expect([...r.dns!.answers[0].data]).toEqual([10, 0, 2, 15]);
    expect(gw.stats().leases[0].hostname).toBe('alpha');
  });
});
