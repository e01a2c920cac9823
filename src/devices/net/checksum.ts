/**
 * Internet checksums (RFC 1071) for the offloads: completing the guest's partial checksums
 * (VIRTIO_NET_F_CSUM), and checking received ones before we promise DATA_VALID
 * (VIRTIO_NET_F_GUEST_CSUM). Host JS is cheap next to the emulated guest CPU, so the device
 * verifies instead of trusting whoever is on the other end of the relay.
 */
import { ETH_HLEN } from './spec.ts';

export const ETHERTYPE_IPV4 = 0x0800;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** 32-bit accumulation of big-endian 16-bit words of bytes[start, end) (odd tail padded). */
export function onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) {
    sum += (bytes[i] << 8) | bytes[i + 1];
    // Fold early so the accumulator never leaves the exact-integer range.
    if (sum > 0x7fffffff) sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (i < end) sum += bytes[i] << 8;
  return sum;
}

/** Fold a sum to 16 bits (ones' complement addition), not inverted. */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field value for data summing to `sum`. */
export function checksumOf(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/**
 * §5.1.6.2 VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum bytes from csum_start to the end and store
 * it at csum_start + csum_offset. The field already holds the pseudo-header sum (that is
 * what "partial" means), so it is simply included. 0 goes out as 0xffff, as Linux's
 * skb_checksum_help does: the same value in ones' complement, and the only valid one for UDP.
 * Returns false (frame untouched) if the offsets do not fit the frame.
 */
export function completePartialChecksum(frame: Uint8Array, csumStart: number, csumOffset: number): boolean {
  const at = csumStart + csumOffset;
  if (csumStart >= frame.length || at + 2 > frame.length) return false;
  const value = checksumOf(onesSum(frame, csumStart, frame.length)) || 0xffff;
  frame[at] = value >>> 8;
  frame[at + 1] = value & 0xff;
  return true;
}

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

export function ipv4Layout(frame: Uint8Array): Ipv4Layout | undefined {
  const ip = ETH_HLEN;
  if (frame.length < ip + 20) return undefined;
  if (((frame[12] << 8) | frame[13]) !== ETHERTYPE_IPV4) return undefined;
  if (frame[ip] >> 4 !== 4) return undefined;
  const ihl = (frame[ip] & 0x0f) * 4;
  const totalLength = (frame[ip + 2] << 8) | frame[ip + 3];
  if (ihl < 20 || totalLength < ihl || ip + totalLength > frame.length) return undefined;
  const fragField = (frame[ip + 6] << 8) | frame[ip + 7];
  return {
    ip,
    l4: ip + ihl,
    end: ip + totalLength,
    protocol: frame[ip + 9],
    fragment: (fragField & 0x3fff) !== 0,
  };
}

/** Sum of the TCP/UDP pseudo header (§RFC 793/768) for an L4 segment of `l4Length` bytes. */
export function pseudoHeaderSum(frame: Uint8Array, ip: number, protocol: number, l4Length: number): number {
  return onesSum(frame, ip + 12, ip + 20, protocol + l4Length);
}

export function ipv4HeaderChecksumOk(frame: Uint8Array, l: Ipv4Layout): boolean {
  return foldSum(onesSum(frame, l.ip, l.l4)) === 0xffff;
}

/** Recompute the IPv4 header checksum in place. */
export function setIpv4HeaderChecksum(frame: Uint8Array, ip: number, l4: number): void {
  frame[ip + 10] = 0;
  frame[ip + 11] = 0;
  const c = checksumOf(onesSum(frame, ip, l4));
  frame[ip + 10] = c >>> 8;
  frame[ip + 11] = c & 0xff;
}

/**
 * Whether the frame's outermost L4 checksum (TCP, UDP or ICMP over IPv4) is present and
 * correct, i.e. whether VIRTIO_NET_HDR_F_DATA_VALID would be the truth. Anything we cannot
 * check (ARP, IPv6, fragments, other protocols) is false: the guest checks it itself.
 */
export function rxChecksumValid(frame: Uint8Array): boolean {
  const l = ipv4Layout(frame);
  if (!l || l.fragment || !ipv4HeaderChecksumOk(frame, l)) return false;
  const len = l.end - l.l4;
  switch (l.protocol) {
    case IPPROTO_TCP:
      if (len < 20) return false;
      return foldSum(onesSum(frame, l.l4, l.end, pseudoHeaderSum(frame, l.ip, IPPROTO_TCP, len))) === 0xffff;
    case IPPROTO_UDP: {
      if (len < 8 || ((frame[l.l4 + 4] << 8) | frame[l.l4 + 5]) !== len) return false;
      // Checksum 0: the sender did not compute one; the guest would accept it as is.
      if (frame[l.l4 + 6] === 0 && frame[l.l4 + 7] === 0) return true;
      return foldSum(onesSum(frame, l.l4, l.end, pseudoHeaderSum(frame, l.ip, IPPROTO_UDP, len))) === 0xffff;
    }
    case IPPROTO_ICMP:
      return len >= 8 && foldSum(onesSum(frame, l.l4, l.end)) === 0xffff;
    default:
      return false;
  }
}
