/** TCP (RFC 9293) segments: header, the options the lab uses (MSS, window scale, SACK-permitted, timestamps). */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { checksumOf, onesSum, pseudoHeaderSum } from './checksum.ts';
import { IPPROTO_TCP } from './ipv4.ts';

/** Header without options; data offset makes it up to 60. */
export const TCP_HEADER_LEN = 20;
/** Offsets of the sequence number, flags and checksum fields (the NIC's TSO rewrites them). */
export const TCP_SEQ = 4;
export const TCP_FLAGS = 13;
export const TCP_CHECKSUM = 16;
export const TCP_URGENT = 18;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WINDOW_SCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_TIMESTAMP = 8;

export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  timestamp?: { value: number; echo: number };
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  headerLength: number;
  flags: number;
  window: number;
  checksum: number;
  urgent: number;
  options: TcpOptions;
  payload: Uint8Array;
}

/** Options we know; unknown ones are skipped, a malformed length ends the walk (≤ 40 bytes). */
export function parseTcpOptions(b: Uint8Array): TcpOptions {
  const o: TcpOptions = {};
  let i = 0;
  while (i < b.length) {
    const kind = b[i];
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= b.length) break;
    const len = b[i + 1];
    if (len < 2 || i + len > b.length) break;
    if (kind === OPT_MSS && len === 4) o.mss = readU16(b, i + 2);
    else if (kind === OPT_WINDOW_SCALE && len === 3) o.windowScale = b[i + 2];
    else if (kind === OPT_SACK_PERMITTED && len === 2) o.sackPermitted = true;
    else if (kind === OPT_TIMESTAMP && len === 10) o.timestamp = { value: readU32(b, i + 2), echo: readU32(b, i + 6) };
    i += len;
  }
  return o;
}

/** `b` is the IP payload (header + data); length is taken from the IP layer. */
export function parseTcp(b: Uint8Array): TcpSegment | null {
  if (b.length < TCP_HEADER_LEN) return null;
  const headerLength = (b[12] >> 4) * 4;
  if (headerLength < TCP_HEADER_LEN || headerLength > b.length) return null;
  return {
    srcPort: readU16(b, 0),
    dstPort: readU16(b, 2),
    seq: readU32(b, TCP_SEQ),
    ack: readU32(b, 8),
    headerLength,
    flags: b[TCP_FLAGS],
    window: readU16(b, 14),
    checksum: readU16(b, TCP_CHECKSUM),
    urgent: readU16(b, 18),
    options: parseTcpOptions(b.subarray(TCP_HEADER_LEN, headerLength)),
    payload: b.subarray(headerLength),
  };
}

export interface TcpBuild {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** The urgent pointer field (default 0); without URG it carries no TCP meaning (link-hello.ts gives it one). */
  urgent?: number;
  options?: TcpOptions;
  payload?: Uint8Array;
}

function encodeTcpOptions(o: TcpOptions | undefined): number[] {
  const bytes: number[] = [];
  if (!o) return bytes;
  if (o.mss !== undefined) bytes.push(OPT_MSS, 4, o.mss >>> 8, o.mss & 0xff);
  if (o.sackPermitted) bytes.push(OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2);
  if (o.windowScale !== undefined) bytes.push(OPT_NOP, OPT_WINDOW_SCALE, 3, o.windowScale);
  if (o.timestamp) {
    const t = new Uint8Array(8);
    writeU32(t, 0, o.timestamp.value >>> 0);
    writeU32(t, 4, o.timestamp.echo >>> 0);
    bytes.push(OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10, ...t);
  }
  while (bytes.length % 4) bytes.push(OPT_END);
  return bytes;
}

export function buildTcp(p: TcpBuild): Uint8Array {
  const payload = p.payload ?? new Uint8Array(0);
  const hl = tcpHeaderLength(p.options);
  const out = new Uint8Array(hl + payload.length);
  out.set(payload, hl);
  writeTcpHeader(out, 0, p, payload.length);
  return out;
}

/** Bytes of a TCP header carrying `options`. */
export function tcpHeaderLength(options?: TcpOptions): number {
  return TCP_HEADER_LEN + encodeTcpOptions(options).length;
}

/**
 * The header (options and checksum included) of a segment whose `payloadLength` bytes are
 * already in place after it, at out[at]: how a segment is built in place in a frame.
 */
export function writeTcpHeader(out: Uint8Array, at: number, p: Omit<TcpBuild, 'payload'>, payloadLength: number): void {
  const opts = encodeTcpOptions(p.options);
  const hl = TCP_HEADER_LEN + opts.length;
  writeU16(out, at, p.srcPort);
  writeU16(out, at + 2, p.dstPort);
  writeU32(out, at + TCP_SEQ, p.seq >>> 0);
  writeU32(out, at + 8, p.ack >>> 0);
  out[at + 12] = (hl / 4) << 4;
  out[at + TCP_FLAGS] = p.flags;
  writeU16(out, at + 14, p.window);
  out[at + TCP_CHECKSUM] = out[at + TCP_CHECKSUM + 1] = 0;
  writeU16(out, at + TCP_URGENT, p.urgent ?? 0);
  out.set(opts, at + TCP_HEADER_LEN);
  const end = at + hl + payloadLength;
  writeU16(out, at + TCP_CHECKSUM, checksumOf(onesSum(out, at, end, pseudoHeaderSum(p.src, p.dst, IPPROTO_TCP, hl + payloadLength))));
}
