/** DNS messages (RFC 1035): parsing with name compression, building without it. */
import { readU16, readU32 } from './bytes.ts';

export const DNS_PORT = 53;
/** Largest DNS message over UDP without EDNS (RFC 1035 4.2.1). */
export const DNS_UDP_MAX = 512;
export const DNS_HEADER_LEN = 12;

export const DNS_TYPE_A = 1;
export const DNS_TYPE_CNAME = 5;
export const DNS_TYPE_PTR = 12;
export const DNS_TYPE_AAAA = 28;
export const DNS_CLASS_IN = 1;
export const DNS_RCODE_NOERROR = 0;
export const DNS_RCODE_FORMERR = 1;
export const DNS_RCODE_SERVFAIL = 2;
export const DNS_RCODE_NXDOMAIN = 3;
export const DNS_RCODE_NOTIMP = 4;
export const DNS_RCODE_REFUSED = 5;

/** Header flag bits: response, authoritative, truncated, recursion desired / available. */
export const DNS_FLAG_QR = 0x8000;
export const DNS_FLAG_AA = 0x0400;
export const DNS_FLAG_TC = 0x0200;
export const DNS_FLAG_RD = 0x0100;
export const DNS_FLAG_RA = 0x0080;

/** A name is at most 255 bytes on the wire; pointers followed per name are capped. */
const MAX_NAME = 255;
const MAX_POINTERS = 32;
const MAX_LABEL = 63;

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: Uint8Array;
}

export interface DnsMessage {
  id: number;
  /** The raw 16-bit flags word. */
  flags: number;
  isResponse: boolean;
  opcode: number;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** Reads a (possibly compressed) name; returns [name, offset after it] or null. */
function readDnsName(b: Uint8Array, start: number): [string, number] | null {
  const labels: string[] = [];
  let i = start;
  let end = -1;
  let jumps = 0;
  let total = 0;
  for (;;) {
    if (i >= b.length) return null;
    const len = b[i];
    if (len === 0) {
      i++;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (i + 1 >= b.length || ++jumps > MAX_POINTERS) return null;
      if (end < 0) end = i + 2;
      i = ((len & 0x3f) << 8) | b[i + 1];
      continue;
    }
    if (len & 0xc0) return null;
    if (i + 1 + len > b.length) return null;
    total += len + 1;
    if (total > MAX_NAME) return null;
    let label = '';
    for (let k = 0; k < len; k++) label += String.fromCharCode(b[i + 1 + k]);
    labels.push(label);
    i += 1 + len;
  }
  return [labels.join('.'), end >= 0 ? end : i];
}

export function parseDns(b: Uint8Array): DnsMessage | null {
  if (b.length < DNS_HEADER_LEN) return null;
  const flags = readU16(b, 2);
  const counts = [readU16(b, 4), readU16(b, 6), readU16(b, 8), readU16(b, 10)];
  // Each question takes ≥ 5 bytes, each record ≥ 11: reject counts the message cannot hold.
  if (counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * 11 > b.length - DNS_HEADER_LEN) return null;
  let off = DNS_HEADER_LEN;
  const questions: DnsQuestion[] = [];
  for (let q = 0; q < counts[0]; q++) {
    const r = readDnsName(b, off);
    if (!r || r[1] + 4 > b.length) return null;
    off = r[1];
    questions.push({ name: r[0], type: readU16(b, off), class: readU16(b, off + 2) });
    off += 4;
  }
  const sections: DnsRecord[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let k = 0; k < counts[s + 1]; k++) {
      const r = readDnsName(b, off);
      if (!r || r[1] + 10 > b.length) return null;
      off = r[1];
      const rdlen = readU16(b, off + 8);
      if (off + 10 + rdlen > b.length) return null;
      sections[s].push({
        name: r[0],
        type: readU16(b, off),
        class: readU16(b, off + 2),
        ttl: readU32(b, off + 4),
        data: b.subarray(off + 10, off + 10 + rdlen),
      });
      off += 10 + rdlen;
    }
  }
  return {
    id: readU16(b, 0),
    flags,
    isResponse: (flags & DNS_FLAG_QR) !== 0,
    opcode: (flags >> 11) & 0xf,
    rcode: flags & 0xf,
    questions,
    answers: sections[0],
    authorities: sections[1],
    additionals: sections[2],
  };
}

function encodeDnsName(name: string): number[] {
  const out: number[] = [];
  for (const label of name.split('.').filter((l) => l.length > 0)) {
    const bytes = Array.from(label.slice(0, MAX_LABEL), (c) => c.charCodeAt(0) & 0xff);
    out.push(bytes.length, ...bytes);
  }
  out.push(0);
  return out;
}

export interface DnsBuild {
  id: number;
  /** The full flags word (QR, opcode, AA, TC, RD, RA, rcode). */
  flags: number;
  questions: DnsQuestion[];
  answers?: DnsRecord[];
}

/** Builds a DNS message without name compression. */
export function buildDns(p: DnsBuild): Uint8Array {
  const bytes: number[] = [];
  const u16 = (n: number) => bytes.push((n >>> 8) & 0xff, n & 0xff);
  u16(p.id);
  u16(p.flags);
  u16(p.questions.length);
  u16(p.answers?.length ?? 0);
  u16(0);
  u16(0);
  for (const q of p.questions) {
    bytes.push(...encodeDnsName(q.name));
    u16(q.type);
    u16(q.class);
  }
  for (const a of p.answers ?? []) {
    bytes.push(...encodeDnsName(a.name));
    u16(a.type);
    u16(a.class);
    u16(a.ttl >>> 16);
    u16(a.ttl & 0xffff);
    u16(a.data.length);
    bytes.push(...a.data);
  }
  return new Uint8Array(bytes);
}
