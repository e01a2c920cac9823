/**
 * Super-segments from the link (src/wire/link-hello.ts): the relay's TCP, told by the NIC's
 * hello, sends a whole run of MSS segments as one frame of up to 64 KiB. The device checks it
 * as it would the segments it merges itself (rx-lro.ts: one TCP/IPv4 segment, flags ACK or
 * ACK|PSH, both checksums right), plus what only a super-segment has: the MSS to cut at, in
 * the urgent pointer (URG unset), between SUPER_SEGMENT_MIN_GSO and what fits the MTU. It then
 * goes to the guest as one GSO TCPV4 packet with the headers rx-lro builds, or, if large
 * receive is off by now, is cut into MTU frames here (tso.ts).
 *
 * Work per frame: one pass over its ≤ LRO_MAX_FRAME bytes to check, one copy to deliver.
 */
import { readU16 } from '../../wire/bytes.ts';
import { ETH_HLEN } from '../../wire/ethernet.ts';
import { TCP_URGENT } from '../../wire/tcp.ts';
import { LRO_MAX_FRAME, lroCandidate, type LroRun, setPartialTcpChecksum } from './rx-lro.ts';

/**
 * Least MSS a super-segment may name: the relay's own floor for a guest's MSS. It bounds a
 * software cut to ⌈65495 / 64⌉ = 1024 frames (and the backlog's bound cuts that further).
 */
export const SUPER_SEGMENT_MIN_GSO = 64;

/**
 * The super-segment's GSO description (an LroRun: `segments` is how many MSS segments it
 * carries), or why the NIC refuses it. `frame` is longer than the MTU frame.
 */
export function checkSuperSegment(frame: Uint8Array, mtu: number): LroRun | string {
  if (frame.length > LRO_MAX_FRAME) return `a ${frame.length}-byte frame (super-segments: at most ${LRO_MAX_FRAME})`;
  const s = lroCandidate(frame);
  if (!s) return `a ${frame.length}-byte frame that is no TCP/IPv4 segment with flags ACK or ACK|PSH and correct checksums`;
  if (s.end !== frame.length) return `a ${frame.length}-byte super-segment with ${frame.length - s.end} bytes after its datagram`;
  const gsoSize = readU16(frame, s.tcp + TCP_URGENT);
  // Each cut segment must fit the MTU with the headers in front of it.
  const most = mtu - (s.data - ETH_HLEN);
  if (gsoSize < SUPER_SEGMENT_MIN_GSO || gsoSize > most) return `a super-segment to cut at ${gsoSize} bytes (${SUPER_SEGMENT_MIN_GSO}…${most} at MTU ${mtu})`;
  const payload = s.end - s.data;
  return { segments: Math.ceil(payload / gsoSize), length: s.end, gsoSize, hdrLen: s.data, csumStart: s.tcp };
}

/**
 * Writes the super-segment `frame` (checked) to `out` as the guest gets it: the urgent pointer
 * back to 0 and, for NEEDS_CSUM, the pseudo-header sum in the TCP checksum field.
 */
export function superSegmentForGuest(frame: Uint8Array, seg: LroRun, out: Uint8Array): void {
  out.set(frame.subarray(0, seg.length));
  clearUrgent(out, seg);
  setPartialTcpChecksum(out, seg.csumStart, seg.length);
}

/** Zeroes the urgent pointer in place (before a software cut, which redoes the checksums). */
export function clearUrgent(frame: Uint8Array, seg: LroRun): void {
  frame[seg.csumStart + TCP_URGENT] = 0;
  frame[seg.csumStart + TCP_URGENT + 1] = 0;
}
