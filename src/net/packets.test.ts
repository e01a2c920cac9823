import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ARP_REQUEST,
  BROADCAST_MAC,
  DHCPDISCOVER,
  DNS_TYPE_A,
  DhcpOption,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_SYN,
  buildArp,
  buildDhcp,
  buildDns,
  buildEthernet,
  buildIcmp,
  buildIpv4,
  buildTcp,
  buildUdp,
  decodeFrame,
  internetChecksum,
  ipToString,
  isMulticastMac,
  macKey,
  macToString,
  parseArp,
  parseDhcp,
  parseDns,
  parseEthernet,
  parseIcmp,
  parseIp,
  parseIpv4,
  parseMac,
  parseTcp,
  parseUdp,
  verifyTransportChecksum,
} from './packets.ts';

const A = parseMac('52:54:00:12:34:56');
const B = parseMac('52:55:0a:00:02:02');

describe('addresses', () => {
  it('parses and prints MACs and IPs', () => {
    expect(macToString(A)).toBe('52:54:00:12:34:56');
    expect(ipToString(parseIp('10.0.2.15'))).toBe('10.0.2.15');
    expect(parseIp('255.255.255.255')).toBe(0xffffffff);
    expect(() => parseIp('1.2.3')).toThrow();
    expect(() => parseIp('1.2.3.256')).toThrow();
    expect(() => parseMac('52:54:00:12:34')).toThrow();
    expect(isMulticastMac(BROADCAST_MAC)).toBe(true);
    expect(isMulticastMac(parseMac('01:00:5e:00:00:01'))).toBe(true);
    expect(isMulticastMac(A)).toBe(false);
  });

  it('macKey is exact and distinct', () => {
    expect(macKey(BROADCAST_MAC)).toBe(2 ** 48 - 1);
    expect(macKey(A)).toBe(0x525400123456);
    expect(macKey(parseMac('00:00:00:80:00:00'))).toBe(0x800000);
    expect(macKey(parseMac('00:00:80:00:00:00'))).toBe(0x80000000);
  });
});

describe('checksum', () => {
  it('matches the RFC 1071 example', () => {
    // RFC 1071 section 3: 0001 f203 f4f5 f6f7 → sum ddf2, checksum 220d
    expect(internetChecksum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]))).toBe(0x220d);
  });
  it('handles odd lengths', () => {
    expect(internetChecksum(new Uint8Array([0xff]))).toBe(0x00ff);
  });
});

describe('Ethernet / ARP / IPv4 / ICMP', () => {
  it('round trips an ARP request in an Ethernet frame', () => {
    const arp = buildArp({ op: ARP_REQUEST, senderMac: A, senderIp: parseIp('10.0.2.15'), targetMac: new Uint8Array(6), targetIp: parseIp('10.0.2.2') });
    const f = buildEthernet({ dst: BROADCAST_MAC, src: A, etherType: ETHERTYPE_ARP, payload: arp });
    const e = parseEthernet(f)!;
    expect(e.etherType).toBe(ETHERTYPE_ARP);
    const p = parseArp(e.payload)!;
    expect(ipToString(p.targetIp)).toBe('10.0.2.2');
    expect(macToString(p.senderMac)).toBe(macToString(A));
    expect(decodeFrame(f)!.summary).toBe('ARP who-has 10.0.2.2 tell 10.0.2.15');
  });

  it('builds IPv4 with a valid header checksum and cuts Ethernet padding', () => {
    const icmp = buildIcmp({ type: ICMP_ECHO_REQUEST, id: 7, seq: 1, data: new Uint8Array([1, 2, 3]) });
    const ip = buildIpv4({ src: parseIp('10.0.2.15'), dst: parseIp('10.0.2.2'), protocol: IPPROTO_ICMP, payload: icmp });
    const padded = new Uint8Array(ip.length + 10);
    padded.set(ip);
    const p = parseIpv4(padded)!;
    expect(p.checksumOk).toBe(true);
    expect(p.payload.length).toBe(icmp.length);
    const i = parseIcmp(p.payload)!;
    expect([i.type, i.id, i.seq, i.checksumOk, [...i.data]]).toEqual([8, 7, 1, true, [1, 2, 3]]);
    padded[12] ^= 1;
    expect(parseIpv4(padded)!.checksumOk).toBe(false);
  });

  it('rejects truncated and inconsistent IPv4 headers', () => {
    const ip = buildIpv4({ src: 1, dst: 2, protocol: IPPROTO_UDP, payload: new Uint8Array(8) });
    expect(parseIpv4(ip.subarray(0, 19))).toBeNull();
    const bad = ip.slice();
    bad[0] = 0x44; // IHL 4 (< 5)
    expect(parseIpv4(bad)).toBeNull();
    const long = ip.slice();
    long[3] = 200; // total length beyond the buffer
    expect(parseIpv4(long)).toBeNull();
    const v6 = ip.slice();
    v6[0] = 0x65;
    expect(parseIpv4(v6)).toBeNull();
  });
});

describe('UDP / TCP', () => {
  const src = parseIp('10.0.2.15');
  const dst = parseIp('10.0.2.2');
  it('UDP checksum over the pseudo-header verifies', () => {
    const u = buildUdp({ src, dst, srcPort: 1000, dstPort: 53, payload: new Uint8Array([9, 8, 7]) });
    expect(verifyTransportChecksum(src, dst, IPPROTO_UDP, u)).toBe(true);
    expect(verifyTransportChecksum(src, dst + 1, IPPROTO_UDP, u)).toBe(false);
    const p = parseUdp(u)!;
    expect([p.srcPort, p.dstPort, [...p.payload]]).toEqual([1000, 53, [9, 8, 7]]);
    const bad = u.slice();
    bad[5] = 200; // length beyond the buffer
    expect(parseUdp(bad)).toBeNull();
  });

  it('TCP with options round trips and verifies', () => {
    const t = buildTcp({ src, dst, srcPort: 40000, dstPort: 80, seq: 0xfffffff0, ack: 5, flags: TCP_SYN | TCP_ACK, window: 1234, options: { mss: 1460, windowScale: 7, sackPermitted: true, timestamp: { value: 1, echo: 2 } }, payload: new Uint8Array([1]) });
    expect(verifyTransportChecksum(src, dst, IPPROTO_TCP, t)).toBe(true);
    const p = parseTcp(t)!;
    expect(p.seq).toBe(0xfffffff0);
    expect(p.options).toEqual({ mss: 1460, windowScale: 7, sackPermitted: true, timestamp: { value: 1, echo: 2 } });
    expect(p.headerLength % 4).toBe(0);
    expect([...p.payload]).toEqual([1]);
    const bad = t.slice();
    bad[12] = 0xf0; // data offset 60 > length
    expect(parseTcp(bad)).toBeNull();
  });

  it('stops at malformed TCP options without throwing', () => {
    const t = buildTcp({ src, dst, srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TCP_SYN, window: 0, options: { mss: 1000 } });
    t[21] = 40; // option length past the header
    expect(parseTcp(t)!.options).toEqual({});
  });
});

describe('DHCP', () => {
  it('round trips options (and splits long ones)', () => {
    const long = new Uint8Array(300).fill(65);
    const m = buildDhcp({ op: 1, xid: 0xdeadbeef, chaddr: A, flags: 0x8000, options: [[DhcpOption.MESSAGE_TYPE, new Uint8Array([DHCPDISCOVER])], [DhcpOption.HOSTNAME, long]] });
    const p = parseDhcp(m)!;
    expect(p.xid).toBe(0xdeadbeef);
    expect(p.messageType).toBe(DHCPDISCOVER);
    expect(p.flags).toBe(0x8000);
    expect(macToString(p.chaddr)).toBe(macToString(A));
    expect(p.options.get(DhcpOption.HOSTNAME)!.length).toBe(300);
  });
  it('rejects a missing magic cookie and overlong options', () => {
    const m = buildDhcp({ op: 1, xid: 1, chaddr: A, options: [[53, new Uint8Array([1])]] });
    const bad = m.slice();
    bad[236] = 0;
    expect(parseDhcp(bad)).toBeNull();
    const over = m.slice(0, 243);
    over[241] = 50; // option 53 claims 50 bytes
    expect(parseDhcp(over)).toBeNull();
  });
});

describe('DNS', () => {
  it('round trips a query and an answer', () => {
    const q = buildDns({ id: 0x1234, flags: 0x0100, questions: [{ name: 'gateway.lab', type: DNS_TYPE_A, class: 1 }] });
    const p = parseDns(q)!;
    expect(p.questions).toEqual([{ name: 'gateway.lab', type: 1, class: 1 }]);
    expect(p.isResponse).toBe(false);
    const r = buildDns({ id: 1, flags: 0x8180, questions: p.questions, answers: [{ name: 'gateway.lab', type: 1, class: 1, ttl: 60, data: new Uint8Array([10, 0, 2, 2]) }] });
    const pr = parseDns(r)!;
    expect(pr.isResponse).toBe(true);
    expect([...pr.answers[0].data]).toEqual([10, 0, 2, 2]);
  });

  it('follows compression pointers and refuses pointer loops', () => {
    // header, question "a.b" then an answer whose name is a pointer to offset 12.
    const q = buildDns({ id: 1, flags: 0x8000, questions: [{ name: 'a.b', type: 1, class: 1 }] });
    const ans = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4];
    const msg = new Uint8Array([...q, ...ans]);
    msg[7] = 1; // ancount
    expect(parseDns(msg)!.answers[0].name).toBe('a.b');
    const loop = new Uint8Array([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(parseDns(loop)).toBeNull();
    const lying = new Uint8Array(12);
    lying[5] = 200; // 200 questions in 0 bytes
    expect(parseDns(lying)).toBeNull();
  });
});

describe('never throws on garbage', () => {
  it('every parser and decodeFrame accept any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
        for (const f of [parseEthernet, parseArp, parseIpv4, parseIcmp, parseUdp, parseTcp, parseDhcp, parseDns, decodeFrame]) f(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodeFrame survives mutated valid frames', () => {
    const src = parseIp('10.0.2.15');
    const dst = parseIp('10.0.2.2');
    const dns = buildDns({ id: 1, flags: 0x100, questions: [{ name: 'host', type: 1, class: 1 }] });
    const base = buildEthernet({ dst: B, src: A, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src, dst, protocol: IPPROTO_UDP, payload: buildUdp({ src, dst, srcPort: 5000, dstPort: 53, payload: dns }) }) });
    expect(decodeFrame(base)!.dns!.questions[0].name).toBe('host');
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(base.length), (muts, cut) => {
        const f = base.slice(0, Math.max(cut, 1));
        for (const [i, v] of muts) if (i < f.length) f[i] = v;
        decodeFrame(f);
      }),
      { numRuns: 2000 },
    );
  });
});
