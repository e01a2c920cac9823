import { describe, expect, it } from 'vitest';
import { BROADCAST_MAC, ETHERTYPE_IPV4, ETHERTYPE_QINQ, ETHERTYPE_VLAN, buildEthernet, isMulticastMac, isVlanTagged, macFromKey, macKey, macToString, maxFrameLength, parseEthernet, parseMac } from './ethernet.ts';

const A = parseMac('52:54:00:12:34:56');

describe('MAC addresses', () => {
  it('parses and prints MACs, tells group addresses', () => {
    expect(macToString(A)).toBe('52:54:00:12:34:56');
    expect(() => parseMac('52:54:00:12:34')).toThrow();
    expect(isMulticastMac(BROADCAST_MAC)).toBe(true);
    expect(isMulticastMac(parseMac('01:00:5e:00:00:01'))).toBe(true);
    expect(isMulticastMac(A)).toBe(false);
  });

  it('macKey is exact and distinct, and macFromKey inverts it', () => {
    expect(macKey(BROADCAST_MAC)).toBe(2 ** 48 - 1);
    expect(macKey(A)).toBe(0x525400123456);
    expect(macKey(parseMac('00:00:00:80:00:00'))).toBe(0x800000);
    expect(macKey(parseMac('00:00:80:00:00:00'))).toBe(0x80000000);
    for (const m of [A, BROADCAST_MAC, parseMac('00:00:80:00:00:01')]) expect(macToString(macFromKey(macKey(m)))).toBe(macToString(m));
  });
});

describe('Ethernet', () => {
  it('pads to a minimum length and parses back', () => {
    const f = buildEthernet({ dst: BROADCAST_MAC, src: A, etherType: ETHERTYPE_IPV4, payload: Uint8Array.of(1, 2) }, 60);
    expect(f.length).toBe(60);
    const e = parseEthernet(f)!;
    expect([e.etherType, macToString(e.src), e.payload.length, e.payload[1]]).toEqual([ETHERTYPE_IPV4, macToString(A), 46, 2]);
    expect(parseEthernet(f.subarray(0, 13))).toBeNull();
  });
});

describe('802.1Q', () => {
  const frame = (type: number, length: number) => buildEthernet({ dst: BROADCAST_MAC, src: BROADCAST_MAC, etherType: type, payload: new Uint8Array(length - 14) });
  it('a VLAN tag adds 4 bytes to the longest frame an MTU allows, once', () => {
    expect(maxFrameLength(frame(ETHERTYPE_IPV4, 100), 1500)).toBe(1514);
    expect(maxFrameLength(frame(ETHERTYPE_VLAN, 100), 1500)).toBe(1518);
    expect(maxFrameLength(frame(ETHERTYPE_QINQ, 100), 1500)).toBe(1518);
    expect(isVlanTagged(frame(ETHERTYPE_VLAN, 60))).toBe(true);
    expect(isVlanTagged(frame(ETHERTYPE_IPV4, 60))).toBe(false);
    expect(maxFrameLength(new Uint8Array(10), 1500)).toBe(1514);
  });
});
