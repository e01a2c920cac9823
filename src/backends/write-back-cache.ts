/**
 * A volatile write cache in front of a costly BlockBackend (OPFS, a host file): the write
 * cache virtio-blk's writeback mode lets a device have (§5.2.6.4 VIRTIO_BLK_F_CONFIG_WCE).
 * A small write completes once copied here; the medium sees it at the next write-out:
 *
 * - flush() (the guest's FLUSH, write-through's per-pass flush, a snapshot's quiesce, close)
 *   writes every cached block out, then flushes the medium: what completed before the
 *   FLUSH is durable before the FLUSH completes;
 * - a timer `maxAgeMs` after the cache stops being clean (bounds what a killed tab loses of
 *   writes the guest never asked to be durable, like Linux's own dirty page expiry);
 * - a write that finds the cache full (`maxBytes`, the cache's memory bound).
 *
 * Order: a write-out takes every block cached so far, so the medium never sees a later
 * epoch (after a FLUSH) before an earlier one. Within an epoch blocks go out by ascending
 * offset, nearby ones in one call: the driver cannot depend on the order of writes it has
 * not flushed (a crash may keep any subset), and merged runs mean fewer calls.
 *
 * Bounds: memory, maxBytes of slab + a 1 MiB gather buffer + a Map entry per cached block;
 * one write-out, ≤ maxBytes / 4 KiB medium writes moving ≤ 2 × maxBytes (the gaps it fills
 * are budgeted) and ≤ maxBytes of gap reads. A FLUSH, or a write finding the cache full, may
 * run one inside a device pass (16 MiB cache: some tens of ms of OPFS work at most).
 *
 * Reads see cached blocks. Large writes (≥ `bypassBytes`: sequential streams) go straight to
 * the medium — copying them here would only add a copy — and update any cached block they
 * overlap, so the medium and the cache never disagree about the newest bytes.
 *
 * A FLUSH with nothing written to the medium since the last one that succeeded skips the
 * medium's flush (on OPFS an fdatasync, 0.3 ms to tens of ms under load): there is nothing
 * it could make durable. The first flush after opening always reaches the medium.
 *
 * A failed write-out keeps its blocks cached (nothing completed is dropped) and throws to
 * whoever asked: a FLUSH then fails (IOERR, "storage full" to the host), a write that needed
 * room fails; the timer retries at its next period.
 */
import { BlockBackendError, type BlockBackend } from './block-backend.ts';
import { readThroughCache } from './cached-read.ts';

/** Cache granularity: the guest's page, ext4's block, and the physical block blk advertises. */
export const CACHE_BLOCK = 4096;
/** Default memory bound: 16 MiB of cached blocks (one request's cap, so one fits). */
export const DEFAULT_CACHE_BYTES = 16 << 20;
/** Default age bound of a cached write before it goes out. */
export const DEFAULT_CACHE_AGE_MS = 1000;
/**
 * Default size from which a write bypasses the cache. Caching 1 MiB sequential writes was
 * slower (`bench:profile -- --opfs --variants`): a second copy and 256 map entries per
 * request, then the same OPFS write, and nothing to absorb (a stream does not rewrite).
 */
export const DEFAULT_BYPASS_BYTES = 128 << 10;

/**
 * Default largest gap of clean blocks a write-out fills in to save a medium call: none yet.
 * Filling gaps saves OPFS calls on scattered writes (a call costs ~70 µs up to 64 KiB) but
 * rewrites blocks the guest did not write, which the next FLUSH's fdatasync then pays for:
 * on random 4 KiB writes a 64 KiB gap saved nothing per request and lengthened the FLUSH
 * (`bench:profile -- --opfs --variants`). Off.
 */
export const DEFAULT_MERGE_GAP_BYTES = 0;
/** A write-out call covers at most this much of the disk (the gather buffer's size). */
export const MERGE_SPAN_BYTES = 1 << 20;

/** Schedules `job` in `ms`; returns how to cancel it. */
export type CacheTimer = (job: () => void, ms: number) => () => void;

const setTimer: CacheTimer = (job, ms) => {
  const id = setTimeout(job, ms);
  return () => clearTimeout(id);
};

export interface WriteBackCacheOptions {
  /** Memory bound in bytes, a multiple of CACHE_BLOCK (default 16 MiB). */
  maxBytes?: number;
  /** A cached write reaches the medium at most this long after the cache became dirty. */
  maxAgeMs?: number;
  /** Writes of at least this many bytes go straight to the medium. */
  bypassBytes?: number;
  /** Cached blocks at most this far apart go out in one call (0: only neighbours). */
  mergeGapBytes?: number;
  timer?: CacheTimer;
}

/** Counters, for benchmarks and tests. */
export interface WriteBackCacheStats {
  /** Write-outs run (flush, timer, full cache), and the medium calls they made. */
  writeOuts: number;
  writeOutCalls: number;
  /** Blocks cached (a block overwritten while cached counts once). */
  blocksCached: number;
  /** Writes that went straight to the medium. */
  bypassed: number;
  /** Write-outs forced by a full cache; failed write-outs. */
  fullWriteOuts: number;
  failedWriteOuts: number;
  /** Flushes that did not reach the medium: nothing was written to it since the last one. */
  flushesSkipped: number;
}

export class WriteBackCache implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  readonly coalesceRequests: boolean | 'reads' | undefined;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly bypassBytes: number;
  readonly mergeGapBytes: number;
  readonly stats: WriteBackCacheStats = { writeOuts: 0, writeOutCalls: 0, blocksCached: 0, bypassed: 0, fullWriteOuts: 0, failedWriteOuts: 0, flushesSkipped: 0 };

  /** maxBytes / CACHE_BLOCK slots, allocated at the first cached write. */
  private slab: Uint8Array | undefined;
  private readonly slots: number;
  /** Cached block index → slot. At most `slots` entries. */
  private readonly cached = new Map<number, number>();
  /** Slots below `bump` that were freed while others stayed cached. */
  private readonly free: number[] = [];
  /** Slots from here up were never used since the cache was last empty. */
  private bump = 0;
  /** MERGE_SPAN_BYTES, allocated at the first write-out that fills a gap. */
  private gatherBuffer: Uint8Array | undefined;
  private cancelTimer: (() => void) | undefined;
  private readonly timer: CacheTimer;
  /**
   * The medium may hold writes its last flush did not cover. Set before every call that can
   * change it (a failed call may have changed part), cleared by a flush that succeeded; set
   * at first, as nothing says the medium was flushed before we opened it.
   */
  private mediumDirty = true;

  constructor(
    readonly inner: BlockBackend,
    opts: WriteBackCacheOptions = {},
  ) {
    this.size = inner.size;
    this.readOnly = inner.readOnly;
    this.coalesceRequests = inner.coalesceRequests;
    this.maxBytes = opts.maxBytes ?? DEFAULT_CACHE_BYTES;
    this.maxAgeMs = opts.maxAgeMs ?? DEFAULT_CACHE_AGE_MS;
    this.bypassBytes = opts.bypassBytes ?? DEFAULT_BYPASS_BYTES;
    this.mergeGapBytes = Math.min(opts.mergeGapBytes ?? DEFAULT_MERGE_GAP_BYTES, MERGE_SPAN_BYTES);
    this.timer = opts.timer ?? setTimer;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < CACHE_BLOCK || this.maxBytes % CACHE_BLOCK !== 0) {
      throw new RangeError(`write cache: maxBytes ${this.maxBytes} is not a positive multiple of ${CACHE_BLOCK}`);
    }
    if (!(this.maxAgeMs > 0) || !(this.bypassBytes > 0) || !(this.mergeGapBytes >= 0)) {
      throw new RangeError('write cache: maxAgeMs and bypassBytes must be positive, mergeGapBytes not negative');
    }
    this.slots = this.maxBytes / CACHE_BLOCK;
  }

  /** Host ms of timer write-outs: work no request waits for, so no request's host time holds it. */
  backgroundMs = 0;

  get mediumMs(): number | undefined {
    return this.inner.mediumMs;
  }

  /** Bytes of completed writes the medium has not seen yet (whole blocks). */
  get cachedWriteBytes(): number {
    return this.cached.size * CACHE_BLOCK;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockBackendError('range', `[${offset}, +${length}) is outside the ${this.size}-byte disk`);
    }
  }

  private checkWritable(): void {
    if (this.readOnly) throw new BlockBackendError('read-only', 'write to a read-only disk');
  }

  /** Block `block`'s bytes on the disk: CACHE_BLOCK, or less for a short last block. */
  private blockLength(block: number): number {
    return Math.min(CACHE_BLOCK, this.size - block * CACHE_BLOCK);
  }

  private slotView(slot: number, length = CACHE_BLOCK): Uint8Array {
    return this.slab!.subarray(slot * CACHE_BLOCK, slot * CACHE_BLOCK + length);
  }

  read(offset: number, dst: Uint8Array): void {
    this.check(offset, dst.length);
    if (this.cached.size === 0) return this.inner.read(offset, dst);
    readThroughCache(offset, dst, CACHE_BLOCK, (block) => this.cached.get(block) ?? -1, this.slab, this.inner);
  }

  write(offset: number, src: Uint8Array): void {
    this.checkWritable();
    this.check(offset, src.length);
    if (src.length >= this.bypassBytes) return this.writeThrough(offset, src);
    const end = offset + src.length;
    for (let at = offset; at < end; ) {
      const block = Math.floor(at / CACHE_BLOCK);
      const blockStart = block * CACHE_BLOCK;
      const next = Math.min(end, blockStart + CACHE_BLOCK);
      let slot = this.cached.get(block);
      if (slot === undefined) {
        slot = this.allocate();
        const length = this.blockLength(block);
        // A partial block needs the rest of its bytes from the medium first.
        if (at > blockStart || next < blockStart + length) {
          try {
            this.inner.read(blockStart, this.slotView(slot, length));
          } catch (error) {
            this.release(slot);
            throw error;
          }
        }
        this.cached.set(block, slot);
        this.stats.blocksCached++;
      }
      this.slab!.set(src.subarray(at - offset, next - offset), slot * CACHE_BLOCK + (at - blockStart));
      at = next;
    }
    this.armTimer();
  }

  /** A large write: to the medium now; cached blocks it covers are dropped, those it overlaps patched. */
  private writeThrough(offset: number, src: Uint8Array): void {
    this.mediumDirty = true;
    this.inner.write(offset, src);
    this.stats.bypassed++;
    if (this.cached.size === 0) return;
    const end = offset + src.length;
    this.forCachedIn(offset, end, (block, slot, lo, hi) => {
      const blockStart = block * CACHE_BLOCK;
      if (lo === blockStart && hi === blockStart + this.blockLength(block)) this.drop(block, slot);
      else this.slab!.set(src.subarray(lo - offset, hi - offset), slot * CACHE_BLOCK + (lo - blockStart));
    });
  }

  /**
   * Call `visit(block, slot, lo, hi)` for each cached block overlapping [offset, end), with
   * the overlap's disk range. Walks whichever is smaller: the range's blocks or the cache.
   */
  private forCachedIn(offset: number, end: number, visit: (block: number, slot: number, lo: number, hi: number) => void): void {
    const first = Math.floor(offset / CACHE_BLOCK);
    const last = Math.floor((end - 1) / CACHE_BLOCK);
    const overlap = (block: number) => [Math.max(offset, block * CACHE_BLOCK), Math.min(end, (block + 1) * CACHE_BLOCK)] as const;
    if (last - first + 1 <= this.cached.size) {
      for (let block = first; block <= last; block++) {
        const slot = this.cached.get(block);
        if (slot !== undefined) visit(block, slot, ...overlap(block));
      }
    } else {
      for (const [block, slot] of [...this.cached]) {
        if (block >= first && block <= last) visit(block, slot, ...overlap(block));
      }
    }
  }

  private allocate(): number {
    if (this.cached.size >= this.slots) {
      this.stats.fullWriteOuts++;
      this.writeOut();
    }
    this.slab ??= new Uint8Array(this.maxBytes);
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    return this.bump++;
  }

  /** Give back a slot never entered in `cached`. */
  private release(slot: number): void {
    if (slot === this.bump - 1) this.bump--;
    else this.free.push(slot);
  }

  private drop(block: number, slot: number): void {
    this.cached.delete(block);
    this.free.push(slot);
    if (this.cached.size === 0) this.emptied();
  }

  /** Nothing cached: slots restart from 0, so the next burst fills the slab in order. */
  private emptied(): void {
    this.free.length = 0;
    this.bump = 0;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private armTimer(): void {
    if (this.cancelTimer || this.cached.size === 0) return;
    this.cancelTimer = this.timer(() => {
      this.cancelTimer = undefined;
      const t0 = performance.now();
      try {
        this.writeOut();
      } catch {
        // Blocks stay cached; the next FLUSH reports the failure to the guest and the host.
        this.armTimer();
      } finally {
        this.backgroundMs += performance.now() - t0;
      }
    }, this.maxAgeMs);
  }

  /**
   * Every cached block to the medium, by ascending offset, in as few calls as pay: on OPFS
   * a write costs ~70 µs whatever its size up to 64 KiB, a 4 KiB read ~5 µs, so blocks up to
   * MERGE_GAP_BYTES apart go out in one call of at most MERGE_SPAN_BYTES, the gap between
   * them read from the medium first (its own bytes, written back unchanged). Blocks leave
   * the cache only once written.
   */
  writeOut(): void {
    if (this.cached.size === 0) return;
    this.stats.writeOuts++;
    const blocks = [...this.cached.keys()].sort((a, b) => a - b);
    // Gap bytes filled in, over the whole write-out: at most maxBytes, so one write-out
    // writes ≤ 2 × maxBytes and reads ≤ maxBytes whatever the blocks' layout.
    let gapBudget = this.maxBytes;
    try {
      for (let i = 0; i < blocks.length; ) {
        const first = blocks[i];
        let n = 1;
        let contiguous = true; // no gap, and slots in disk order: the slab itself is the buffer
        while (i + n < blocks.length) {
          const next = blocks[i + n];
          const gapBytes = (next - blocks[i + n - 1] - 1) * CACHE_BLOCK;
          if (gapBytes > this.mergeGapBytes || gapBytes > gapBudget || (next + 1 - first) * CACHE_BLOCK > MERGE_SPAN_BYTES) break;
          gapBudget -= gapBytes;
          contiguous &&= gapBytes === 0 && this.cached.get(next) === this.cached.get(first)! + (next - first);
          n++;
        }
        const last = blocks[i + n - 1];
        const start = first * CACHE_BLOCK;
        const length = (last - first) * CACHE_BLOCK + this.blockLength(last);
        let data: Uint8Array;
        if (contiguous) {
          const from = this.cached.get(first)! * CACHE_BLOCK;
          data = this.slab!.subarray(from, from + length);
        } else {
          data = this.gather(blocks, i, n, start, length);
        }
        this.mediumDirty = true;
        this.inner.write(start, data);
        this.stats.writeOutCalls++;
        for (let k = 0; k < n; k++) {
          this.free.push(this.cached.get(blocks[i + k])!);
          this.cached.delete(blocks[i + k]);
        }
        i += n;
      }
    } catch (error) {
      this.stats.failedWriteOuts++;
      throw error;
    }
    this.emptied();
  }

  /** The span [start, +length) in the gather buffer: cached blocks blocks[i..i+n), the gaps from the medium. */
  private gather(blocks: readonly number[], i: number, n: number, start: number, length: number): Uint8Array {
    this.gatherBuffer ??= new Uint8Array(MERGE_SPAN_BYTES);
    const out = this.gatherBuffer.subarray(0, length);
    let at = start; // first byte not yet filled
    for (let k = 0; k < n; k++) {
      const block = blocks[i + k];
      const blockStart = block * CACHE_BLOCK;
      if (blockStart > at) this.inner.read(at, out.subarray(at - start, blockStart - start));
      const len = this.blockLength(block);
      out.set(this.slotView(this.cached.get(block)!, len), blockStart - start);
      at = blockStart + len;
    }
    return out;
  }

  /** Write everything out, then make the medium durable (unless it has nothing new to keep). */
  flush(): void {
    this.writeOut();
    if (!this.mediumDirty) {
      this.stats.flushesSkipped++;
      return;
    }
    this.inner.flush();
    this.mediumDirty = false;
  }

  discard(offset: number, length: number): void {
    this.zeroCached(offset, length);
    this.mediumDirty = true;
    this.inner.discard(offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    this.zeroCached(offset, length);
    this.mediumDirty = true;
    this.inner.writeZeroes(offset, length);
  }

  /** The range reads back as zeroes from the cache too: covered blocks dropped, overlapped ones zeroed. */
  private zeroCached(offset: number, length: number): void {
    this.checkWritable();
    this.check(offset, length);
    if (length === 0 || this.cached.size === 0) return;
    this.forCachedIn(offset, offset + length, (block, slot, lo, hi) => {
      const blockStart = block * CACHE_BLOCK;
      if (lo === blockStart && hi === blockStart + this.blockLength(block)) this.drop(block, slot);
      else this.slab!.fill(0, slot * CACHE_BLOCK + (lo - blockStart), slot * CACHE_BLOCK + (hi - blockStart));
    });
  }

  /** Writes out and flushes, then releases the medium even when that failed. */
  close(): void {
    try {
      if (!this.readOnly) this.flush();
    } finally {
      this.cancelTimer?.();
      this.cancelTimer = undefined;
      this.inner.close();
    }
  }
}
