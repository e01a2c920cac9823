/**
 * Counterexamples the relay fuzz campaign found, replayed exactly (see gateway-properties.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  buildDns,
  buildEthernet,
  buildIpv4,
  buildUdp,
  decodeFrame,
  DNS_TYPE_A,
  ETHERTYPE_IPV4,
  IPPROTO_UDP,
  parseIp,
} from '../../wire/index.ts';
import { Gateway } from '../gateway.ts';
import { SwitchRoom } from '../switch.ts';
import { FakeGuest, GW_IP, GW_MAC } from '../testing.ts';
import { gatewayCase } from './gateway-properties.ts';
import { writeU16 } from '../../wire/bytes.ts';
import { checksumOf, onesSum } from '../../wire/checksum.ts';
import { parseMac } from '../../wire/ethernet.ts';
import { pseudoHeaderSumAt } from '../../wire/ipv4.ts';
import { tcpFrame } from '../../wire/testing/tcp-frames.ts';

/**
 * A 500-byte DNS query with 77 questions that all point (RFC 1035 compression) at one
 * 13-letter name. The gateway answered NOTIMP echoing every question: 1,500+ bytes of UDP,
 * a frame over the MTU that the switch dropped, and a 3× amplifier. Now the reply is held to
 * 512 bytes (TC set), as RFC 1035 4.2.1 wants without EDNS.
 */
function compressedQuery(questions: number): Uint8Array {
  const bytes = [0x8e, 0x8e, 0x01, 0x00, questions >> 8, questions & 0xff, 0, 0, 0, 0, 0, 0, 13, ...new Array<number>(13).fill(0x61), 0, 0, 1, 0, 1];
  for (let i = 1; i < questions; i++) bytes.push(0xc0, 12, 0, 1, 0, 1);
  return Uint8Array.from(bytes);
}

describe('relay fuzz regressions', () => {
  it('a 1515-byte super-segment (MSS 64) toward a stock guest is cut, not passed whole inside the VLAN tag allowance', () => {
    // The campaign's counterexample: untagged, IPv4 total length 1501, ACK, urgent pointer 64.
    // Its source address was mutated to one nobody leased (0.0.2.15), so the source guard let it by.
    const frame = tcpFrame(new Uint8Array(1461), { src: parseMac('52:54:00:00:00:02'), dst: parseMac('52:54:00:00:00:01'), seq: 1000, srcIp: 0x0000020f });
    writeU16(frame, 34 + 18, 64);
    writeU16(frame, 34 + 16, 0);
    writeU16(frame, 34 + 16, checksumOf(onesSum(frame, 34, frame.length, pseudoHeaderSumAt(frame, 14, 6, frame.length - 34))));
    expect(frame.length).toBe(1515);
    expect(() => gatewayCase([frame], false, undefined, true)).not.toThrow();
  });

  it('a DNS query whose questions point at one name gets a reply of at most 512 bytes with TC', () => {
    const room = new SwitchRoom('lab', { maxFrameBytes: 1514 });
    const gw = new Gateway(room, { nat: 'off' });
    try {
      const guest = new FakeGuest(room, '52:54:00:00:00:02', '10.0.2.16');
      guest.udp(GW_IP, 40000, 53, compressedQuery(77));
      const [reply] = guest.take();
      expect(reply?.dns).toBeDefined();
      expect(reply.udp!.payload.length).toBeLessThanOrEqual(512);
      expect(reply.dns!.flags & 0x0200).toBe(0x0200); // TC
      expect(reply.dns!.id).toBe(0x8e8e);
      expect(room.stats().drops['too-big']).toBeUndefined();
      expect(gw.stats().counts['dns-truncated']).toBe(1);
    } finally {
      gw.close();
    }
  });

  it("answers with NAT 'all' stay within 512 bytes too (16 addresses for a 250-character name)", async () => {
    const room = new SwitchRoom('lab', { maxFrameBytes: 1514 });
    const gw = new Gateway(room, { nat: 'all', lookup: async () => Array.from({ length: 16 }, (_, i) => 0x01020300 + i) });
    try {
      const guest = new FakeGuest(room, '52:54:00:00:00:02', '10.0.2.16');
      const name = Array.from({ length: 5 }, () => 'b'.repeat(49)).join('.');
      guest.udp(GW_IP, 40000, 53, buildDns({ id: 9, flags: 0x0100, questions: [{ name, type: DNS_TYPE_A, class: 1 }] }));
      const reply = await guest.waitFor((d) => d.dns?.id === 9);
      expect(reply.udp!.payload.length).toBeLessThanOrEqual(512);
      expect(reply.dns!.flags & 0x0200).toBe(0x0200);
      expect(reply.dns!.questions.map((q) => q.name)).toEqual([name]);
    } finally {
      gw.close();
    }
  });

  it('replays the campaign counterexample (77 compressed questions, then a SYN)', () => {
    const src = { dst: GW_MAC, src: Uint8Array.of(0x52, 0x54, 0, 0, 0, 2), etherType: ETHERTYPE_IPV4 };
    const ip = { src: parseIp('10.0.2.16'), dst: GW_IP };
    const query = buildEthernet({ ...src, payload: buildIpv4({ ...ip, protocol: IPPROTO_UDP, payload: buildUdp({ ...ip, srcPort: 40000, dstPort: 53, payload: compressedQuery(77) }) }) });
    expect(decodeFrame(query)?.dns?.questions).toHaveLength(77);
    expect(() => gatewayCase([query], false)).not.toThrow();
  });
});
