/** DHCP (RFC 2131) over BOOTP: the fixed header, the magic cookie and options (RFC 2132). */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const DHCP_MAGIC = 0x63825363;
/** BOOTP op: client to server, server to client. */
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** flags: the client wants replies broadcast. */
export const DHCP_FLAG_BROADCAST = 0x8000;
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPDECLINE = 4;
export const DHCPACK = 5;
export const DHCPNAK = 6;
export const DHCPRELEASE = 7;
export const DHCPINFORM = 8;
/** Message type names, by number (for logs and the inspector). */
export const DHCP_MESSAGE_NAMES: readonly string[] = ['?', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM'];
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

const OPTION_PAD = 0;
/** op … file: the BOOTP header before the magic cookie. */
const DHCP_FIXED = 236;
/** BOOTP's minimum message (RFC 951); some clients drop shorter replies. */
const BOOTP_MIN_LEN = 300;

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

/** Options are walked once, each step ≥ 1 byte: work is bounded by the message length. */
export function parseDhcp(b: Uint8Array): DhcpMessage | null {
  if (b.length < DHCP_FIXED + 4) return null;
  if (readU32(b, DHCP_FIXED) !== DHCP_MAGIC) return null;
  const options = new Map<number, Uint8Array>();
  let i = DHCP_FIXED + 4;
  while (i < b.length) {
    const code = b[i];
    if (code === OPTION_PAD) {
      i++;
      continue;
    }
    if (code === DhcpOption.END) break;
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
    xid: readU32(b, 4),
    secs: readU16(b, 8),
    flags: readU16(b, 10),
    ciaddr: readU32(b, 12),
    yiaddr: readU32(b, 16),
    siaddr: readU32(b, 20),
    giaddr: readU32(b, 24),
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
  const out = new Uint8Array(Math.max(BOOTP_MIN_LEN, DHCP_FIXED + 4 + optLen));
  out[0] = p.op;
  out[1] = 1; // htype Ethernet
  out[2] = 6; // hlen
  writeU32(out, 4, p.xid >>> 0);
  writeU16(out, 8, p.secs ?? 0);
  writeU16(out, 10, p.flags ?? 0);
  writeU32(out, 12, (p.ciaddr ?? 0) >>> 0);
  writeU32(out, 16, (p.yiaddr ?? 0) >>> 0);
  writeU32(out, 20, (p.siaddr ?? 0) >>> 0);
  writeU32(out, 24, (p.giaddr ?? 0) >>> 0);
  out.set(p.chaddr.subarray(0, 6), 28);
  writeU32(out, DHCP_FIXED, DHCP_MAGIC);
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
