/**
 * virtio-blk for the inspector: struct virtio_blk_config decoded (§5.2.4) and requests
 * decoded for the timeline (§5.2.6). Read-only and never throws: a header outside guest RAM
 * is "no decode", not an error.
 */
import type { GuardedMemory } from '../../virtio/inspect/guarded-memory.ts';
import { readableBytes, type RequestDecoder } from '../../virtio/inspect/timeline.ts';
import type { ConfigField } from '../../virtio/inspect/types.ts';
import type { DescriptorChain } from '../../virtio/queue/descriptor-chain.ts';
import { configField as field } from '../config-field.ts';
import type { VirtioBlk } from './blk.ts';
import { BLK_OUTHDR_SIZE, VirtioBlkReqType as T, VirtioBlkStatus as S } from './spec.ts';

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

export function blkConfigFields(d: VirtioBlk): ConfigField[] {
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
