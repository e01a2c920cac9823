/**
 * TCP segmentation (a NIC's TSO engine, in software). Used by virtio-net for
 * VIRTIO_NET_F_HOST_TSO4, and by the relay's switch to cut a super-segment for a port that
 * takes MTU frames only. With HOST_TSO4 the guest hands over one TCP/IPv4 "super-frame" of up
 * to 64 KiB (gso_type TCPV4, gso_size = MSS) and the device cuts it into wire-sized frames.
 * Each segment gets the headers of the super-frame with: IPv4 total length
 * and header checksum recomputed, IPv4 id incremented per segment (what Linux's software GSO
 * does for non-FIXEDID packets), the TCP sequence number advanced by the payload before it,
 * FIN and PSH only on the last segment, CWR only on the first, and a full TCP checksum.
 *
 * The header lengths come from the packet itself, never from the guest's hdr_len hint.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { checksumOf, onesSum } from './checksum.ts';
import { IPPROTO_TCP, ipv4Layout, pseudoHeaderSumAt, setIpv4HeaderChecksum } from './ipv4.ts';
import { TCP_CHECKSUM, TCP_CWR, TCP_FIN, TCP_FLAGS, TCP_HEADER_LEN, TCP_PSH, TCP_SEQ } from './tcp.ts';

/**
 * Smallest gso_size Linux TCP produces: TCP_MIN_GSO_SIZE = TCP_MIN_SND_MSS (48) - 40 bytes of
 * options (include/net/tcp.h). Anything smaller is not a real stack's send; it only
 * multiplies frames (gso_size 1 turns 64 KiB into 65 495 of them).
 */
export const TSO_MIN_GSO_SIZE = 8;

const newBytes = (length: number) => new Uint8Array(length);

/** `tooSmall`: refused for a gso_size under TSO_MIN_GSO_SIZE (a work budget, not a parse error). */
export type TsoResult = { ok: true; frames: Uint8Array[] } | { ok: false; reason: string; tooSmall?: boolean };

/**
 * Segments `frame` into frames carrying at most `mss` bytes of TCP payload each, none longer
 * than `maxFrame` bytes. A super-frame that already fits yields one frame (checksums done).
 * A gso_size under TSO_MIN_GSO_SIZE is refused before anything is allocated, so one call
 * makes at most MAX_TSO_SEGMENTS frames. `alloc` gives each segment its bytes (zeroed or not:
 * all of them are written), e.g. a ByteSlab's ranges.
 */
export function segmentTcp4(frame: Uint8Array, mss: number, maxFrame: number, alloc: (length: number) => Uint8Array = newBytes): TsoResult {
  const l = ipv4Layout(frame);
  if (!l) return { ok: false, reason: 'TSO frame is not IPv4 over Ethernet' };
  if (l.protocol !== IPPROTO_TCP) return { ok: false, reason: `TSO frame carries IP protocol ${l.protocol}, not TCP` };
  if (l.fragment) return { ok: false, reason: 'TSO frame is an IP fragment' };
  const tcp = l.l4;
  if (tcp + TCP_HEADER_LEN > l.end) return { ok: false, reason: 'TSO frame too short for a TCP header' };
  const doff = (frame[tcp + 12] >> 4) * 4;
  if (doff < TCP_HEADER_LEN || tcp + doff > l.end) return { ok: false, reason: `bad TCP data offset ${doff}` };
  const headers = tcp + doff;
  const payload = l.end - headers;
  if (mss <= 0) return { ok: false, reason: 'gso_size 0' };
  if (mss < TSO_MIN_GSO_SIZE) return { ok: false, reason: `gso_size ${mss} under ${TSO_MIN_GSO_SIZE}, the least Linux TCP sends`, tooSmall: true };
  const seg = Math.min(mss, Math.max(payload, 0));
  if (headers + seg > maxFrame) {
    return { ok: false, reason: `gso_size ${mss} makes ${headers + seg}-byte frames (max ${maxFrame})` };
  }

  const ip = l.ip;
  const id0 = readU16(frame, ip + 4);
  const seq0 = readU32(frame, tcp + TCP_SEQ);
  const flags0 = frame[tcp + TCP_FLAGS];
  const count = Math.max(1, Math.ceil(payload / mss));
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const from = headers + i * mss;
    const n = Math.min(mss, l.end - from);
    const out = alloc(headers + n);
    out.set(frame.subarray(0, headers));
    out.set(frame.subarray(from, from + n), headers);

    const ipLen = headers - ip + n;
    writeU16(out, ip + 2, ipLen);
    writeU16(out, ip + 4, (id0 + i) & 0xffff);
    setIpv4HeaderChecksum(out, ip, tcp);

    writeU32(out, tcp + TCP_SEQ, (seq0 + i * mss) >>> 0);
    let flags = flags0;
    if (i < count - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) flags &= ~TCP_CWR;
    out[tcp + TCP_FLAGS] = flags;

    writeU16(out, tcp + TCP_CHECKSUM, 0);
    const tcpLen = out.length - tcp;
    writeU16(out, tcp + TCP_CHECKSUM, checksumOf(onesSum(out, tcp, out.length, pseudoHeaderSumAt(out, ip, IPPROTO_TCP, tcpLen))));
    frames.push(out);
  }
  return { ok: true, frames };
}
