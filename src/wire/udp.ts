/** UDP (RFC 768). */
import { readU16, writeU16 } from './bytes.ts';
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';
import { IPPROTO_UDP } from './ipv4.ts';

export const UDP_HEADER_LEN = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  length: number;
  checksum: number;
  payload: Uint8Array;
}

/** `payload` is a view cut to the header's length; null if that length does not fit. */
export function parseUdp(b: Uint8Array): UdpDatagram | null {
  if (b.length < UDP_HEADER_LEN) return null;
  const length = readU16(b, 4);
  if (length < UDP_HEADER_LEN || length > b.length) return null;
  return { srcPort: readU16(b, 0), dstPort: readU16(b, 2), length, checksum: readU16(b, 6), payload: b.subarray(UDP_HEADER_LEN, length) };
}

/** UDP header + payload with the pseudo-header checksum (0 is sent as 0xffff). */
export function buildUdp(p: { src: number; dst: number; srcPort: number; dstPort: number; payload: Uint8Array }): Uint8Array {
  const out = new Uint8Array(UDP_HEADER_LEN + p.payload.length);
  writeU16(out, 0, p.srcPort);
  writeU16(out, 2, p.dstPort);
  writeU16(out, 4, out.length);
  out.set(p.payload, UDP_HEADER_LEN);
  const c = internetChecksum(out, pseudoHeaderSum(p.src, p.dst, IPPROTO_UDP, out.length));
  writeU16(out, 6, c === 0 ? 0xffff : c);
  return out;
}
