/**
 * Executing a parsed virtio-blk request against a BlockBackend. Data moves between the
 * backend and guest RAM through live views of guest memory (no per-request buffers).
 *
 * The status byte is NOT written here: the device writes it, and returns the chain, once
 * the batch is over, because in write-through mode a write only counts as done after the
 * flush that follows it.
 */
import type { GuestMemory } from '../../virtio/bus.ts';
import type { Region } from '../../virtio/queue/descriptor-chain.ts';
import { BlockBackendError, type BlockBackend, type BlockBackendErrorKind } from '../../backends/block-backend.ts';
import type { BlkRequest } from './request.ts';
import {
  SECTOR_SIZE,
  VirtioBlkReqType as T,
  VirtioBlkStatus as S,
  type VirtioBlkStatusValue,
} from './spec.ts';
import type { BounceBuffer } from './bounce.ts';

export interface BlkIoTarget {
  readonly memory: GuestMemory;
  readonly backend: BlockBackend;
  /** GET_ID's answer, ≤ 20 bytes. */
  readonly serial: Uint8Array;
  /** VIRTIO_BLK_F_RO offered: every write-type request fails without reaching the backend. */
  readonly readOnly: boolean;
  /** Negotiated VIRTIO_BLK_F_DISCARD / VIRTIO_BLK_F_WRITE_ZEROES. */
  readonly discard: boolean;
  readonly writeZeroes: boolean;
  /** Coalesces multi-piece IN requests into one backend call (none: piece by piece). */
  readonly bounce?: BounceBuffer;
  /** OUT requests too (the backend's write is a call, not just a copy). */
  readonly bounceWrites?: boolean;
}

export interface BlkOutcome {
  status: VirtioBlkStatusValue;
  /** Bytes the device wrote from the start of the writable buffers (see usedLength()). */
  usedLen: number;
  /** Disk bytes moved. */
  bytesRead: number;
  bytesWritten: number;
  /** Zeroed or discarded bytes. */
  bytesZeroed: number;
  /** The backend's contents changed: in write-through mode a flush must precede completion. */
  modified: boolean;
  /** Why the status is not OK (for logs/tests). */
  reason?: string;
  /** The backend failed (not the guest): the host should hear of it. */
  backendError?: { kind: BlockBackendErrorKind; message: string };
}

/** Call `visit(view, diskOffset)` for each guest piece of `regions`, in order. */
function eachPiece(memory: GuestMemory, regions: readonly Region[], diskOffset: number, visit: (view: Uint8Array, at: number) => void): void {
  let at = diskOffset;
  for (const r of regions) {
    visit(memory.view(r.addr, r.len), at);
    at += r.len;
  }
}

function backendFailure(error: unknown): { kind: BlockBackendErrorKind; message: string } {
  if (error instanceof BlockBackendError) return { kind: error.kind, message: error.message };
  // Not the documented error type (a bug, or a platform error the backend did not map):
  // still the medium's fault as far as the guest is concerned.
  return { kind: 'io', message: error instanceof Error ? error.message : String(error) };
}

function outcome(req: BlkRequest, status: VirtioBlkStatusValue, extra: Partial<BlkOutcome> = {}): BlkOutcome {
  return {
    status,
    usedLen: usedLength(req, status),
    bytesRead: 0,
    bytesWritten: 0,
    bytesZeroed: 0,
    modified: false,
    ...extra,
  };
}

/** used.len is a le32 (§2.7.8): the largest value it can hold. */
const MAX_USED_LEN = 0xffffffff;

/**
 * used.len must not exceed what we wrote from the first writable byte on (§2.7.8.2: it is a
 * lower bound; the driver may not trust more). The status byte is the last writable byte,
 * so it only counts when everything before it was written too: a successful IN, a GET_ID
 * whose buffer the id filled (≤ 20 bytes), or a chain whose only writable byte is the
 * status. A GET_ID with a larger buffer counts its 20 id bytes; a failed IN leaves its data
 * unspecified: 0. Linux's virtio_blk ignores len anyway. A successful IN is at most
 * BLK_MAX_REQUEST_BYTES + 1 (the parser refuses larger): never near 2^32, and clamped anyway
 * so no arithmetic here can wrap in the le32.
 */
export function usedLength(req: BlkRequest, status: VirtioBlkStatusValue): number {
  if (req.writableLength === 1) return 1;
  if (status !== S.VIRTIO_BLK_S_OK) return 0;
  const filledAll = req.dataLength === req.writableLength - 1;
  let len = 0;
  if (req.type === T.VIRTIO_BLK_T_IN) len = req.writableLength;
  else if (req.type === T.VIRTIO_BLK_T_GET_ID) len = filledAll ? req.writableLength : req.dataLength;
  return Math.min(len, MAX_USED_LEN);
}

export function executeBlkRequest(req: BlkRequest, target: BlkIoTarget): BlkOutcome {
  if (req.error) return outcome(req, req.error.status, { reason: req.error.reason });
  const { memory, backend } = target;
  const writeType =
    req.type === T.VIRTIO_BLK_T_OUT || req.type === T.VIRTIO_BLK_T_DISCARD || req.type === T.VIRTIO_BLK_T_WRITE_ZEROES;
  if (writeType && target.readOnly) return outcome(req, S.VIRTIO_BLK_S_IOERR, { reason: 'the disk is read-only' });
  if (req.type === T.VIRTIO_BLK_T_DISCARD && !target.discard) {
    return outcome(req, S.VIRTIO_BLK_S_UNSUPP, { reason: 'DISCARD not negotiated' });
  }
  if (req.type === T.VIRTIO_BLK_T_WRITE_ZEROES && !target.writeZeroes) {
    return outcome(req, S.VIRTIO_BLK_S_UNSUPP, { reason: 'WRITE_ZEROES not negotiated' });
  }

  try {
    switch (req.type) {
      case T.VIRTIO_BLK_T_IN: {
        const scratch = req.data.length > 1 ? target.bounce?.take(req.dataLength) : undefined;
        if (scratch) {
          // One read, then scattered: guest RAM is untouched if the read fails.
          backend.read(req.offset, scratch);
          let pos = 0;
          for (const r of req.data) {
            memory.view(r.addr, r.len).set(scratch.subarray(pos, pos + r.len));
            memory.written(r.addr, r.len);
            pos += r.len;
          }
          return outcome(req, S.VIRTIO_BLK_S_OK, { bytesRead: req.dataLength });
        }
        // Straight from the medium into guest RAM; `written` even after a partial failure.
        let at = req.offset;
        for (const r of req.data) {
          try {
            backend.read(at, memory.view(r.addr, r.len));
          } finally {
            memory.written(r.addr, r.len);
          }
          at += r.len;
        }
        return outcome(req, S.VIRTIO_BLK_S_OK, { bytesRead: req.dataLength });
      }
      case T.VIRTIO_BLK_T_OUT: {
        let modified = false;
        const scratch = req.data.length > 1 && target.bounceWrites ? target.bounce?.take(req.dataLength) : undefined;
        try {
          if (scratch) {
            eachPiece(memory, req.data, 0, (view, at) => scratch.set(view, at));
            modified = true;
            backend.write(req.offset, scratch);
          } else {
            eachPiece(memory, req.data, req.offset, (view, at) => {
              modified = true;
              backend.write(at, view);
            });
          }
        } catch (error) {
          // Some pieces may have landed: in write-through mode they still need the flush.
          return { ...outcome(req, S.VIRTIO_BLK_S_IOERR), ...failed(error), modified };
        }
        return outcome(req, S.VIRTIO_BLK_S_OK, { bytesWritten: req.dataLength, modified: req.dataLength > 0 });
      }
      case T.VIRTIO_BLK_T_FLUSH:
        if (!target.readOnly) backend.flush();
        return outcome(req, S.VIRTIO_BLK_S_OK);
      case T.VIRTIO_BLK_T_GET_ID: {
        // The serial, NUL-padded to the id's ≤ 20 bytes (the parser cut the buffer there).
        eachPiece(memory, req.data, 0, (view, at) => {
          view.fill(0);
          if (at < target.serial.length) view.set(target.serial.subarray(at, at + view.length));
        });
        for (const r of req.data) memory.written(r.addr, r.len);
        return outcome(req, S.VIRTIO_BLK_S_OK);
      }
      case T.VIRTIO_BLK_T_DISCARD:
      case T.VIRTIO_BLK_T_WRITE_ZEROES: {
        let zeroed = 0;
        try {
          for (const seg of req.segments) {
            if (seg.numSectors === 0) continue;
            const offset = seg.sector * SECTOR_SIZE;
            const length = seg.numSectors * SECTOR_SIZE;
            // WRITE_ZEROES always writes zeroes, unmap or not: only that guarantees the
            // "reads return zeroes" the spec requires of it, on every backend.
            if (req.type === T.VIRTIO_BLK_T_DISCARD) backend.discard(offset, length);
            else backend.writeZeroes(offset, length);
            zeroed += length;
          }
        } catch (error) {
          return { ...outcome(req, S.VIRTIO_BLK_S_IOERR), ...failed(error), bytesZeroed: zeroed, modified: true };
        }
        return outcome(req, S.VIRTIO_BLK_S_OK, { bytesZeroed: zeroed, modified: zeroed > 0 });
      }
      default:
        // parseBlkRequest refuses every other type.
        return outcome(req, S.VIRTIO_BLK_S_UNSUPP, { reason: `request type ${req.type}` });
    }
  } catch (error) {
    return { ...outcome(req, S.VIRTIO_BLK_S_IOERR), ...failed(error) };
  }
}

function failed(error: unknown): Pick<BlkOutcome, 'reason' | 'backendError'> {
  const backendError = backendFailure(error);
  return { reason: `${backendError.kind}: ${backendError.message}`, backendError };
}
