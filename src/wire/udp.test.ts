import { describe, expect, it } from 'vitest';
import { verifyTransportChecksum } from './checksum.ts';
import { IPPROTO_UDP, parseIp } from './ipv4.ts';
import { buildUdp, parseUdp } from './udp.ts';

describe('UDP', () => {
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
});
