import { describe, expect, it } from 'vitest';
import { ARP_REQUEST, buildArp, parseArp } from './arp.ts';
import { BROADCAST_MAC, ETHERTYPE_ARP, buildEthernet, macToString, parseEthernet, parseMac } from './ethernet.ts';
import { decodeFrame } from './decode.ts';
import { ipToString, parseIp } from './ipv4.ts';

const A = parseMac('52:54:00:12:34:56');

describe('ARP', () => {
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

  it('refuses other hardware or protocol types and short packets', () => {
    const arp = buildArp({ op: ARP_REQUEST, senderMac: A, senderIp: 1, targetMac: A, targetIp: 2 });
    expect(parseArp(arp.subarray(0, 27))).toBeNull();
    for (const at of [1, 2, 4, 5]) {
      const bad = arp.slice();
      bad[at] ^= 1;
      expect(parseArp(bad)).toBeNull();
    }
  });
});
