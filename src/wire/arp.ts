/** ARP (RFC 826) for Ethernet and IPv4 only: hardware type 1, protocol 0x0800, lengths 6 and 4. */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { ETHERTYPE_IPV4 } from './ethernet.ts';

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
/** An Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;
/** Offsets of the fields that say "who is at which address" (the relay's source guard reads them). */
export const ARP_SENDER_MAC = 8;
export const ARP_SENDER_IP = 14;

const HTYPE_ETHERNET = 1;

export interface ArpPacket {
  op: number;
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

/** Whether `b` starts like an Ethernet/IPv4 ARP packet (address lengths 6 and 4). */
export function isEthernetIpv4Arp(b: Uint8Array, offset = 0): boolean {
  return b.length >= offset + ARP_LEN && b[offset + 4] === 6 && b[offset + 5] === 4;
}

export function parseArp(b: Uint8Array): ArpPacket | null {
  if (b.length < ARP_LEN) return null;
  if (readU16(b, 0) !== HTYPE_ETHERNET || readU16(b, 2) !== ETHERTYPE_IPV4 || !isEthernetIpv4Arp(b)) return null;
  return {
    op: readU16(b, 6),
    senderMac: b.subarray(ARP_SENDER_MAC, ARP_SENDER_MAC + 6),
    senderIp: readU32(b, ARP_SENDER_IP),
    targetMac: b.subarray(18, 24),
    targetIp: readU32(b, 24),
  };
}

export function buildArp(p: ArpPacket): Uint8Array {
  const out = new Uint8Array(ARP_LEN);
  writeU16(out, 0, HTYPE_ETHERNET);
  writeU16(out, 2, ETHERTYPE_IPV4);
  out[4] = 6;
  out[5] = 4;
  writeU16(out, 6, p.op);
  out.set(p.senderMac.subarray(0, 6), ARP_SENDER_MAC);
  writeU32(out, ARP_SENDER_IP, p.senderIp >>> 0);
  out.set(p.targetMac.subarray(0, 6), 18);
  writeU32(out, 24, p.targetIp >>> 0);
  return out;
}
