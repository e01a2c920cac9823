import { afterEach, describe, expect, it } from 'vitest';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildEthernet,
  buildIcmp,
  buildIpv4,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  ipToString,
  macToString,
  parseIp,
} from '../wire/index.ts';
import { FakeGuest, GW_IP, GW_MAC, gatewayRoom } from './testing.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

describe('gateway: ARP and ICMP', () => {
  it('answers ARP for 10.0.2.2 (and the DNS address) and ignores others', async () => {
    const { guest } = gatewayRoom(cleanups, { dnsIp: '10.0.2.3' });
    guest.ip = parseIp('10.0.2.15');
    for (const target of ['10.0.2.2', '10.0.2.3', '10.0.2.99']) {
      const arp = buildArp({ op: ARP_REQUEST, senderMac: guest.mac, senderIp: guest.ip, targetMac: new Uint8Array(6), targetIp: parseIp(target) });
      guest.send(buildEthernet({ dst: BROADCAST_MAC, src: guest.mac, etherType: ETHERTYPE_ARP, payload: arp }));
    }
    const got = guest.take();
    expect(got.length).toBe(2);
    for (const [i, d] of got.entries()) {
      expect(d.arp!.op).toBe(ARP_REPLY);
      expect(d.eth.payload.length + 14).toBe(60); // padded to the Ethernet minimum
      expect(ipToString(d.arp!.senderIp)).toBe(['10.0.2.2', '10.0.2.3'][i]);
      expect(macToString(d.arp!.senderMac)).toBe('52:55:0a:00:02:02');
      expect(macToString(d.eth.dst)).toBe('52:54:00:12:34:56');
      expect(macToString(d.arp!.targetMac)).toBe('52:54:00:12:34:56');
    }
  });

  it('answers ICMP echo for the gateway with the same id, seq and data', () => {
    const { guest, gw } = gatewayRoom(cleanups);
    guest.ip = parseIp('10.0.2.15');
    const data = new Uint8Array(56).map((_, i) => i);
    guest.send(guest.ipFrame(GW_IP, IPPROTO_ICMP, buildIcmp({ type: ICMP_ECHO_REQUEST, id: 0x77, seq: 3, data })));
    const [d] = guest.take();
    expect(d.icmp).toMatchObject({ type: ICMP_ECHO_REPLY, id: 0x77, seq: 3, checksumOk: true });
    expect([...d.icmp!.data]).toEqual([...data]);
    expect(d.ipv4!.checksumOk).toBe(true);
    expect(ipToString(d.ipv4!.src)).toBe('10.0.2.2');
    expect(ipToString(d.ipv4!.dst)).toBe('10.0.2.15');
    expect(gw.stats().counts['icmp-echo']).toBe(1);
    // echo to an outside address: not answered (Node has no raw ICMP), counted
    guest.send(guest.ipFrame(parseIp('8.8.8.8'), IPPROTO_ICMP, buildIcmp({ type: ICMP_ECHO_REQUEST, id: 1, seq: 1 })));
    expect(guest.take()).toEqual([]);
    expect(gw.stats().counts['drop-icmp-not-ours']).toBe(1);
  });
});

describe('gateway: source guard', () => {
  const arpFrame = (g: FakeGuest, op: number, senderIp: number, targetIp: number, dst = BROADCAST_MAC, senderMac = g.mac) =>
    buildEthernet({
      dst,
      src: g.mac,
      etherType: ETHERTYPE_ARP,
      payload: buildArp({ op, senderMac, senderIp, targetMac: dst === BROADCAST_MAC ? new Uint8Array(6) : dst, targetIp }),
    });
  const ping = (g: FakeGuest, seq: number) => g.send(g.ipFrame(GW_IP, IPPROTO_ICMP, buildIcmp({ type: ICMP_ECHO_REQUEST, id: 1, seq })));

  it("keeps a client from claiming the gateway's or another lease's address, by ARP or as IP source", async () => {
    const { room, guest: victim } = gatewayRoom(cleanups);
    await victim.lease(1);
    const attacker = new FakeGuest(room, '52:54:00:66:66:66');
    await attacker.lease(2);
    victim.take();
    const mine = attacker.ip;
    // "10.0.2.2 is at me" (gratuitous, and a reply aimed at the victim); "the victim's IP is
    // at me"; "I am at the victim's MAC"; and the victim's IP as a source.
    attacker.send(arpFrame(attacker, ARP_REQUEST, GW_IP, GW_IP));
    attacker.send(arpFrame(attacker, ARP_REPLY, GW_IP, victim.ip, victim.mac));
    attacker.send(arpFrame(attacker, ARP_REPLY, victim.ip, GW_IP, GW_MAC));
    attacker.send(arpFrame(attacker, ARP_REQUEST, mine, GW_IP, BROADCAST_MAC, victim.mac));
    attacker.ip = victim.ip;
    ping(attacker, 1);
    expect(victim.take()).toEqual([]);
    expect(attacker.take()).toEqual([]);
    expect(room.stats().ports.find((p) => p.mac === '52:54:00:66:66:66')!.drops).toEqual({ 'arp-spoof': 4, 'ip-spoof': 1 });

    // Its own address works as before, and so does an address nobody leased.
    attacker.ip = mine;
    attacker.send(arpFrame(attacker, ARP_REQUEST, mine, GW_IP));
    expect((await attacker.waitFor((d) => d.arp?.op === ARP_REPLY)).arp!.senderIp).toBe(GW_IP);
    ping(attacker, 2);
    await attacker.waitFor((d) => d.icmp?.type === ICMP_ECHO_REPLY && d.icmp.seq === 2);
    const fixed = new FakeGuest(room, '52:54:00:77:77:77', '10.0.2.99');
    ping(fixed, 3);
    await fixed.waitFor((d) => d.icmp?.type === ICMP_ECHO_REPLY && d.icmp.seq === 3);
    ping(victim, 4);
    await victim.waitFor((d) => d.icmp?.type === ICMP_ECHO_REPLY && d.icmp.seq === 4);
  });

  it('stops guarding when the gateway closes', () => {
    const { room, gw } = gatewayRoom(cleanups);
    expect(room.guard).not.toBeNull();
    gw.close();
    expect(room.guard).toBeNull();
  });
});

describe('gateway: malformed input', () => {
  it('counts and ignores truncated and inconsistent frames', () => {
    const { guest, gw } = gatewayRoom(cleanups);
    guest.ip = parseIp('10.0.2.15');
    const eth = (payload: Uint8Array, type = ETHERTYPE_IPV4) => buildEthernet({ dst: GW_MAC, src: guest.mac, etherType: type, payload });
    const goodIp = buildIpv4({ src: guest.ip, dst: GW_IP, protocol: IPPROTO_UDP, payload: new Uint8Array(8) });
    guest.send(eth(new Uint8Array(10))); // IPv4 shorter than a header
    guest.send(eth(new Uint8Array(5), ETHERTYPE_ARP)); // short ARP
    const lying = goodIp.slice();
    lying[3] = 0xff; // total length beyond the frame
    guest.send(eth(lying));
    const badSum = goodIp.slice();
    badSum[10] ^= 0xff;
    guest.send(eth(badSum));
    guest.send(eth(goodIp)); // UDP length 0 (< 8)
    const frag = buildIpv4({ src: guest.ip, dst: GW_IP, protocol: IPPROTO_UDP, payload: new Uint8Array(8), flags: 1 });
    guest.send(eth(frag));
    const tcpShort = buildIpv4({ src: guest.ip, dst: GW_IP, protocol: 6, payload: new Uint8Array(10) });
    guest.send(eth(tcpShort));
    const icmpBad = buildIpv4({ src: guest.ip, dst: GW_IP, protocol: IPPROTO_ICMP, payload: new Uint8Array(8).fill(1) });
    guest.send(eth(icmpBad));
    expect(guest.take()).toEqual([]);
    expect(gw.stats().counts).toEqual({
      'drop-malformed-ipv4': 2,
      'drop-malformed-arp': 1,
      'drop-bad-ip-checksum': 1,
      'drop-malformed-udp': 1,
      'drop-fragment': 1,
      'drop-malformed-tcp': 1,
      'drop-bad-icmp-checksum': 1,
    });
  });
});
