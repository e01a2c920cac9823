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
import { TCP_URGENT } from '../../wire/tcp.ts';
import { SUPER_SEGMENT_MIN_GSO, superSegmentView } from '../../wire/super-segment.ts';
import { type LroRun, setPartialTcpChecksum } from './rx-lro.ts';

export { SUPER_SEGMENT_MIN_GSO };

/**
 * The super-segment's GSO description (an LroRun: `segments` is how many MSS segments it
 * carries), or why the NIC refuses it (checksums verified, as for the segments it merges).
 * `frame` is longer than the MTU frame.
 */
export function checkSuperSegment(frame: Uint8Array, mtu: number): LroRun | string {
  const v = superSegmentView(frame, mtu, true);
  if (typeof v === 'string') return v;
  return { segments: v.segments, length: v.end, gsoSize: v.gsoSize, hdrLen: v.data, csumStart: v.tcp };
}

/**
 * The super-segment's headers (`frame` checked, its first seg.hdrLen bytes) as the guest gets
 * them, in a copy: the urgent pointer back to 0 and, for NEEDS_CSUM, the pseudo-header sum in
 * the TCP checksum field. The payload after them goes to the guest unchanged.
 */
export function superSegmentHeadForGuest(frame: Uint8Array, seg: LroRun): Uint8Array {
  const head = frame.slice(0, seg.hdrLen);
  clearUrgent(head, seg);
  setPartialTcpChecksum(head, seg.csumStart, seg.length);
  return head;
}

/** Zeroes the urgent pointer in place (before a software cut, which redoes the checksums). */
export function clearUrgent(frame: Uint8Array, seg: LroRun): void {
  frame[seg.csumStart + TCP_URGENT] = 0;
  frame[seg.csumStart + TCP_URGENT + 1] = 0;
}
