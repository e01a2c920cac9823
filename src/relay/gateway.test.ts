import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildDhcp,
  buildDns,
  buildEthernet,
  buildIcmp,
  buildIpv4,
  DHCPACK,
  DHCPINFORM,
  DHCPNAK,
  DHCPOFFER,
  DhcpOption,
  DHCPREQUEST,
  DNS_RCODE_NOERROR,
  DNS_RCODE_NXDOMAIN,
  DNS_TYPE_A,
  DNS_TYPE_AAAA,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  ipToString,
  macToString,
  parseIp,
  readU32,
  u32Bytes,
} from '../wire/index.ts';
import { Gateway, type GatewayOptions } from './gateway.ts';
import { SwitchRoom } from './switch.ts';
import { FakeGuest, GW_IP, GW_MAC, dhcpClientFrame } from './testing.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function setup(opts: Partial<GatewayOptions> = {}) {
  const room = new SwitchRoom('lab', { maxFrameBytes: 1514 });
  const gw = new Gateway(room, opts);
  cleanups.push(() => gw.close());
  const guest = new FakeGuest(room, '52:54:00:12:34:56');
  return { room, gw, guest };
}

const dnsQuery = (name: string, type = DNS_TYPE_A, id = 0x4242) => buildDns({ id, flags: 0x0100, questions: [{ name, type, class: 1 }] });

describe('gateway: ARP and ICMP', () => {
  it('answers ARP for 10.0.2.2 (and the DNS address) and ignores others', async () => {
    const { guest } = setup({ dnsIp: '10.0.2.3' });
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
    const { guest, gw } = setup();
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

describe('gateway: DHCP', () => {
  it('DISCOVER/OFFER/REQUEST/ACK with the options udhcpc needs', async () => {
    const { guest, gw } = setup();
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
    const { guest, room, gw } = setup();
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
    const { room, gw } = setup({ dhcpStart: '10.0.2.15', dhcpEnd: '10.0.2.16' });
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
    const { room, gw } = setup({ dhcpStart: '10.0.2.15', dhcpEnd: '10.0.2.17' });
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
    const { guest, gw } = setup();
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
    const { room, guest: victim } = setup();
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
    const { room, gw } = setup();
    expect(room.guard).not.toBeNull();
    gw.close();
    expect(room.guard).toBeNull();
  });
});

describe('gateway: DNS', () => {
  it('answers lab names and NXDOMAIN for others with nat host', async () => {
    const { guest } = setup({ names: { printer: '10.0.2.50' } });
    guest.ip = parseIp('10.0.2.15');
    const ask = async (name: string, type = DNS_TYPE_A) => {
      guest.udp(GW_IP, 40000, 53, dnsQuery(name, type));
      return (await guest.waitFor((d) => d.dns?.isResponse === true)).dns!;
    };
    for (const name of ['gateway', 'host', 'gateway.lab', 'HOST.LAB.', 'printer']) {
      const r = await ask(name);
      expect(r.rcode).toBe(DNS_RCODE_NOERROR);
      expect(r.id).toBe(0x4242);
      expect(r.flags & 0x0400).toBe(0x0400); // authoritative for lab names
      expect(r.questions[0].name.toLowerCase()).toBe(name.toLowerCase().replace(/\.$/, ''));
      expect(r.answers.map((a) => [...a.data].join('.'))).toEqual([name === 'printer' ? '10.0.2.50' : '10.0.2.2']);
    }
    expect((await ask('gateway', DNS_TYPE_AAAA)).answers).toEqual([]);
    expect((await ask('nobody.lab')).rcode).toBe(DNS_RCODE_NXDOMAIN);
    expect((await ask('example.com')).rcode).toBe(DNS_RCODE_NXDOMAIN);
  });

  it('resolves other names through the lookup only with nat all', async () => {
    const asked: string[] = [];
    const { guest } = setup({
      nat: 'all',
      lookup: async (name) => {
        asked.push(name);
        if (name === 'example.com') return [parseIp('93.184.215.14')];
        throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
      },
    });
    guest.ip = parseIp('10.0.2.15');
    guest.udp(GW_IP, 40000, 53, dnsQuery('example.com', DNS_TYPE_A, 1));
    const r = (await guest.waitFor((d) => d.dns?.id === 1)).dns!;
    expect(r.answers.map((a) => [...a.data].join('.'))).toEqual(['93.184.215.14']);
    guest.udp(GW_IP, 40000, 53, dnsQuery('nope.invalid', DNS_TYPE_A, 2));
    expect((await guest.waitFor((d) => d.dns?.id === 2)).dns!.rcode).toBe(DNS_RCODE_NXDOMAIN);
    expect(asked).toEqual(['example.com', 'nope.invalid']);
  });

  it('answers FORMERR to a garbled query and survives garbage', async () => {
    const { guest, gw } = setup();
    guest.ip = parseIp('10.0.2.15');
    const bad = new Uint8Array(20);
    bad[0] = 0x12;
    bad[1] = 0x34;
    bad[5] = 9; // 9 questions in 8 bytes
    guest.udp(GW_IP, 40000, 53, bad);
    const r = await guest.waitFor((d) => d.udp?.srcPort === 53);
    expect(r.dns!.rcode).toBe(1);
    expect(r.dns!.id).toBe(0x1234);
    guest.udp(GW_IP, 40000, 53, new Uint8Array(3));
    expect(gw.stats().counts['drop-malformed-dns']).toBe(2);
  });
});

describe('gateway: UDP NAT', () => {
  it('NATs 10.0.2.2:P to a dgram echo server on 127.0.0.1:P and back', async () => {
    const server = dgram.createSocket('udp4');
    cleanups.push(() => server.close());
    server.on('message', (msg, rinfo) => server.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const port = server.address().port;
    const { guest, gw } = setup();
    guest.ip = parseIp('10.0.2.15');
    guest.udp(GW_IP, 33333, port, new TextEncoder().encode('hello'));
    const r = await guest.waitFor((d) => d.udp?.dstPort === 33333);
    expect(new TextDecoder().decode(r.udp!.payload)).toBe('echo:hello');
    expect(ipToString(r.ipv4!.src)).toBe('10.0.2.2');
    expect(r.udp!.srcPort).toBe(port);
    expect(gw.stats().udpFlows).toBe(1);
    guest.udp(GW_IP, 33333, port, new TextEncoder().encode('again'));
    await guest.waitFor((d) => d.udp?.dstPort === 33333);
    expect(gw.stats().udpFlows).toBe(1);
  });

  it('refuses other destinations with nat host (ICMP prohibited) and everything with nat off', async () => {
    const { guest, gw } = setup();
    guest.ip = parseIp('10.0.2.15');
    guest.udp(parseIp('192.0.2.1'), 1000, 9, new Uint8Array(4));
    const icmp = await guest.waitFor((d) => d.icmp !== undefined);
    expect([icmp.icmp!.type, icmp.icmp!.code]).toEqual([3, 13]);
    expect(gw.stats().counts['udp-nat-denied']).toBe(1);
    const off = setup({ nat: 'off' });
    off.guest.ip = parseIp('10.0.2.15');
    off.guest.udp(GW_IP, 1000, 9, new Uint8Array(4));
    expect(off.gw.stats().counts['udp-nat-denied']).toBe(1);
    expect(off.gw.natTarget(GW_IP, 80)).toBeNull();
    const all = setup({ nat: 'all' });
    expect(all.gw.natTarget(parseIp('192.0.2.1'), 80)).toEqual({ host: '192.0.2.1', port: 80 });
    expect(all.gw.natTarget(parseIp('10.0.2.77'), 80)).toBeNull(); // the lab's own subnet
    expect(all.gw.natTarget(parseIp('127.0.0.1'), 80)).toBeNull();
    expect(all.gw.natTarget(GW_IP, 80)).toEqual({ host: '127.0.0.1', port: 80 });
  });

  it('caps the number of UDP flows', async () => {
    const { guest, gw } = setup({ maxUdpFlows: 2 });
    guest.ip = parseIp('10.0.2.15');
    for (let p = 1; p <= 4; p++) guest.udp(GW_IP, 1000 + p, 9, new Uint8Array(1));
    expect(gw.stats().udpFlows).toBe(2);
    expect(gw.stats().counts['udp-too-many-flows']).toBe(2);
  });
});

describe('gateway: malformed input', () => {
  it('counts and ignores truncated and inconsistent frames', () => {
    const { guest, gw } = setup();
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
