import { describe, expect, it } from 'vitest';
import { verifyTransportChecksum } from './checksum.ts';
import { IPPROTO_TCP, parseIp } from './ipv4.ts';
import { TCP_ACK, TCP_SYN, buildTcp, parseTcp } from './tcp.ts';

describe('TCP', () => {
  const src = parseIp('10.0.2.15');
  const dst = parseIp('10.0.2.2');
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
