/** ICMP (RFC 792): echo for ping, destination unreachable for refused NAT. */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { internetChecksum, sumVerifies } from './checksum.ts';

export const ICMP_HEADER_LEN = 8;
export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
/** Destination unreachable code: communication administratively prohibited (RFC 1812). */
export const ICMP_UNREACH_ADMIN_PROHIBITED = 13;

export interface IcmpPacket {
  type: number;
  code: number;
  checksum: number;
  checksumOk: boolean;
  /** The 4 bytes after the checksum (id/sequence for echo). */
  restOfHeader: number;
  id: number;
  seq: number;
  data: Uint8Array;
}

export function parseIcmp(b: Uint8Array): IcmpPacket | null {
  if (b.length < ICMP_HEADER_LEN) return null;
  return {
    type: b[0],
    code: b[1],
    checksum: readU16(b, 2),
    checksumOk: sumVerifies(b, 0, b.length),
    restOfHeader: readU32(b, 4),
    id: readU16(b, 4),
    seq: readU16(b, 6),
    data: b.subarray(ICMP_HEADER_LEN),
  };
}

export function buildIcmp(p: { type: number; code?: number; id?: number; seq?: number; restOfHeader?: number; data?: Uint8Array }): Uint8Array {
  const data = p.data ?? new Uint8Array(0);
  const out = new Uint8Array(ICMP_HEADER_LEN + data.length);
  out[0] = p.type;
  out[1] = p.code ?? 0;
  if (p.restOfHeader !== undefined) writeU32(out, 4, p.restOfHeader >>> 0);
  else {
    writeU16(out, 4, p.id ?? 0);
    writeU16(out, 6, p.seq ?? 0);
  }
  out.set(data, ICMP_HEADER_LEN);
  writeU16(out, 2, internetChecksum(out));
  return out;
}
