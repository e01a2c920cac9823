/**
 * What the inspector needs to know of each device type: its queue names, its config space
 * decoded (§5.x.4), and its requests decoded for the timeline (§5.x.6). Read-only: nothing
 * here changes a device or a guest buffer, and nothing throws (the Timeline catches anyway).
 */
import type { VirtioDevice } from '../virtio/device.ts';
import type { GuardedMemory } from '../virtio/inspect/guarded-memory.ts';
import type { FunctionView } from '../virtio/inspect/function-snapshot.ts';
import { readableBytes, writtenBytes, type RequestDecoder } from '../virtio/inspect/timeline.ts';
import type { ConfigField } from '../virtio/inspect/types.ts';
import type { DescriptorChain } from '../virtio/queue/descriptor-chain.ts';
import { decodeFrame } from '../net/packets.ts';
import { VirtioBlk } from './blk/blk.ts';
import { BLK_OUTHDR_SIZE, VirtioBlkReqType as T, VirtioBlkStatus as S } from './blk/spec.ts';
import { formatMac } from './net/config.ts';
import { parseNetHdr } from './net/hdr.ts';
import { NET_TRANSMITQ, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_SIZE } from './net/spec.ts';
import { VirtioNet } from './net/net.ts';
import { VirtioRng } from './rng/rng.ts';

const BLK_TYPES: Record<number, string> = {
  [T.VIRTIO_BLK_T_IN]: 'IN',
  [T.VIRTIO_BLK_T_OUT]: 'OUT',
  [T.VIRTIO_BLK_T_FLUSH]: 'FLUSH',
  [T.VIRTIO_BLK_T_GET_ID]: 'GET_ID',
  [T.VIRTIO_BLK_T_DISCARD]: 'DISCARD',
  [T.VIRTIO_BLK_T_WRITE_ZEROES]: 'WRITE_ZEROES',
};
const BLK_STATUS: Record<number, string> = { [S.VIRTIO_BLK_S_OK]: 'OK', [S.VIRTIO_BLK_S_IOERR]: 'IOERR', [S.VIRTIO_BLK_S_UNSUPP]: 'UNSUPP' };

/** struct virtio_blk_outhdr from the chain's first readable bytes, and the data length. */
function blkHeader(mem: GuardedMemory, chain: DescriptorChain) {
  const hdr = readableBytes(mem, chain, BLK_OUTHDR_SIZE);
  if (hdr.length < BLK_OUTHDR_SIZE) return undefined;
  const dv = new DataView(hdr.buffer, hdr.byteOffset, hdr.length);
  const typeNum = dv.getUint32(0, true);
  const sector = dv.getUint32(8, true) + dv.getUint32(12, true) * 2 ** 32;
  const type = BLK_TYPES[typeNum] ?? `type ${typeNum}`;
  // Data sits between header and status byte, in the direction the type implies.
  const length = typeNum === T.VIRTIO_BLK_T_OUT ? chain.readableLength - BLK_OUTHDR_SIZE : Math.max(0, chain.writableLength - 1);
  return { type, sector, length };
}

export const blkDecoder: RequestDecoder = {
  popped(mem, _queue, chain) {
    const h = blkHeader(mem, chain);
    if (!h) return { detail: 'no virtio_blk_outhdr (short chain)' };
    return { detail: `${h.type} sector ${h.sector} · ${h.length} B`, fields: h };
  },
  completed(mem, _queue, chain, len) {
    if (!chain) return undefined;
    const h = blkHeader(mem, chain);
    const last = chain.writable.at(-1);
    const statusByte = last ? mem.bytes(last.addr + last.len - 1, 1)?.[0] : undefined;
    const status = statusByte === undefined ? 'none' : (BLK_STATUS[statusByte] ?? `status ${statusByte}`);
    if (!h) return { detail: `status ${status}, used len ${len}`, fields: { status } };
    return { detail: `${h.type} sector ${h.sector} · ${h.length} B → ${status}`, fields: { ...h, status } };
  },
};

/** Longest frame worth decoding for a summary (headers are at the front). */
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

export const rngDecoder: RequestDecoder = {
  popped: (_mem, _queue, chain) => ({ detail: `asks for ${chain.writableLength} B` }),
  completed: (_mem, _queue, _chain, len) => ({ detail: `${len} random bytes`, fields: { bytes: len } }),
};

const field = (name: string, value: string | number, section: string): ConfigField => ({ name, value: String(value), section });

function blkConfig(d: VirtioBlk): ConfigField[] {
  const l = d.config.limits;
  const mib = (d.capacitySectors * 512) / (1 << 20);
  return [
    field('capacity', `${d.capacitySectors} sectors (${mib.toFixed(1)} MiB)`, '5.2.4'),
    field('size_max', l.sizeMax, '5.2.4'),
    field('seg_max', l.segMax, '5.2.4'),
    field('blk_size', l.blkSize, '5.2.4'),
    field('physical_block_exp', l.physicalBlockExp, '5.2.4'),
    field('writeback', d.writeback ? '1 (write-back)' : '0 (write-through)', '5.2.4'),
    field('read-only', d.backend.readOnly ? 'yes (VIRTIO_BLK_F_RO)' : 'no', '5.2.3'),
  ];
}

function netConfig(d: VirtioNet): ConfigField[] {
  return [
    field('mac', formatMac(d.mac), '5.1.4'),
    field('status', d.linkUp ? '1 (LINK_UP)' : '0 (link down)', '5.1.4'),
    field('max_virtqueue_pairs', 1, '5.1.4'),
    field('mtu', d.mtu, '5.1.4'),
  ];
}

/** How the inspector shows this device, and how its timeline decodes requests. */
export function inspectorView(device: VirtioDevice): { view: FunctionView; decoder: RequestDecoder } {
  if (device instanceof VirtioBlk) return { view: { queueNames: ['requestq'], config: () => blkConfig(device) }, decoder: blkDecoder };
  if (device instanceof VirtioNet) return { view: { queueNames: ['receiveq', 'transmitq'], config: () => netConfig(device) }, decoder: netDecoder };
  if (device instanceof VirtioRng) return { view: { queueNames: ['requestq'], config: () => [] }, decoder: rngDecoder };
  return { view: {}, decoder: {} };
}
