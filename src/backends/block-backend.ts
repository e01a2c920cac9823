/**
 * Where a virtio-blk disk's bytes live. Synchronous on purpose: OPFS's
 * FileSystemSyncAccessHandle (in the VM worker) and Node's fs *Sync calls are, so a kick
 * can be served completely inside the notify handler, like vhost serving a ring.
 */
import type { ReadCacheStats } from './read-cache.ts';

export type BlockBackendErrorKind =
  /** The medium failed (I/O error). */
  | 'io'
  /** Out of storage quota (OPFS QuotaExceededError, ENOSPC). */
  | 'quota'
  /** Write to a read-only backend. */
  | 'read-only'
  /** Offset/length outside the image: a caller bug, never sent to the medium. */
  | 'range';

export class BlockBackendError extends Error {
  constructor(
    readonly kind: BlockBackendErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'BlockBackendError';
  }
}

export interface BlockBackend {
  /** Capacity in bytes, a multiple of 512. */
  readonly size: number;
  readonly readOnly: boolean;
  /**
   * Each call costs more than copying a whole request once (a syscall or an OPFS call per
   * piece): the device then moves a multi-piece request in one call through a bounce buffer.
   * Unset for memory, where going piece by piece saves that copy; 'reads' where only reads
   * cost a call and writes are copies anyway (the write-behind cache).
   */
  readonly coalesceRequests?: boolean | 'reads';
  /**
   * Bytes of completed writes held in a volatile cache that the medium has not seen yet
   * (write-back-cache.ts); absent or 0: none. flush() writes them out.
   */
  readonly cachedWriteBytes?: number;
  /**
   * Host ms spent inside the medium's own calls (OPFS, the host file) so far; absent: not
   * measured. Splits the device's host time into ours and the medium's (bench disk table).
   */
  readonly mediumMs?: number;
  /** Host ms of work done outside any request (the write cache's timer write-outs) so far. */
  readonly backgroundMs?: number;
  /** Host ms a writer worker spent storing this disk's writes, on its own thread (write-behind). */
  readonly writerMs?: number;
  /** Counters of a read cache in front of the medium (read-cache.ts); absent: none. */
  readonly readCache?: Readonly<ReadCacheStats>;
  /** Fill `dst` from byte `offset`. Throws BlockBackendError. */
  read(offset: number, dst: Uint8Array): void;
  /** Store `src` at byte `offset`. Throws BlockBackendError ('read-only', 'quota', 'io'). */
  write(offset: number, src: Uint8Array): void;
  /** Make every completed write durable. */
  flush(): void;
  /**
   * Media whose writes complete in another worker (write-behind/): durability comes later,
   * and the device holds a FLUSH until this settles. When set, callers use it, not flush().
   */
  flushAsync?(): Promise<void>;
  /**
   * Media with a bounded amount of work in flight: undefined when a write ('write': `length`
   * bytes at `offset`) or a DISCARD/WRITE_ZEROES ('zero') can run now, else a promise to retry
   * it on. The device keeps the request, in order, until then.
   */
  admit?(op: 'write' | 'zero', offset: number, length: number): Promise<void> | undefined;
  /** The range may be dropped; reads of it afterwards return zeroes in our backends. */
  discard(offset: number, length: number): void;
  /** The range reads back as zeroes. */
  writeZeroes(offset: number, length: number): void;
  /** Release the medium (the OPFS handle lock, the file descriptor); a promise where that waits for a writer. */
  close(): void | Promise<void>;
}

/** Zeroes are written in pieces of this size (neither Node nor OPFS can punch holes). */
const ZERO_CHUNK = 1 << 20;
/** Shared and never written to: backends only read it. */
let zeroChunk: Uint8Array | undefined;

/** Store zeroes over [offset, offset + length) through `write`, at most 1 MiB per call. */
export function writeZeroesInChunks(write: (offset: number, src: Uint8Array) => void, offset: number, length: number): void {
  zeroChunk ??= new Uint8Array(ZERO_CHUNK);
  for (let at = 0; at < length; at += ZERO_CHUNK) {
    write(offset + at, zeroChunk.subarray(0, Math.min(ZERO_CHUNK, length - at)));
  }
}
