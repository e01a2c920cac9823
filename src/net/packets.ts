/**
 * Parsing and building of the packets the lab's network carries: Ethernet II, ARP, IPv4,
 * ICMP, UDP, TCP, DHCP (BOOTP) and DNS, plus the Internet checksum.
 *
 * Shared by the relay (Node) and the page's frame inspector (browser): plain
 * Uint8Array/DataView, no Node APIs. Parsers never throw on guest input: they return null
 * when a header is truncated or its length fields do not fit, and every payload they
 * return is a view (subarray) of the input, not a copy. Builders return fresh arrays with
 * checksums filled in. IPv4 addresses are unsigned 32-bit numbers (10.0.2.2 = 0x0a000202);
 * MAC addresses are 6-byte Uint8Arrays.
 */

// ---------------------------------------------------------------- addresses

export const ETH_HEADER_LEN = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
export const ZERO_MAC: Uint8Array = new Uint8Array(6);
export const IP_BROADCAST = 0xffffffff;

/** "52:55:0a:00:02:02" → bytes; throws on a malformed string (configuration, not guest input). */
export function parseMac(s: string): Uint8Array {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`bad MAC address "${s}"`);
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

export function macToString(b: Uint8Array, offset = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + (b[offset + i] ?? 0).toString(16).padStart(2, '0');
  return s;
}

/** The 48-bit MAC at `offset` as a number (exact: < 2^53), handy as a Map key. */
export function macKey(b: Uint8Array, offset = 0): number {
  return (b[offset] * 2 ** 40 + b[offset + 1] * 2 ** 32 + ((b[offset + 2] << 24) >>> 0)) + ((b[offset + 3] << 16) | (b[offset + 4] << 8) | b[offset + 5]);
}

/** Group bit set: broadcast or multicast. */
export function isMulticastMac(b: Uint8Array, offset = 0): boolean {
  return (b[offset] & 1) === 1;
}

export function macEquals(a: Uint8Array, b: Uint8Array, aOff = 0, bOff = 0): boolean {
  for (let i = 0; i < 6; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** "10.0.2.2" → 0x0a000202; throws on a malformed string. */
export function parseIp(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new Error(`bad IPv4 address "${s}"`);
  return parts.reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0);
}

export function ipToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// ---------------------------------------------------------------- checksum

/** One's-complement sum of `data` folded to 16 bits, added to `initial` (not complemented). */
export function onesComplementSum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  const n = data.length;
  let i = 0;
  for (; i + 1 < n; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (i < n) sum += data[i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** RFC 1071 Internet checksum of `data` (with `initial` as a partial sum, e.g. a pseudo-header). */
export function internetChecksum(data: Uint8Array, initial = 0): number {
  return ~onesComplementSum(data, initial) & 0xffff;
}

/** Partial sum of the TCP/UDP IPv4 pseudo-header. */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  let sum = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** True if a TCP/UDP segment (header+payload, checksum field included) sums correctly. */
export function verifyTransportChecksum(src: number, dst: number, protocol: number, segment: Uint8Array): boolean {
  return onesComplementSum(segment, pseudoHeaderSum(src, dst, protocol, segment.length)) === 0xffff;
}

// ---------------------------------------------------------------- Ethernet

export interface EthernetFrame {
  dst: Uint8Array;
  src: Uint8Array;
  etherType: number;
  payload: Uint8Array;
}

export function parseEthernet(frame: Uint8Array): EthernetFrame | null {
  if (frame.length < ETH_HEADER_LEN) return null;
  return {
    dst: frame.subarray(0, 6),
    src: frame.subarray(6, 12),
    etherType: (frame[12] << 8) | frame[13],
    payload: frame.subarray(14),
  };
}

/** `minLength`: zero-pad the frame to at least this many bytes (60: Ethernet's minimum without FCS). */
export function buildEthernet(f: { dst: Uint8Array; src: Uint8Array; etherType: number; payload: Uint8Array }, minLength = 0): Uint8Array {
  const out = new Uint8Array(Math.max(minLength, ETH_HEADER_LEN + f.payload.length));
  out.set(f.dst.subarray(0, 6), 0);
  out.set(f.src.subarray(0, 6), 6);
  out[12] = f.etherType >>> 8;
  out[13] = f.etherType & 0xff;
  out.set(f.payload, 14);
  return out;
}

// ---------------------------------------------------------------- ARP

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
export const ARP_LEN = 28;

export interface ArpPacket {
  op: number;
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

/** Ethernet/IPv4 ARP only (htype 1, ptype 0x0800, hlen 6, plen 4). */
export function parseArp(b: Uint8Array): ArpPacket | null {
  if (b.length < ARP_LEN) return null;
  const v = view(b);
  if (v.getUint16(0) !== 1 || v.getUint16(2) !== ETHERTYPE_IPV4 || b[4] !== 6 || b[5] !== 4) return null;
  return {
    op: v.getUint16(6),
    senderMac: b.subarray(8, 14),
    senderIp: v.getUint32(14),
    targetMac: b.subarray(18, 24),
    targetIp: v.getUint32(24),
  };
}

export function buildArp(p: ArpPacket): Uint8Array {
  const out = new Uint8Array(ARP_LEN);
  const v = view(out);
  v.setUint16(0, 1);
  v.setUint16(2, ETHERTYPE_IPV4);
  out[4] = 6;
  out[5] = 4;
  v.setUint16(6, p.op);
  out.set(p.senderMac.subarray(0, 6), 8);
  v.setUint32(14, p.senderIp >>> 0);
  out.set(p.targetMac.subarray(0, 6), 18);
  v.setUint32(24, p.targetIp >>> 0);
  return out;
}

// ---------------------------------------------------------------- IPv4

export interface Ipv4Packet {
  headerLength: number;
  tos: number;
  totalLength: number;
  id: number;
  /** The 3 flag bits (0x2 = DF, 0x1 = MF). */
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

export function parseIpv4(b: Uint8Array): Ipv4Packet | null {
  if (b.length < 20) return null;
  if (b[0] >> 4 !== 4) return null;
  const headerLength = (b[0] & 0xf) * 4;
  if (headerLength < 20 || headerLength > b.length) return null;
  const v = view(b);
  const totalLength = v.getUint16(2);
  if (totalLength < headerLength || totalLength > b.length) return null;
  const ff = v.getUint16(6);
  return {
    headerLength,
    tos: b[1],
    totalLength,
    id: v.getUint16(4),
    flags: ff >>> 13,
    fragmentOffset: ff & 0x1fff,
    ttl: b[8],
    protocol: b[9],
    checksum: v.getUint16(10),
    checksumOk: onesComplementSum(b.subarray(0, headerLength)) === 0xffff,
    src: v.getUint32(12),
    dst: v.getUint32(16),
    options: b.subarray(20, headerLength),
    payload: b.subarray(headerLength, totalLength),
  };
}

export interface Ipv4Build {
  src: number;
  dst: number;
  protocol: number;
  payload: Uint8Array;
  ttl?: number;
  id?: number;
  tos?: number;
  /** Default 0x2 (DF). */
  flags?: number;
}

export function buildIpv4(p: Ipv4Build): Uint8Array {
  const out = new Uint8Array(20 + p.payload.length);
  const v = view(out);
  out[0] = 0x45;
  out[1] = p.tos ?? 0;
  v.setUint16(2, out.length);
  v.setUint16(4, p.id ?? 0);
  v.setUint16(6, (p.flags ?? 0x2) << 13);
  out[8] = p.ttl ?? 64;
  out[9] = p.protocol;
  v.setUint32(12, p.src >>> 0);
  v.setUint32(16, p.dst >>> 0);
  v.setUint16(10, internetChecksum(out.subarray(0, 20)));
  out.set(p.payload, 20);
  return out;
}

// ---------------------------------------------------------------- ICMP

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;

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
  if (b.length < 8) return null;
  const v = view(b);
  return {
    type: b[0],
    code: b[1],
    checksum: v.getUint16(2),
    checksumOk: onesComplementSum(b) === 0xffff,
    restOfHeader: v.getUint32(4),
    id: v.getUint16(4),
    seq: v.getUint16(6),
    data: b.subarray(8),
  };
}

export function buildIcmp(p: { type: number; code?: number; id?: number; seq?: number; restOfHeader?: number; data?: Uint8Array }): Uint8Array {
  const data = p.data ?? new Uint8Array(0);
  const out = new Uint8Array(8 + data.length);
  const v = view(out);
  out[0] = p.type;
  out[1] = p.code ?? 0;
  if (p.restOfHeader !== undefined) v.setUint32(4, p.restOfHeader >>> 0);
  else {
    v.setUint16(4, p.id ?? 0);
    v.setUint16(6, p.seq ?? 0);
  }
  out.set(data, 8);
  v.setUint16(2, internetChecksum(out));
  return out;
}

// ---------------------------------------------------------------- UDP

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  length: number;
  checksum: number;
  payload: Uint8Array;
}

export function parseUdp(b: Uint8Array): UdpDatagram | null {
  if (b.length < 8) return null;
  const v = view(b);
  const length = v.getUint16(4);
  if (length < 8 || length > b.length) return null;
  return { srcPort: v.getUint16(0), dstPort: v.getUint16(2), length, checksum: v.getUint16(6), payload: b.subarray(8, length) };
}

/** UDP header + payload with the pseudo-header checksum (0 is sent as 0xffff). */
export function buildUdp(p: { src: number; dst: number; srcPort: number; dstPort: number; payload: Uint8Array }): Uint8Array {
  const out = new Uint8Array(8 + p.payload.length);
  const v = view(out);
  v.setUint16(0, p.srcPort);
  v.setUint16(2, p.dstPort);
  v.setUint16(4, out.length);
  out.set(p.payload, 8);
  const c = internetChecksum(out, pseudoHeaderSum(p.src, p.dst, IPPROTO_UDP, out.length));
  v.setUint16(6, c === 0 ? 0xffff : c);
  return out;
}

// ---------------------------------------------------------------- TCP

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

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

export function parseTcpOptions(b: Uint8Array): TcpOptions {
  const o: TcpOptions = {};
  let i = 0;
  while (i < b.length) {
    const kind = b[i];
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= b.length) break;
    const len = b[i + 1];
    if (len < 2 || i + len > b.length) break;
    if (kind === 2 && len === 4) o.mss = (b[i + 2] << 8) | b[i + 3];
    else if (kind === 3 && len === 3) o.windowScale = b[i + 2];
    else if (kind === 4 && len === 2) o.sackPermitted = true;
    else if (kind === 8 && len === 10) {
      const v = view(b.subarray(i + 2, i + 10));
      o.timestamp = { value: v.getUint32(0), echo: v.getUint32(4) };
    }
    i += len;
  }
  return o;
}

/** `b` is the IP payload (header + data); length is taken from the IP layer. */
export function parseTcp(b: Uint8Array): TcpSegment | null {
  if (b.length < 20) return null;
  const headerLength = (b[12] >> 4) * 4;
  if (headerLength < 20 || headerLength > b.length) return null;
  const v = view(b);
  return {
    srcPort: v.getUint16(0),
    dstPort: v.getUint16(2),
    seq: v.getUint32(4),
    ack: v.getUint32(8),
    headerLength,
    flags: b[13],
    window: v.getUint16(14),
    checksum: v.getUint16(16),
    urgent: v.getUint16(18),
    options: parseTcpOptions(b.subarray(20, headerLength)),
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
  options?: TcpOptions;
  payload?: Uint8Array;
}

function encodeTcpOptions(o: TcpOptions | undefined): Uint8Array {
  if (!o) return new Uint8Array(0);
  const bytes: number[] = [];
  if (o.mss !== undefined) bytes.push(2, 4, o.mss >>> 8, o.mss & 0xff);
  if (o.sackPermitted) bytes.push(1, 1, 4, 2);
  if (o.windowScale !== undefined) bytes.push(1, 3, 3, o.windowScale);
  if (o.timestamp) {
    const t = new Uint8Array(8);
    view(t).setUint32(0, o.timestamp.value >>> 0);
    view(t).setUint32(4, o.timestamp.echo >>> 0);
    bytes.push(1, 1, 8, 10, ...t);
  }
  while (bytes.length % 4) bytes.push(0);
  return new Uint8Array(bytes);
}

export function buildTcp(p: TcpBuild): Uint8Array {
  const opts = encodeTcpOptions(p.options);
  const payload = p.payload ?? new Uint8Array(0);
  const hl = 20 + opts.length;
  const out = new Uint8Array(hl + payload.length);
  const v = view(out);
  v.setUint16(0, p.srcPort);
  v.setUint16(2, p.dstPort);
  v.setUint32(4, p.seq >>> 0);
  v.setUint32(8, p.ack >>> 0);
  out[12] = (hl / 4) << 4;
  out[13] = p.flags;
  v.setUint16(14, p.window);
  out.set(opts, 20);
  out.set(payload, hl);
  v.setUint16(16, internetChecksum(out, pseudoHeaderSum(p.src, p.dst, IPPROTO_TCP, out.length)));
  return out;
}

// ---------------------------------------------------------------- DHCP

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const DHCP_MAGIC = 0x63825363;
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;
export const DHCPINFORM = 8;
/** Option codes used by the lab. */
export const DhcpOption = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  HOSTNAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST: 28,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAM_REQUEST_LIST: 55,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_ID: 61,
  END: 255,
} as const;

export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** The first 6 bytes of chaddr. */
  chaddr: Uint8Array;
  /** Option code → value (later duplicates are concatenated, RFC 3396). Pad/end excluded. */
  options: Map<number, Uint8Array>;
  /** Option 53, if present. */
  messageType?: number;
}

const DHCP_FIXED = 236;

export function parseDhcp(b: Uint8Array): DhcpMessage | null {
  if (b.length < DHCP_FIXED + 4) return null;
  const v = view(b);
  if (v.getUint32(DHCP_FIXED) !== DHCP_MAGIC) return null;
  const options = new Map<number, Uint8Array>();
  let i = DHCP_FIXED + 4;
  while (i < b.length) {
    const code = b[i];
    if (code === 0) {
      i++;
      continue;
    }
    if (code === 255) break;
    if (i + 1 >= b.length) return null;
    const len = b[i + 1];
    if (i + 2 + len > b.length) return null;
    const val = b.subarray(i + 2, i + 2 + len);
    const prev = options.get(code);
    if (prev) {
      const joined = new Uint8Array(prev.length + val.length);
      joined.set(prev);
      joined.set(val, prev.length);
      options.set(code, joined);
    } else options.set(code, val);
    i += 2 + len;
  }
  const mt = options.get(DhcpOption.MESSAGE_TYPE);
  return {
    op: b[0],
    htype: b[1],
    hlen: b[2],
    hops: b[3],
    xid: v.getUint32(4),
    secs: v.getUint16(8),
    flags: v.getUint16(10),
    ciaddr: v.getUint32(12),
    yiaddr: v.getUint32(16),
    siaddr: v.getUint32(20),
    giaddr: v.getUint32(24),
    chaddr: b.subarray(28, 34),
    options,
    messageType: mt && mt.length === 1 ? mt[0] : undefined,
  };
}

export interface DhcpBuild {
  op: number;
  xid: number;
  chaddr: Uint8Array;
  flags?: number;
  secs?: number;
  ciaddr?: number;
  yiaddr?: number;
  siaddr?: number;
  giaddr?: number;
  /** In order; message type first by convention. Values longer than 255 bytes are split. */
  options: Array<[number, Uint8Array]>;
}

export function buildDhcp(p: DhcpBuild): Uint8Array {
  let optLen = 1; // END
  for (const [, val] of p.options) optLen += Math.max(1, Math.ceil(val.length / 255)) * 2 + val.length;
  const out = new Uint8Array(Math.max(300, DHCP_FIXED + 4 + optLen));
  const v = view(out);
  out[0] = p.op;
  out[1] = 1;
  out[2] = 6;
  v.setUint32(4, p.xid >>> 0);
  v.setUint16(8, p.secs ?? 0);
  v.setUint16(10, p.flags ?? 0);
  v.setUint32(12, (p.ciaddr ?? 0) >>> 0);
  v.setUint32(16, (p.yiaddr ?? 0) >>> 0);
  v.setUint32(20, (p.siaddr ?? 0) >>> 0);
  v.setUint32(24, (p.giaddr ?? 0) >>> 0);
  out.set(p.chaddr.subarray(0, 6), 28);
  v.setUint32(DHCP_FIXED, DHCP_MAGIC);
  let i = DHCP_FIXED + 4;
  for (const [code, val] of p.options) {
    let off = 0;
    do {
      const chunk = val.subarray(off, off + 255);
      out[i] = code;
      out[i + 1] = chunk.length;
      out.set(chunk, i + 2);
      i += 2 + chunk.length;
      off += 255;
    } while (off < val.length);
  }
  out[i] = DhcpOption.END;
  return out;
}

/** Helpers to encode option values. */
export function u32Bytes(n: number): Uint8Array {
  const b = new Uint8Array(4);
  view(b).setUint32(0, n >>> 0);
  return b;
}
export function readU32(b: Uint8Array, offset = 0): number {
  return ((b[offset] << 24) | (b[offset + 1] << 16) | (b[offset + 2] << 8) | b[offset + 3]) >>> 0;
}

// ---------------------------------------------------------------- DNS

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
      if (i + 1 >= b.length || ++jumps > 32) return null;
      if (end < 0) end = i + 2;
      i = ((len & 0x3f) << 8) | b[i + 1];
      continue;
    }
    if (len & 0xc0) return null;
    if (i + 1 + len > b.length) return null;
    total += len + 1;
    if (total > 255) return null;
    let label = '';
    for (let k = 0; k < len; k++) label += String.fromCharCode(b[i + 1 + k]);
    labels.push(label);
    i += 1 + len;
  }
  return [labels.join('.'), end >= 0 ? end : i];
}

export function parseDns(b: Uint8Array): DnsMessage | null {
  if (b.length < 12) return null;
  const v = view(b);
  const flags = v.getUint16(2);
  const counts = [v.getUint16(4), v.getUint16(6), v.getUint16(8), v.getUint16(10)];
  // Each question takes ≥ 5 bytes, each record ≥ 11: reject counts the message cannot hold.
  if (counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * 11 > b.length - 12) return null;
  let off = 12;
  const questions: DnsQuestion[] = [];
  for (let q = 0; q < counts[0]; q++) {
    const r = readDnsName(b, off);
    if (!r || r[1] + 4 > b.length) return null;
    off = r[1];
    questions.push({ name: r[0], type: v.getUint16(off), class: v.getUint16(off + 2) });
    off += 4;
  }
  const sections: DnsRecord[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    for (let k = 0; k < counts[s + 1]; k++) {
      const r = readDnsName(b, off);
      if (!r || r[1] + 10 > b.length) return null;
      off = r[1];
      const rdlen = v.getUint16(off + 8);
      if (off + 10 + rdlen > b.length) return null;
      sections[s].push({
        name: r[0],
        type: v.getUint16(off),
        class: v.getUint16(off + 2),
        ttl: v.getUint32(off + 4),
        data: b.subarray(off + 10, off + 10 + rdlen),
      });
      off += 10 + rdlen;
    }
  }
  return {
    id: v.getUint16(0),
    flags,
    isResponse: (flags & 0x8000) !== 0,
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
    const bytes = Array.from(label.slice(0, 63), (c) => c.charCodeAt(0) & 0xff);
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

// ---------------------------------------------------------------- whole-frame decode

/** Every layer of a frame the parsers understood (for the inspector and the relay's logs). */
export interface DecodedFrame {
  eth: EthernetFrame;
  arp?: ArpPacket;
  ipv4?: Ipv4Packet;
  icmp?: IcmpPacket;
  udp?: UdpDatagram;
  tcp?: TcpSegment;
  dhcp?: DhcpMessage;
  dns?: DnsMessage;
  /** One line, tcpdump-like. */
  summary: string;
}

const DHCP_NAMES = ['?', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM'];

function tcpFlagString(f: number): string {
  let s = '';
  if (f & TCP_SYN) s += 'S';
  if (f & TCP_FIN) s += 'F';
  if (f & TCP_RST) s += 'R';
  if (f & TCP_PSH) s += 'P';
  if (f & TCP_ACK) s += '.';
  return s || 'none';
}

/** Decodes as deep as it can; null only if the frame is shorter than an Ethernet header. */
export function decodeFrame(frame: Uint8Array): DecodedFrame | null {
  const eth = parseEthernet(frame);
  if (!eth) return null;
  const d: DecodedFrame = { eth, summary: '' };
  const macs = `${macToString(eth.src)} > ${macToString(eth.dst)}`;
  if (eth.etherType === ETHERTYPE_ARP) {
    const arp = parseArp(eth.payload);
    if (!arp) return { ...d, summary: `${macs} ARP (malformed)` };
    d.arp = arp;
    d.summary =
      arp.op === ARP_REQUEST
        ? `ARP who-has ${ipToString(arp.targetIp)} tell ${ipToString(arp.senderIp)}`
        : `ARP ${ipToString(arp.senderIp)} is-at ${macToString(arp.senderMac)}`;
    return d;
  }
  if (eth.etherType !== ETHERTYPE_IPV4) {
    d.summary = `${macs} ethertype 0x${eth.etherType.toString(16).padStart(4, '0')} length ${frame.length}`;
    return d;
  }
  const ip = parseIpv4(eth.payload);
  if (!ip) return { ...d, summary: `${macs} IPv4 (malformed)` };
  d.ipv4 = ip;
  const from = ipToString(ip.src);
  const to = ipToString(ip.dst);
  if (ip.fragmentOffset !== 0) {
    d.summary = `IP ${from} > ${to} fragment offset ${ip.fragmentOffset * 8}`;
    return d;
  }
  if (ip.protocol === IPPROTO_ICMP) {
    const icmp = parseIcmp(ip.payload);
    if (icmp) d.icmp = icmp;
    const kind = !icmp
      ? '(malformed)'
      : icmp.type === ICMP_ECHO_REQUEST
        ? `echo request id ${icmp.id} seq ${icmp.seq}`
        : icmp.type === ICMP_ECHO_REPLY
          ? `echo reply id ${icmp.id} seq ${icmp.seq}`
          : `type ${icmp.type} code ${icmp.code}`;
    d.summary = `IP ${from} > ${to}: ICMP ${kind}`;
  } else if (ip.protocol === IPPROTO_UDP) {
    const udp = parseUdp(ip.payload);
    if (!udp) return { ...d, summary: `IP ${from} > ${to}: UDP (malformed)` };
    d.udp = udp;
    d.summary = `IP ${from}.${udp.srcPort} > ${to}.${udp.dstPort}: UDP length ${udp.payload.length}`;
    const ports = [udp.srcPort, udp.dstPort];
    if (ports.includes(DHCP_SERVER_PORT) && ports.includes(DHCP_CLIENT_PORT)) {
      const dhcp = parseDhcp(udp.payload);
      if (dhcp) {
        d.dhcp = dhcp;
        d.summary = `IP ${from} > ${to}: DHCP ${DHCP_NAMES[dhcp.messageType ?? 0] ?? dhcp.messageType} xid 0x${dhcp.xid.toString(16)}${dhcp.yiaddr ? ` yiaddr ${ipToString(dhcp.yiaddr)}` : ''}`;
      }
    } else if (ports.includes(53)) {
      const dns = parseDns(udp.payload);
      if (dns) {
        d.dns = dns;
        const q = dns.questions[0];
        d.summary = `IP ${from}.${udp.srcPort} > ${to}.${udp.dstPort}: DNS ${dns.isResponse ? `response rcode ${dns.rcode} answers ${dns.answers.length}` : 'query'}${q ? ` ${q.name} type ${q.type}` : ''}`;
      }
    }
  } else if (ip.protocol === IPPROTO_TCP) {
    const tcp = parseTcp(ip.payload);
    if (!tcp) return { ...d, summary: `IP ${from} > ${to}: TCP (malformed)` };
    d.tcp = tcp;
    d.summary = `IP ${from}.${tcp.srcPort} > ${to}.${tcp.dstPort}: Flags [${tcpFlagString(tcp.flags)}] seq ${tcp.seq} ack ${tcp.ack} win ${tcp.window} length ${tcp.payload.length}`;
  } else {
    d.summary = `IP ${from} > ${to}: protocol ${ip.protocol} length ${ip.payload.length}`;
  }
  return d;
}
