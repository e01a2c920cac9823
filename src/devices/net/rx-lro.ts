/**
 * Large receive (VIRTIO_NET_F_GUEST_TSO4): consecutive in-order TCP/IPv4 segments of one flow
 * waiting together in the rx backlog become one super-frame of up to 64 KiB, handed to the
 * guest in one rx chain as gso_type TCPV4 (§5.1.6.4), as a NIC's LRO engine would. The
 * guest's driver then builds one skb where it would have built (and GRO-merged) dozens: the
 * emulated CPU's per-frame cost is what bounds download.
 *
 * A segment joins the run only if it would have been GRO-merged by Linux (tcp_gro_receive):
 * same Ethernet header, same IPv4 header (ids and lengths aside, no fragments), same ports,
 * ack, data offset and options, seq right after the run, flags exactly ACK (the last may add
 * PSH, which ends the run), payload the first one's size (a shorter one ends the run), and
 * both checksums verified (§5.1.6.4.1: with NEEDS_CSUM the device must have validated the
 * packet). Anything else goes to the guest as it came.
 *
 * The super-frame carries the first segment's headers with the IPv4 total length and header
 * checksum redone, the last segment's window and PSH, and in the TCP checksum field the
 * pseudo-header sum (NEEDS_CSUM, csum_start = TCP header, csum_offset = 16), which is what
 * Linux's virtio_net_hdr_to_skb accepts for TCPV4 (csum_offset must be the TCP check field).
 */
import { readU16, readU32, writeU16 } from '../../wire/bytes.ts';
import { foldSum } from '../../wire/checksum.ts';
import { ETH_HLEN } from '../../wire/ethernet.ts';
import { IPPROTO_TCP, ipv4HeaderChecksumOk, pseudoHeaderSumAt, setIpv4HeaderChecksum } from '../../wire/ipv4.ts';
import { ackSegmentLayout, tcpChecksumOk } from '../../wire/super-segment.ts';
import { TCP_ACK, TCP_CHECKSUM, TCP_FLAGS, TCP_HEADER_LEN, TCP_PSH, TCP_SEQ } from '../../wire/tcp.ts';

/** Largest IPv4 datagram, so the most one super-frame carries after its Ethernet header. */
export const LRO_MAX_DATAGRAM = 65535;
/** Longest super-frame: an Ethernet header and a 64 KiB datagram. */
export const LRO_MAX_FRAME = ETH_HLEN + LRO_MAX_DATAGRAM;
/** TCP checksum field's offset in the TCP header: the only csum_offset Linux takes for TCPV4. */
export const TCP_CSUM_OFFSET = TCP_CHECKSUM;

/** One segment's offsets, once its headers and checksums have been checked. */
interface SegmentView {
  /** Start of the TCP header and of the payload; end of the datagram. */
  tcp: number;
  data: number;
  end: number;
  seq: number;
  flags: number;
}

/**
 * The segment's layout if it is an untagged TCP/IPv4 frame with a payload, no fragment,
 * flags ACK or ACK|PSH, and correct IPv4 and TCP checksums; otherwise undefined.
 */
export function lroCandidate(frame: Uint8Array): SegmentView | undefined {
  const l = ackSegmentLayout(frame);
  if (!l || !ipv4HeaderChecksumOk(frame, l.ipv4) || !tcpChecksumOk(frame, l.tcp, l.end)) return undefined;
  return { tcp: l.tcp, data: l.data, end: l.end, seq: readU32(frame, l.tcp + TCP_SEQ), flags: frame[l.tcp + TCP_FLAGS] };
}

/** Bytes a and b agree on in [from, to). */
function sameBytes(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether `next` continues the flow of `first` (headers as said above; `nextView` already a
 * candidate). IPv4: bytes 0–1 (version, IHL, TOS) and 6 on (flags, TTL, protocol, addresses,
 * options) but the checksum; TCP: ports, ack, data offset, options.
 */
function sameFlow(first: Uint8Array, f: SegmentView, next: Uint8Array, n: SegmentView): boolean {
  if (n.tcp !== f.tcp || n.data !== f.data) return false;
  const ip = ETH_HLEN;
  return (
    sameBytes(first, next, 0, ip + 2) &&
    sameBytes(first, next, ip + 6, ip + 10) &&
    sameBytes(first, next, ip + 12, f.tcp + 4) &&
    sameBytes(first, next, f.tcp + 8, f.tcp + 13) &&
    sameBytes(first, next, f.tcp + TCP_HEADER_LEN, f.data)
  );
}

/** A run of segments merged into one super-frame. */
export interface LroRun {
  /** Segments merged (≥ 2), taken from the head of the list in order. */
  segments: number;
  /** Bytes of the super-frame written to `out`. */
  length: number;
  /** virtio_net_hdr fields: payload bytes per segment, header bytes, where the TCP header is. */
  gsoSize: number;
  hdrLen: number;
  csumStart: number;
}

/**
 * Merges the longest run of segments from `at(0)`, `at(1)`, … (undefined ends the list) into
 * `out`, at most `maxSegments` of them and at most `out.length` (≤ LRO_MAX_FRAME) bytes.
 * Undefined when fewer than two segments would merge: the first frame then goes as it is.
 * The frames are only read.
 */
export function coalesceTcp4(at: (i: number) => Uint8Array | undefined, maxSegments: number, out: Uint8Array): LroRun | undefined {
  const first = at(0);
  const second = at(1);
  if (!first || !second || maxSegments < 2) return undefined;
  const f = lroCandidate(first);
  if (!f || f.flags !== TCP_ACK) return undefined;
  const gsoSize = f.end - f.data;
  const limit = Math.min(out.length, LRO_MAX_FRAME);
  if (f.end + gsoSize > limit) return undefined;

  let segments = 1;
  let length = f.end;
  let nextSeq = (f.seq + gsoSize) >>> 0;
  let last = first;
  let lastFlags = f.flags;
  for (let next: Uint8Array | undefined = second; next && segments < maxSegments; next = at(segments)) {
    const n = lroCandidate(next);
    if (!n || n.seq !== nextSeq || !sameFlow(first, f, next, n)) break;
    const size = n.end - n.data;
    if (size > gsoSize || length + size > limit) break;
    if (segments === 1) out.set(first.subarray(0, f.end));
    out.set(next.subarray(n.data, n.end), length);
    length += size;
    segments++;
    nextSeq = (nextSeq + size) >>> 0;
    last = next;
    lastFlags = n.flags;
    // GRO flushes after PSH or a short segment: the run ends with it.
    if (n.flags !== TCP_ACK || size < gsoSize) break;
  }
  if (segments < 2) return undefined;

  const ip = ETH_HLEN;
  writeU16(out, ip + 2, length - ip);
  setIpv4HeaderChecksum(out, ip, f.tcp);
  out[f.tcp + TCP_FLAGS] = TCP_ACK | (lastFlags & TCP_PSH);
  writeU16(out, f.tcp + 14, readU16(last, f.tcp + 14)); // the newest window
  setPartialTcpChecksum(out, f.tcp, length);
  return { segments, length, gsoSize, hdrLen: f.data, csumStart: f.tcp };
}

/**
 * NEEDS_CSUM (§5.1.6.4): the TCP checksum field of the untagged TCP/IPv4 frame `out` (TCP
 * header at `tcp`, datagram ending at `end`) gets the pseudo-header sum, folded, not
 * complemented; the guest's stack finishes it over the data.
 */
export function setPartialTcpChecksum(out: Uint8Array, tcp: number, end: number): void {
  writeU16(out, tcp + TCP_CHECKSUM, 0);
  writeU16(out, tcp + TCP_CHECKSUM, foldSum(pseudoHeaderSumAt(out, ETH_HLEN, IPPROTO_TCP, end - tcp)));
}
