/**
 * virtio-net for the inspector: struct virtio_net_config decoded (§5.1.4) and frames decoded
 * for the timeline (§5.1.6: virtio_net_hdr, then an Ethernet/IP summary). Read-only and never
 * throws.
 */
import { decodeFrame } from '../../wire/decode.ts';
import { readableBytes, writtenBytes, type RequestDecoder } from '../../virtio/inspect/timeline.ts';
import type { ConfigField } from '../../virtio/inspect/types.ts';
import { configField as field } from '../config-field.ts';
import { formatMac } from './config.ts';
import { parseNetHdr } from './hdr.ts';
import type { VirtioNet } from './net.ts';
import { NET_TRANSMITQ, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_SIZE } from './spec.ts';

/** Longest frame decoded for a summary: a whole TSO chain (64 KiB + headers), whose payload size the summary shows. */
const NET_DECODE_BYTES = 65_550;

function netDecode(bytes: Uint8Array): { detail: string; fields: Record<string, string | number> } | undefined {
  if (bytes.length < VIRTIO_NET_HDR_SIZE) return undefined;
  const hdr = parseNetHdr(bytes);
  const frame = bytes.subarray(VIRTIO_NET_HDR_SIZE);
  const summary = decodeFrame(frame)?.summary ?? `${frame.length} B (not Ethernet)`;
  const flags = [hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM ? 'NEEDS_CSUM' : '', hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID ? 'DATA_VALID' : ''].filter(Boolean).join('|');
  const h = [flags, hdr.gsoType ? `gso ${hdr.gsoType} size ${hdr.gsoSize}` : '', hdr.numBuffers > 1 ? `${hdr.numBuffers} bufs` : '']
    .filter(Boolean)
    .join(' ');
  return {
    detail: `${h ? `[${h}] ` : ''}${summary}`,
    fields: { summary, flags: hdr.flags, gsoType: hdr.gsoType, numBuffers: hdr.numBuffers, frameLength: frame.length },
  };
}

export const netDecoder: RequestDecoder = {
  popped(mem, queue, chain) {
    if (queue !== NET_TRANSMITQ) return { detail: `rx buffer posted · ${chain.writableLength} B` };
    return netDecode(readableBytes(mem, chain, Math.min(chain.readableLength, NET_DECODE_BYTES)));
  },
  completed(mem, queue, chain, len) {
    if (queue === NET_TRANSMITQ || !chain) return undefined;
    if (len === 0) return { detail: 'returned empty' };
    return netDecode(writtenBytes(mem, chain, Math.min(len, NET_DECODE_BYTES)));
  },
};

export function netConfigFields(d: VirtioNet): ConfigField[] {
  return [
    field('mac', formatMac(d.mac), '5.1.4'),
    field('status', d.linkUp ? '1 (LINK_UP)' : '0 (link down)', '5.1.4'),
    field('max_virtqueue_pairs', 1, '5.1.4'),
    field('mtu', d.mtu, '5.1.4'),
  ];
}
