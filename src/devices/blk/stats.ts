/**
 * Counters of a virtio-blk device for the inspector and benchmarks. Kicks and interrupts
 * are the transport's (VirtioPciFunction.stats); these are the device's own.
 */
import type { BlkOutcome } from './io.ts';
import { VirtioBlkReqType as T, VirtioBlkStatus as S } from './spec.ts';

export class BlkStats {
  /** Requests answered, by type. */
  in = 0;
  out = 0;
  flush = 0;
  getId = 0;
  discard = 0;
  writeZeroes = 0;
  /** Unknown or unnegotiated types (answered VIRTIO_BLK_S_UNSUPP). */
  unsupported = 0;
  /** Chains with no status byte, returned with len 0. */
  unanswerable = 0;
  /** Disk bytes moved by successful requests. */
  bytesRead = 0;
  bytesWritten = 0;
  /** Bytes discarded or zeroed. */
  bytesZeroed = 0;
  /** Requests answered VIRTIO_BLK_S_IOERR / VIRTIO_BLK_S_UNSUPP. */
  ioErrors = 0;
  unsupp = 0;
  /** Backend failures (each also an IOERR), and how many of them were 'quota'. */
  backendErrors = 0;
  quotaErrors = 0;
  /** Flushes the device issued on its own (write-through batches, leaving write-back). */
  writeThroughFlushes = 0;
  /** Kicks that completed at least one chain, and the most chains completed in one. */
  batches = 0;
  maxBatch = 0;
  /** Passes scheduled for later because one pass had moved its BLK_DRAIN_BYTES. */
  passesLater = 0;
  /** Host time spent parsing and executing requests (performance.now()), ms. */
  hostMs = 0;
  /** The part of hostMs spent in FLUSH requests and the device's own flushes, ms. */
  flushMs = 0;
  /** Write-behind backends: requests that waited for room, flushes the backend ran later, and their wall time, ms. */
  backendWaits = 0;
  asyncFlushes = 0;
  flushWaitMs = 0;

  get requests(): number {
    return this.in + this.out + this.flush + this.getId + this.discard + this.writeZeroes + this.unsupported + this.unanswerable;
  }

  /** One answered request of virtio_blk_outhdr.type `type`. */
  count(type: number, out: BlkOutcome): void {
    switch (type) {
      case T.VIRTIO_BLK_T_IN:
        this.in++;
        break;
      case T.VIRTIO_BLK_T_OUT:
        this.out++;
        break;
      case T.VIRTIO_BLK_T_FLUSH:
        this.flush++;
        break;
      case T.VIRTIO_BLK_T_GET_ID:
        this.getId++;
        break;
      case T.VIRTIO_BLK_T_DISCARD:
        this.discard++;
        break;
      case T.VIRTIO_BLK_T_WRITE_ZEROES:
        this.writeZeroes++;
        break;
      default:
        this.unsupported++;
    }
    if (out.status === S.VIRTIO_BLK_S_IOERR) this.ioErrors++;
    else if (out.status === S.VIRTIO_BLK_S_UNSUPP) this.unsupp++;
    else {
      this.bytesRead += out.bytesRead;
      this.bytesWritten += out.bytesWritten;
      this.bytesZeroed += out.bytesZeroed;
    }
  }

  /** Flat numbers, for DeviceStats.extra. */
  toRecord(): Record<string, number> {
    return {
      requests: this.requests,
      requestsIn: this.in,
      requestsOut: this.out,
      requestsFlush: this.flush,
      requestsGetId: this.getId,
      requestsDiscard: this.discard,
      requestsWriteZeroes: this.writeZeroes,
      requestsUnsupported: this.unsupported,
      requestsUnanswerable: this.unanswerable,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      bytesZeroed: this.bytesZeroed,
      ioErrors: this.ioErrors,
      unsupp: this.unsupp,
      backendErrors: this.backendErrors,
      quotaErrors: this.quotaErrors,
      writeThroughFlushes: this.writeThroughFlushes,
      batches: this.batches,
      maxBatch: this.maxBatch,
      passesLater: this.passesLater,
      hostMs: this.hostMs,
      flushMs: this.flushMs,
      backendWaits: this.backendWaits,
      asyncFlushes: this.asyncFlushes,
      flushWaitMs: this.flushWaitMs,
      hostUsPerRequest: this.requests ? (this.hostMs * 1000) / this.requests : 0,
    };
  }
}
