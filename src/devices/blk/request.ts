/**
 * Turning a descriptor chain into a virtio-blk request (§5.2.6), without touching the disk.
 *
 * The wire format is a stream, not a descriptor layout (VERSION_1 implies ANY_LAYOUT): the
 * first 16 driver-readable bytes are struct virtio_blk_outhdr, the LAST driver-writable byte
 * is the status, and the data is whatever lies between, in the direction the type implies.
 * The queue has already checked every buffer lies in guest RAM and readable ones come
 * first; here we check what the request asks of the disk. Every defect becomes a verdict
 * (IOERR or UNSUPP) the executor answers with — never an exception, never a disk access.
 */
import type { GuestMemory } from '../../virtio/bus.ts';
import { RegionCursor, type DescriptorChain, type Region } from '../../virtio/queue/descriptor-chain.ts';
import type { BlkLimits } from './config.ts';
import {
  BLK_OUTHDR_SIZE,
  DISCARD_SEGMENT_SIZE,
  SECTOR_SIZE,
  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
  VirtioBlkReqType as T,
  VirtioBlkStatus as S,
  type VirtioBlkStatusValue,
} from './spec.ts';

/** One struct virtio_blk_discard_write_zeroes, already range-checked. */
export interface BlkSegment {
  readonly sector: number;
  readonly numSectors: number;
  readonly unmap: boolean;
}

export interface BlkRequest {
  readonly kind: 'request';
  /** struct virtio_blk_outhdr.type, or -1 when the header was too short to hold one. */
  readonly type: number;
  /** Byte offset on the disk (IN/OUT), checked against capacity when `error` is unset. */
  readonly offset: number;
  /** IN/GET_ID: writable regions before the status byte; OUT: readable regions after the header. */
  readonly data: readonly Region[];
  readonly dataLength: number;
  /** DISCARD / WRITE_ZEROES ranges. */
  readonly segments: readonly BlkSegment[];
  /** Guest address of the status byte. */
  readonly statusAddr: number;
  /** Bytes the chain lets the device write (data + status). */
  readonly writableLength: number;
  /** Set when the request must be refused without touching the disk. */
  readonly error?: { readonly status: VirtioBlkStatusValue; readonly reason: string };
}

/**
 * A chain with no driver-writable byte has nowhere to put a status: the only possible
 * answer is to return it used with len 0 (the driver learns nothing, but the descriptors
 * come back instead of leaking until reset).
 */
export interface UnanswerableRequest {
  readonly kind: 'unanswerable';
  readonly reason: string;
}

export type ParsedBlkRequest = BlkRequest | UnanswerableRequest;

export interface BlkDiskShape {
  readonly capacitySectors: number;
  readonly limits: BlkLimits;
}

/** `regions` restricted to bytes [start, start + len) of their concatenation. */
export function sliceRegions(regions: readonly Region[], start: number, len: number): Region[] {
  const out: Region[] = [];
  let skip = start;
  let want = len;
  for (const r of regions) {
    if (want <= 0) break;
    if (skip >= r.len) {
      skip -= r.len;
      continue;
    }
    const n = Math.min(r.len - skip, want);
    out.push({ addr: r.addr + skip, len: n });
    want -= n;
    skip = 0;
  }
  return out;
}

/** Guest address of byte `index` of the concatenated regions (index < total length). */
function addressAt(regions: readonly Region[], index: number): number {
  let at = index;
  for (const r of regions) {
    if (at < r.len) return r.addr + at;
    at -= r.len;
  }
  throw new RangeError(`byte ${index} is beyond the regions`); // callers pass index < length
}

/** Whether [sector, sector + sectors) lies on a disk of `capacity` sectors (no overflow). */
function inRange(sector: number, sectors: number, capacity: number): boolean {
  return sector <= capacity && sectors <= capacity - sector;
}

export function parseBlkRequest(memory: GuestMemory, chain: DescriptorChain, disk: BlkDiskShape): ParsedBlkRequest {
  if (chain.writableLength === 0) return { kind: 'unanswerable', reason: 'no driver-writable status byte' };

  const statusAddr = addressAt(chain.writable, chain.writableLength - 1);
  const writableData = chain.writableLength - 1;
  const readableData = chain.readableLength - BLK_OUTHDR_SIZE;
  const base = { kind: 'request' as const, statusAddr, writableLength: chain.writableLength };
  const refuse = (type: number, status: VirtioBlkStatusValue, reason: string): BlkRequest => ({
    ...base,
    type,
    offset: 0,
    data: [],
    dataLength: 0,
    segments: [],
    error: { status, reason },
  });

  if (readableData < 0) {
    return refuse(-1, S.VIRTIO_BLK_S_IOERR, `header is ${chain.readableLength} bytes, not ${BLK_OUTHDR_SIZE}`);
  }
  const cursor = new RegionCursor(memory, chain.readable);
  const header = new DataView(cursor.read(BLK_OUTHDR_SIZE).buffer);
  const type = header.getUint32(0, true);
  // le64 sector as a double: exact below 2^53, and anything larger is beyond any capacity anyway.
  const sector = header.getUint32(12, true) * 2 ** 32 + header.getUint32(8, true);

  const dataOnly = (direction: 'in' | 'out'): string | undefined => {
    if (direction === 'in' && readableData > 0) return `${readableData} driver-readable bytes after the header`;
    if (direction === 'out' && writableData > 0) return `${writableData} driver-writable bytes before the status`;
    return undefined;
  };

  switch (type) {
    case T.VIRTIO_BLK_T_IN:
    case T.VIRTIO_BLK_T_OUT: {
      const direction = type === T.VIRTIO_BLK_T_IN ? 'in' : 'out';
      const wrongWay = dataOnly(direction);
      if (wrongWay) return refuse(type, S.VIRTIO_BLK_S_IOERR, `${direction.toUpperCase()} with ${wrongWay}`);
      const dataLength = direction === 'in' ? writableData : readableData;
      if (dataLength % SECTOR_SIZE !== 0) {
        return refuse(type, S.VIRTIO_BLK_S_IOERR, `data length ${dataLength} is not a multiple of ${SECTOR_SIZE}`);
      }
      if (!inRange(sector, dataLength / SECTOR_SIZE, disk.capacitySectors)) {
        return refuse(type, S.VIRTIO_BLK_S_IOERR, `sectors [${sector}, +${dataLength / SECTOR_SIZE}) beyond capacity ${disk.capacitySectors}`);
      }
      const data =
        direction === 'in'
          ? sliceRegions(chain.writable, 0, dataLength)
          : sliceRegions(chain.readable, BLK_OUTHDR_SIZE, dataLength);
      return { ...base, type, offset: sector * SECTOR_SIZE, data, dataLength, segments: [] };
    }

    case T.VIRTIO_BLK_T_FLUSH: {
      const extra = dataOnly('in') ?? dataOnly('out');
      if (extra) return refuse(type, S.VIRTIO_BLK_S_IOERR, `FLUSH with ${extra}`);
      return { ...base, type, offset: 0, data: [], dataLength: 0, segments: [] };
    }

    case T.VIRTIO_BLK_T_GET_ID: {
      const wrongWay = dataOnly('in');
      if (wrongWay) return refuse(type, S.VIRTIO_BLK_S_IOERR, `GET_ID with ${wrongWay}`);
      if (writableData === 0) return refuse(type, S.VIRTIO_BLK_S_IOERR, 'GET_ID without a buffer for the id');
      return { ...base, type, offset: 0, data: sliceRegions(chain.writable, 0, writableData), dataLength: writableData, segments: [] };
    }

    case T.VIRTIO_BLK_T_DISCARD:
    case T.VIRTIO_BLK_T_WRITE_ZEROES: {
      const discard = type === T.VIRTIO_BLK_T_DISCARD;
      const what = discard ? 'DISCARD' : 'WRITE_ZEROES';
      const wrongWay = dataOnly('out');
      if (wrongWay) return refuse(type, S.VIRTIO_BLK_S_IOERR, `${what} with ${wrongWay}`);
      if (readableData === 0 || readableData % DISCARD_SEGMENT_SIZE !== 0) {
        return refuse(type, S.VIRTIO_BLK_S_IOERR, `${what} data of ${readableData} bytes is not whole segments`);
      }
      const count = readableData / DISCARD_SEGMENT_SIZE;
      const maxSeg = discard ? disk.limits.maxDiscardSeg : disk.limits.maxWriteZeroesSeg;
      const maxSectors = discard ? disk.limits.maxDiscardSectors : disk.limits.maxWriteZeroesSectors;
      // Checked before reading them, so a huge chain costs nothing.
      if (count > maxSeg) return refuse(type, S.VIRTIO_BLK_S_IOERR, `${what} with ${count} segments > ${maxSeg}`);
      const raw = new DataView(cursor.read(readableData).buffer);
      const segments: BlkSegment[] = [];
      // Flags first: §5.2.6.2 wants UNSUPP for an unknown flag, or for unmap on a DISCARD,
      // whatever else is wrong with the request.
      for (let i = 0; i < count; i++) {
        const flags = raw.getUint32(i * DISCARD_SEGMENT_SIZE + 12, true);
        const allowed = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
        if ((flags & ~allowed) !== 0) {
          return refuse(type, S.VIRTIO_BLK_S_UNSUPP, `${what} segment ${i} has flags 0x${flags.toString(16)}`);
        }
      }
      for (let i = 0; i < count; i++) {
        const at = i * DISCARD_SEGMENT_SIZE;
        const segSector = raw.getUint32(at + 4, true) * 2 ** 32 + raw.getUint32(at, true);
        const numSectors = raw.getUint32(at + 8, true);
        const flags = raw.getUint32(at + 12, true);
        if (numSectors > maxSectors) {
          return refuse(type, S.VIRTIO_BLK_S_IOERR, `${what} segment ${i}: ${numSectors} sectors > ${maxSectors}`);
        }
        if (!inRange(segSector, numSectors, disk.capacitySectors)) {
          return refuse(type, S.VIRTIO_BLK_S_IOERR, `${what} segment ${i}: sectors [${segSector}, +${numSectors}) beyond capacity ${disk.capacitySectors}`);
        }
        segments.push({ sector: segSector, numSectors, unmap: (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) !== 0 });
      }
      return { ...base, type, offset: 0, data: [], dataLength: 0, segments };
    }

    default:
      return refuse(type, S.VIRTIO_BLK_S_UNSUPP, `request type ${type} is not supported`);
  }
}
