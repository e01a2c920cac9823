/**
 * Super-segments on the frame link (link-hello.ts says who may send them to whom): one
 * untagged TCP/IPv4 frame longer than the MTU frame, carrying what would have been a run of
 * MSS segments, flags ACK or ACK|PSH, and in the urgent pointer (URG is not set, so TCP gives
 * the field no meaning) the MSS to cut it at. Here: the check on arrival, the making of one
 * from a guest's TSO frame, and the cut into MTU frames for a receiver that takes only those.
 *
 * Work per frame: the check reads the headers, plus one pass over the frame when it verifies
 * checksums; making one is one checksum pass; a cut is one checksum pass and one copy.
 */
import { readU16, writeU16 } from './bytes.ts';
import { checksumOf, foldSum, onesSum } from './checksum.ts';
import { ETH_HLEN } from './ethernet.ts';
import { IPPROTO_TCP, ipv4HeaderChecksumOk, ipv4Layout, pseudoHeaderSumAt, setIpv4HeaderChecksum } from './ipv4.ts';
import { SUPER_SEGMENT_MAX_FRAME } from './link-hello.ts';
import { TCP_ACK, TCP_CHECKSUM, TCP_FLAGS, TCP_HEADER_LEN, TCP_PSH, TCP_URGENT } from './tcp.ts';
import { segmentTcp4 } from './tso.ts';

/**
 * Least MSS a super-segment may name: the relay's own floor for a guest's MSS. It bounds a
 * cut to ⌈65495 / 64⌉ = 1024 frames.
 */
export const SUPER_SEGMENT_MIN_GSO = 64;

/** A super-segment's offsets and what it carries. */
export interface SuperSegmentView {
  /** Start of the TCP header and of the payload; end of the datagram (= the frame's length). */
  tcp: number;
  data: number;
  end: number;
  /** The MSS it is cut at (its urgent pointer). */
  gsoSize: number;
  /** MSS segments it carries. */
  segments: number;
}

/**
 * The layout of `frame` if it is a super-segment for a link of this MTU, or why not.
 * `checksums`: also verify the IPv4 and TCP checksums (one pass over the frame).
 */
export function superSegmentView(frame: Uint8Array, mtu: number, checksums: boolean): SuperSegmentView | string {
  if (frame.length > SUPER_SEGMENT_MAX_FRAME) return `a ${frame.length}-byte frame (super-segments: at most ${SUPER_SEGMENT_MAX_FRAME})`;
  const l = ackSegmentLayout(frame);
  const ok = l !== undefined && (!checksums || (ipv4HeaderChecksumOk(frame, l.ipv4) && tcpChecksumOk(frame, l.tcp, l.end)));
  if (!l || !ok) return `a ${frame.length}-byte frame that is no TCP/IPv4 segment with flags ACK or ACK|PSH and correct checksums`;
  if (l.end !== frame.length) return `a ${frame.length}-byte super-segment with ${frame.length - l.end} bytes after its datagram`;
  const gsoSize = readU16(frame, l.tcp + TCP_URGENT);
  const most = mssAt(mtu, l.data);
  if (gsoSize < SUPER_SEGMENT_MIN_GSO || gsoSize > most) return `a super-segment to cut at ${gsoSize} bytes (${SUPER_SEGMENT_MIN_GSO}…${most} at MTU ${mtu})`;
  return { tcp: l.tcp, data: l.data, end: l.end, gsoSize, segments: Math.ceil((l.end - l.data) / gsoSize) };
}

/**
 * Turns a guest's TSO frame (`gsoSize` from its virtio_net_hdr) into a super-segment in place:
 * IPv4 header checksum redone, the MSS in the urgent pointer, the full TCP checksum (whatever
 * the guest left in the field). A frame that cannot be one is left untouched and the reason
 * returned: the caller cuts it as before (FIN, CWR and the like take the per-segment rules).
 */
export function makeSuperSegment(frame: Uint8Array, gsoSize: number, mtu: number): SuperSegmentView | string {
  if (frame.length > SUPER_SEGMENT_MAX_FRAME) return `a ${frame.length}-byte TSO frame`;
  const l = ackSegmentLayout(frame);
  if (!l) return 'not a TCP/IPv4 segment with flags ACK or ACK|PSH';
  if (l.end !== frame.length) return 'bytes after the datagram';
  if (gsoSize < SUPER_SEGMENT_MIN_GSO || gsoSize > mssAt(mtu, l.data)) return `gso_size ${gsoSize}`;
  setIpv4HeaderChecksum(frame, ETH_HLEN, l.tcp);
  writeU16(frame, l.tcp + TCP_URGENT, gsoSize);
  writeU16(frame, l.tcp + TCP_CHECKSUM, 0);
  writeU16(frame, l.tcp + TCP_CHECKSUM, checksumOf(onesSum(frame, l.tcp, l.end, pseudoHeaderSumAt(frame, ETH_HLEN, IPPROTO_TCP, l.end - l.tcp))));
  return { tcp: l.tcp, data: l.data, end: l.end, gsoSize, segments: Math.ceil((l.end - l.data) / gsoSize) };
}

/**
 * The MTU frames a checked super-segment stands for (urgent pointer 0, checksums redone), as
 * the sender's TCP would have sent them; undefined if its TCP checksum is wrong (a cut must not
 * turn a damaged frame into good ones). `frame` is unchanged afterwards.
 */
export function cutSuperSegment(frame: Uint8Array, view: SuperSegmentView, maxFrame: number): Uint8Array[] | undefined {
  if (!tcpChecksumOk(frame, view.tcp, view.end)) return undefined;
  const at = view.tcp + TCP_URGENT;
  const urgent = readU16(frame, at);
  writeU16(frame, at, 0);
  try {
    const r = segmentTcp4(frame, view.gsoSize, maxFrame);
    return r.ok ? r.frames : undefined;
  } finally {
    writeU16(frame, at, urgent);
  }
}

/** Largest MSS whose segments fit the MTU behind headers ending at `data`. */
function mssAt(mtu: number, data: number): number {
  return mtu - (data - ETH_HLEN);
}

/** Whether the TCP checksum of the segment at frame[tcp, end) is right. */
export function tcpChecksumOk(frame: Uint8Array, tcp: number, end: number): boolean {
  return foldSum(onesSum(frame, tcp, end, pseudoHeaderSumAt(frame, ETH_HLEN, IPPROTO_TCP, end - tcp))) === 0xffff;
}

/**
 * An untagged TCP/IPv4 frame with a payload, not a fragment, flags ACK or ACK|PSH (a segment
 * that could be one of a run): its offsets. Checksums unchecked.
 */
export function ackSegmentLayout(frame: Uint8Array) {
  const l = ipv4Layout(frame);
  if (!l || l.protocol !== IPPROTO_TCP || l.fragment) return undefined;
  const tcp = l.l4;
  if (tcp + TCP_HEADER_LEN > l.end) return undefined;
  const doff = (frame[tcp + 12] >> 4) * 4;
  const data = tcp + doff;
  if (doff < TCP_HEADER_LEN || data >= l.end) return undefined;
  const flags = frame[tcp + TCP_FLAGS];
  if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) return undefined;
  return { ipv4: l, tcp, data, end: l.end };
}
