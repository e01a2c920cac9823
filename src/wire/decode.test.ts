import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseArp } from './arp.ts';
import { decodeFrame } from './decode.ts';
import { parseDhcp } from './dhcp.ts';
import { buildDns, parseDns } from './dns.ts';
import { ETHERTYPE_IPV4, buildEthernet, parseEthernet, parseMac } from './ethernet.ts';
import { parseIcmp } from './icmp.ts';
import { IPPROTO_UDP, buildIpv4, parseIp, parseIpv4 } from './ipv4.ts';
import { parseTcp } from './tcp.ts';
import { buildUdp, parseUdp } from './udp.ts';

const A = parseMac('52:54:00:12:34:56');
const B = parseMac('52:55:0a:00:02:02');

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
