/**
 * The work one virtio-blk kick may cost the worker, written down (README, Reliability) and
 * enforced: a guest can alias one buffer in every descriptor, so "fits in guest RAM" bounds
 * nothing. Two numbers do:
 *
 *  - BLK_MAX_REQUEST_BYTES: the most bytes one request moves (IN/OUT data, zeroes written by
 *    DISCARD/WRITE_ZEROES). The advertised limits keep every request the spec allows under it
 *    (seg_max × size_max for data, max_*_seg × max_*_sectors for ranges), so the only request
 *    refused for its size (IOERR) is one no driver following the config would send.
 *  - BLK_DRAIN_BYTES: the most bytes one pass over the queue moves. The rest of the popped
 *    requests wait for a later pass (a deferred job), so a ring of 256 maximal requests costs
 *    16 passes instead of one stall.
 */
import type { BlkLimits } from './config.ts';
import type { BlkRequest } from './request.ts';
import { BLK_OUTHDR_SIZE, DISCARD_SEGMENT_SIZE, SECTOR_SIZE, VIRTIO_BLK_ID_BYTES, VirtioBlkReqType as T } from './spec.ts';

/**
 * 16 MiB. Linux builds requests from at most seg_max segments of at most size_max bytes
 * (blk_queue_max_segments / blk_queue_max_segment_size in virtblk_probe; max_hw_sectors is
 * unlimited) and by default no larger than 1280 KiB (max_sectors_kb): 16 MiB is 12× that.
 */
export const BLK_MAX_REQUEST_BYTES = 16 << 20;

/** 16 MiB per pass: a ~2–5 ms memcpy in V8, and at least one maximal request. */
export const BLK_DRAIN_BYTES = 16 << 20;

/**
 * What a FLUSH counts against the pass: a backend flush is a syscall or an OPFS flush
 * (~0.3 ms) whatever it moves, so a pass issues at most 64 of them (plus its own
 * write-through flush) instead of one per ring entry.
 */
export const BLK_FLUSH_COST = BLK_DRAIN_BYTES / 64;

/** Largest IN/OUT data a request may carry under `limits`: seg_max × size_max, and the cap. */
export function maxDataBytes(limits: BlkLimits): number {
  return Math.min(limits.segMax * limits.sizeMax, BLK_MAX_REQUEST_BYTES);
}

/** Throws when `limits` would let a spec-valid request move more than BLK_MAX_REQUEST_BYTES. */
export function checkLimits(limits: BlkLimits): void {
  const over = (what: string, bytes: number) => {
    if (bytes > BLK_MAX_REQUEST_BYTES) throw new RangeError(`virtio-blk: ${what} allows ${bytes} bytes per request; at most ${BLK_MAX_REQUEST_BYTES}`);
  };
  over('seg_max × size_max', limits.segMax * limits.sizeMax);
  over('max_discard_seg × max_discard_sectors', limits.maxDiscardSeg * limits.maxDiscardSectors * SECTOR_SIZE);
  over('max_write_zeroes_seg × max_write_zeroes_sectors', limits.maxWriteZeroesSeg * limits.maxWriteZeroesSectors * SECTOR_SIZE);
}

/** Bytes a parsed request will move when executed (0 for one refused without touching the disk). */
export function requestCost(req: BlkRequest): number {
  if (req.error) return 0;
  switch (req.type) {
    case T.VIRTIO_BLK_T_FLUSH:
      return BLK_FLUSH_COST;
    case T.VIRTIO_BLK_T_DISCARD:
    case T.VIRTIO_BLK_T_WRITE_ZEROES: {
      let sectors = 0;
      for (const s of req.segments) sectors += s.numSectors;
      return sectors * SECTOR_SIZE;
    }
    default:
      return req.dataLength;
  }
}

/**
 * Guest RAM bytes one pass may touch beyond the ring walk, as the work meter counts them
 * (a view counts whole; `written` notices count again): the pass's data twice (view +
 * notice), and for each of `queueSize` requests parsed its header, its range segments, a
 * GET_ID answer (view + notice) and its status byte.
 */
export function blkKickBudgetBytes(limits: BlkLimits, queueSize: number): number {
  const segments = Math.max(limits.maxDiscardSeg, limits.maxWriteZeroesSeg) * DISCARD_SEGMENT_SIZE;
  const perRequest = BLK_OUTHDR_SIZE + segments + 2 * VIRTIO_BLK_ID_BYTES + 1;
  return 2 * BLK_DRAIN_BYTES + queueSize * perRequest;
}
