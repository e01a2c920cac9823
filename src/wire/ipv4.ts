/**
 * IPv4 (RFC 791): addresses, protocol numbers, header parsing and building, and a
 * zero-allocation view of the header inside an Ethernet frame for the NIC's offloads.
 * Addresses are unsigned 32-bit numbers (10.0.2.2 = 0x0a000202).
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { checksumOf, foldSum, internetChecksum, onesSum, pseudoHeaderSum, sumVerifies } from './checksum.ts';
import { ETH_HLEN, ETHERTYPE_IPV4, etherTypeOf } from './ethernet.ts';

/** Header without options; with options it is up to 60 bytes (IHL 15). */
export const IPV4_HEADER_LEN = 20;
/** Offsets of the source and destination addresses in the header. */
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IP_BROADCAST = 0xffffffff;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** The 3 flag bits: don't fragment, more fragments. */
export const IPV4_FLAG_DF = 0x2;
export const IPV4_FLAG_MF = 0x1;

/** "10.0.2.2" → 0x0a000202; throws on a malformed string. */
export function parseIp(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new Error(`bad IPv4 address "${s}"`);
  return parts.reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0);
}

export function ipToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

export interface Ipv4Packet {
  headerLength: number;
  tos: number;
  totalLength: number;
  id: number;
  /** The 3 flag bits (IPV4_FLAG_DF, IPV4_FLAG_MF). */
  flags: number;
  /** In 8-byte units. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  /** Header checksum verifies. */
  checksumOk: boolean;
  src: number;
  dst: number;
  options: Uint8Array;
  /** Exactly totalLength - headerLength bytes (Ethernet padding cut off). */
  payload: Uint8Array;
}

/** Views into `b`; null if the version is not 4 or the length fields do not fit. */
export function parseIpv4(b: Uint8Array): Ipv4Packet | null {
  if (b.length < IPV4_HEADER_LEN) return null;
  if (b[0] >> 4 !== 4) return null;
  const headerLength = (b[0] & 0xf) * 4;
  if (headerLength < IPV4_HEADER_LEN || headerLength > b.length) return null;
  const totalLength = readU16(b, 2);
  if (totalLength < headerLength || totalLength > b.length) return null;
  const ff = readU16(b, 6);
  return {
    headerLength,
    tos: b[1],
    totalLength,
    id: readU16(b, 4),
    flags: ff >>> 13,
    fragmentOffset: ff & 0x1fff,
    ttl: b[8],
    protocol: b[9],
    checksum: readU16(b, 10),
    checksumOk: sumVerifies(b, 0, headerLength),
    src: readU32(b, IPV4_SRC),
    dst: readU32(b, IPV4_DST),
    options: b.subarray(IPV4_HEADER_LEN, headerLength),
    payload: b.subarray(headerLength, totalLength),
  };
}

/** The header bytes of a parsed packet (ICMP errors quote them), a view of the input. */
export function ipv4HeaderBytes(ip: Ipv4Packet): Uint8Array {
  return new Uint8Array(ip.payload.buffer, ip.payload.byteOffset - ip.headerLength, ip.headerLength);
}

export interface Ipv4Build {
  src: number;
  dst: number;
  protocol: number;
  payload: Uint8Array;
  ttl?: number;
  id?: number;
  tos?: number;
  /** Default IPV4_FLAG_DF. */
  flags?: number;
}

export function buildIpv4(p: Ipv4Build): Uint8Array {
  const out = new Uint8Array(IPV4_HEADER_LEN + p.payload.length);
  writeIpv4Header(out, 0, p, p.payload.length);
  out.set(p.payload, IPV4_HEADER_LEN);
  return out;
}

/**
 * A 20-byte IPv4 header (checksum included) at out[at], for `payloadLength` bytes that follow
 * it: how a datagram is built in place, in front of a payload already in the buffer.
 */
export function writeIpv4Header(out: Uint8Array, at: number, p: Omit<Ipv4Build, 'payload'>, payloadLength: number): void {
  out[at] = 0x40 | (IPV4_HEADER_LEN / 4);
  out[at + 1] = p.tos ?? 0;
  writeU16(out, at + 2, IPV4_HEADER_LEN + payloadLength);
  writeU16(out, at + 4, p.id ?? 0);
  writeU16(out, at + 6, (p.flags ?? IPV4_FLAG_DF) << 13);
  out[at + 8] = p.ttl ?? 64;
  out[at + 9] = p.protocol;
  out[at + 10] = out[at + 11] = 0;
  writeU32(out, at + IPV4_SRC, p.src >>> 0);
  writeU32(out, at + IPV4_DST, p.dst >>> 0);
  writeU16(out, at + 10, internetChecksum(out.subarray(at, at + IPV4_HEADER_LEN)));
}

// ------------------------------------------------------------- in place, inside a frame

/** Where an untagged Ethernet frame's IPv4 header and payload are, if it carries one. */
export interface Ipv4Layout {
  /** Offset of the IPv4 header and of the L4 header. */
  ip: number;
  l4: number;
  /** End of the IP datagram (total length), ≤ frame length (Ethernet padding excluded). */
  end: number;
  protocol: number;
  /** MF set or a nonzero fragment offset: the L4 checksum covers other frames too. */
  fragment: boolean;
}

/** The NIC's per-frame look at IPv4: offsets only, nothing allocated but the result. */
export function ipv4Layout(frame: Uint8Array): Ipv4Layout | undefined {
  const ip = ETH_HLEN;
  if (frame.length < ip + IPV4_HEADER_LEN) return undefined;
  if (etherTypeOf(frame) !== ETHERTYPE_IPV4) return undefined;
  if (frame[ip] >> 4 !== 4) return undefined;
  const ihl = (frame[ip] & 0x0f) * 4;
  const totalLength = readU16(frame, ip + 2);
  if (ihl < IPV4_HEADER_LEN || totalLength < ihl || ip + totalLength > frame.length) return undefined;
  return {
    ip,
    l4: ip + ihl,
    end: ip + totalLength,
    protocol: frame[ip + 9],
    fragment: (readU16(frame, ip + 6) & 0x3fff) !== 0,
  };
}

export function ipv4HeaderChecksumOk(frame: Uint8Array, l: Ipv4Layout): boolean {
  return foldSum(onesSum(frame, l.ip, l.l4)) === 0xffff;
}

/** Recompute the IPv4 header checksum (header at frame[ip, l4)) in place. */
export function setIpv4HeaderChecksum(frame: Uint8Array, ip: number, l4: number): void {
  frame[ip + 10] = 0;
  frame[ip + 11] = 0;
  writeU16(frame, ip + 10, checksumOf(onesSum(frame, ip, l4)));
}

/** pseudoHeaderSum with the addresses read from the IPv4 header at frame[ip]. */
export function pseudoHeaderSumAt(frame: Uint8Array, ip: number, protocol: number, l4Length: number): number {
  return pseudoHeaderSum(readU32(frame, ip + IPV4_SRC), readU32(frame, ip + IPV4_DST), protocol, l4Length);
}
