import { describe, expect, it } from 'vitest';
import { buildEthernet, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseMac } from './ethernet.ts';
import { ICMP_ECHO_REQUEST, buildIcmp, parseIcmp } from './icmp.ts';
import { IPPROTO_ICMP, IPPROTO_UDP, buildIpv4, ipToString, ipv4HeaderChecksumOk, ipv4Layout, parseIp, parseIpv4, setIpv4HeaderChecksum } from './ipv4.ts';

describe('IPv4 addresses', () => {
  it('parses and prints IPs', () => {
    expect(ipToString(parseIp('10.0.2.15'))).toBe('10.0.2.15');
    expect(parseIp('255.255.255.255')).toBe(0xffffffff);
    expect(() => parseIp('1.2.3')).toThrow();
    expect(() => parseIp('1.2.3.256')).toThrow();
  });
});

describe('IPv4 / ICMP', () => {
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

  it('ipv4Layout finds the headers in a frame, refuses what is not IPv4, marks fragments', () => {
    const mac = parseMac('52:54:00:00:00:01');
    const ip = buildIpv4({ src: 1, dst: 2, protocol: IPPROTO_UDP, payload: new Uint8Array(8), flags: 1 });
    const frame = buildEthernet({ dst: mac, src: mac, etherType: ETHERTYPE_IPV4, payload: ip }, 60);
    expect(ipv4Layout(frame)).toEqual({ ip: 14, l4: 34, end: 42, protocol: IPPROTO_UDP, fragment: true });
    expect(ipv4HeaderChecksumOk(frame, ipv4Layout(frame)!)).toBe(true);
    frame[22] = 1; // TTL changed: the header checksum no longer holds until recomputed
    expect(ipv4HeaderChecksumOk(frame, ipv4Layout(frame)!)).toBe(false);
    setIpv4HeaderChecksum(frame, 14, 34);
    expect(ipv4HeaderChecksumOk(frame, ipv4Layout(frame)!)).toBe(true);
    expect(ipv4Layout(buildEthernet({ dst: mac, src: mac, etherType: ETHERTYPE_ARP, payload: ip }))).toBeUndefined();
    expect(ipv4Layout(frame.subarray(0, 41))).toBeUndefined(); // datagram longer than the frame
  });
});
