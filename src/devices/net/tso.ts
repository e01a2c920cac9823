/**
 * VIRTIO_NET_F_HOST_TSO4: the guest hands over one TCP/IPv4 "super-frame" of up to 64 KiB
 * (gso_type TCPV4, gso_size = MSS) and the device cuts it into wire-sized frames, as a NIC's
 * TSO engine would. Each segment gets the headers of the super-frame with: IPv4 total length
 * and header checksum recomputed, IPv4 id incremented per segment (what Linux's software GSO
 * does for non-FIXEDID packets), the TCP sequence number advanced by the payload before it,
 * FIN and PSH only on the last segment, CWR only on the first, and a full TCP checksum.
 *
 * The header lengths come from the packet itself, never from the guest's hdr_len hint.
 */
import {
  IPPROTO_TCP,
  checksumOf,
  ipv4Layout,
  onesSum,
  pseudoHeaderSum,
  setIpv4HeaderChecksum,
} from './checksum.ts';

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

export type TsoResult = { ok: true; frames: Uint8Array[] } | { ok: false; reason: string };

/**
 * Segments `frame` into frames carrying at most `mss` bytes of TCP payload each, none longer
 * than `maxFrame` bytes. A super-frame that already fits yields one frame (checksums done).
 */
export function segmentTcp4(frame: Uint8Array, mss: number, maxFrame: number): TsoResult {
  const l = ipv4Layout(frame);
  if (!l) return { ok: false, reason: 'TSO frame is not IPv4 over Ethernet' };
  if (l.protocol !== IPPROTO_TCP) return { ok: false, reason: `TSO frame carries IP protocol ${l.protocol}, not TCP` };
  if (l.fragment) return { ok: false, reason: 'TSO frame is an IP fragment' };
  const tcp = l.l4;
  if (tcp + 20 > l.end) return { ok: false, reason: 'TSO frame too short for a TCP header' };
  const doff = (frame[tcp + 12] >> 4) * 4;
  if (doff < 20 || tcp + doff > l.end) return { ok: false, reason: `bad TCP data offset ${doff}` };
  const headers = tcp + doff;
  const payload = l.end - headers;
  if (mss <= 0) return { ok: false, reason: 'gso_size 0' };
  const seg = Math.min(mss, Math.max(payload, 0));
  if (headers + seg > maxFrame) {
    return { ok: false, reason: `gso_size ${mss} makes ${headers + seg}-byte frames (max ${maxFrame})` };
  }

  const ip = l.ip;
  const id0 = (frame[ip + 4] << 8) | frame[ip + 5];
  const seq0 = ((frame[tcp + 4] << 24) | (frame[tcp + 5] << 16) | (frame[tcp + 6] << 8) | frame[tcp + 7]) >>> 0;
  const flags0 = frame[tcp + 13];
  const count = Math.max(1, Math.ceil(payload / mss));
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const from = headers + i * mss;
    const n = Math.min(mss, l.end - from);
    const out = new Uint8Array(headers + n);
    out.set(frame.subarray(0, headers));
    out.set(frame.subarray(from, from + n), headers);

    const ipLen = headers - ip + n;
    out[ip + 2] = ipLen >>> 8;
    out[ip + 3] = ipLen & 0xff;
    const id = (id0 + i) & 0xffff;
    out[ip + 4] = id >>> 8;
    out[ip + 5] = id & 0xff;
    setIpv4HeaderChecksum(out, ip, tcp);

    const seq = (seq0 + i * mss) >>> 0;
    out[tcp + 4] = seq >>> 24;
    out[tcp + 5] = (seq >>> 16) & 0xff;
    out[tcp + 6] = (seq >>> 8) & 0xff;
    out[tcp + 7] = seq & 0xff;
    let flags = flags0;
    if (i < count - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) flags &= ~TCP_CWR;
    out[tcp + 13] = flags;

    out[tcp + 16] = 0;
    out[tcp + 17] = 0;
    const tcpLen = out.length - tcp;
    const c = checksumOf(onesSum(out, tcp, out.length, pseudoHeaderSum(out, ip, IPPROTO_TCP, tcpLen)));
    out[tcp + 16] = c >>> 8;
    out[tcp + 17] = c & 0xff;
    frames.push(out);
  }
  return { ok: true, frames };
}
