/** TCP/IPv4 frames for tests: a segment, and a super-segment (its MSS in the urgent pointer). */
import { ETHERTYPE_IPV4, buildEthernet, parseMac } from '../ethernet.ts';
import { IPPROTO_TCP, buildIpv4 } from '../ipv4.ts';
import { TCP_ACK, buildTcp } from '../tcp.ts';

export const TEST_SRC_IP = 0x0a00020f; // 10.0.2.15
export const TEST_DST_IP = 0x0a000202; // 10.0.2.2

/** Deterministic payload bytes. */
export const testBytes = (n: number, salt = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8) + salt) & 0xff);

export interface TcpFrameOptions {
  dst?: Uint8Array;
  src?: Uint8Array;
  flags?: number;
  seq?: number;
  /** The urgent pointer field: a super-segment's MSS. */
  urgent?: number;
  srcIp?: number;
}

/** One TCP/IPv4 frame carrying `payload`, checksums right. */
export function tcpFrame(payload: Uint8Array, o: TcpFrameOptions = {}): Uint8Array {
  const srcIp = o.srcIp ?? TEST_SRC_IP;
  const tcp = buildTcp({ src: srcIp, dst: TEST_DST_IP, srcPort: 40000, dstPort: 8080, seq: o.seq ?? 1000, ack: 1, flags: o.flags ?? TCP_ACK, window: 1000, urgent: o.urgent, payload });
  const ip = buildIpv4({ src: srcIp, dst: TEST_DST_IP, protocol: IPPROTO_TCP, payload: tcp, id: 7 });
  return buildEthernet({ dst: o.dst ?? parseMac('52:54:00:00:00:02'), src: o.src ?? parseMac('52:54:00:00:00:01'), etherType: ETHERTYPE_IPV4, payload: ip });
}
