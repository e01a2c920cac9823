/**
 * A write-back cache whose medium writes run in another worker: the write cache virtio-blk's
 * writeback mode allows (§5.2.6.4), with the medium's costly calls (on OPFS ~50 µs per write
 * call, more per MiB, and the fdatasync of a FLUSH) off the emulator's thread.
 *
 * - A write completes once copied into the slab. Dirty blocks are sent to the writer, in
 *   batches of ascending runs, once `sendBytes` are dirty or `sendAfterMs` after the first.
 * - A sent block stays readable here until the writer says it is stored; a write to it
 *   meanwhile takes a fresh slot (the batch's bytes never change under the writer).
 * - flushAsync() sends what is dirty and asks the writer to flush after it: it resolves once
 *   everything completed before it is durable (the device holds the FLUSH until then).
 * - Reads see the newest bytes: cached blocks (dirty or sent) from the slab, the rest from
 *   this worker's own handle, which sees every write the writer has acknowledged.
 *
 * Bounds: memory, maxBytes of slab + buffers of the batches in flight (≤ maxBytes, as a batch
 * only carries slab blocks); a write that finds too few free slots is not started: admit()
 * returns a promise for the next acknowledgement and the device retries the request then.
 * DISCARD and WRITE_ZEROES run on this worker's handle once no batch is in flight, so no
 * earlier batch can land over their zeroes.
 *
 * A batch the writer failed to store keeps its blocks cached and dirty (nothing completed is
 * dropped); they are sent again at the next send, at most once per `retryMs`, and the next
 * flush fails (IOERR to the guest, the failure to the host).
 */
import { BlockBackendError, type BlockBackend } from '../block-backend.ts';
import { WRITE_BATCH_BYTES, type ToWriter, type WriterDone } from './protocol.ts';
import { BlockTable } from './block-table.ts';
import { readThroughCache } from '../cached-read.ts';

export const BEHIND_BLOCK = 4096;
/**
 * Default slab: 16 MiB and a block, so the largest request virtio-blk takes (16 MiB) fits
 * whatever its alignment once the writer has caught up.
 */
export const DEFAULT_BEHIND_BYTES = (16 << 20) + BEHIND_BLOCK;
/**
 * Default dirty bytes that start a send at once: a whole batch, so a sequential stream goes
 * out as one 1 MiB write call (~330 µs on OPFS) rather than four of 256 KiB (~140 µs each).
 */
export const DEFAULT_SEND_BYTES = 1 << 20;
/** Default age of the oldest dirty block before it is sent anyway. */
export const DEFAULT_SEND_AFTER_MS = 25;
/** After a failed batch, its blocks go out again at most this often. */
export const DEFAULT_RETRY_MS = 1000;

/**
 * The parts of a MessagePort or Worker (DOM or Node) the cache uses; the handler is declared
 * method-style (bivariant) so the DOM's MessageEvent fits without casts.
 */
export interface WriterPort {
  postMessage(message: ToWriter, transfer?: Transferable[]): void;
  onmessage: { bivarianceHack(event: { data: WriterDone }): void }['bivarianceHack'] | null;
}

export interface WriteBehindOptions {
  maxBytes?: number;
  sendBytes?: number;
  sendAfterMs?: number;
  retryMs?: number;
  /** Called once the writer has closed (close() resolved or the writer died): release locks. */
  onClosed?: () => void;
}

export interface WriteBehindStats {
  /** Write batches posted, and the blocks they carried. */
  batches: number;
  blocksSent: number;
  /** Writes that found a sent block and took a fresh slot for it. */
  rewritesInFlight: number;
  /** Requests admit() made wait: for free slots, or for no batch in flight (zeroes). */
  waitsForRoom: number;
  waitsForIdle: number;
  /** Flushes posted, and those skipped because nothing was sent since the last good one. */
  flushes: number;
  flushesSkipped: number;
  failedBatches: number;
}

const FREE = 0;
const DIRTY = 1;
const SENT = 2;

interface Batch {
  kind: 'write';
  blocks: number[];
  slots: number[];
}
interface Settle {
  kind: 'flush' | 'close';
  resolve: () => void;
  reject: (error: Error) => void;
}

export class WriteBehindCache implements BlockBackend {
  readonly size: number;
  readonly readOnly = false;
  /** Reads of uncached blocks are OPFS calls; a write is a copy into the slab whatever its pieces. */
  readonly coalesceRequests = 'reads';
  readonly maxBytes: number;
  readonly stats: WriteBehindStats = {
    batches: 0,
    blocksSent: 0,
    rewritesInFlight: 0,
    waitsForRoom: 0,
    waitsForIdle: 0,
    flushes: 0,
    flushesSkipped: 0,
    failedBatches: 0,
  };
  /** Host ms the writer spent in the medium's calls (its thread, not ours). */
  writerMs = 0;
  /** Host ms of timer sends: work no request waits for. */
  backgroundMs = 0;

  private readonly sendBytes: number;
  private readonly sendAfterMs: number;
  private readonly retryMs: number;
  private readonly slots: number;
  private slab: Uint8Array | undefined;
  private readonly slotState: Uint8Array;
  /** A stack: popped in ascending order while whole batches come back, so neighbours get neighbouring slots. */
  private readonly freeSlots: number[] = [];
  /** Block → the slot with its newest bytes (dirty or sent). */
  private readonly current: BlockTable;
  /**
   * Blocks that became dirty since the last send, in no order; an entry may repeat or be
   * stale (zeroed since): send() keeps those whose current slot is dirty, once.
   */
  private dirtyList: number[] = [];
  /** Bytes of dirty slots. */
  private dirtyBytes = 0;
  private readonly inFlight = new Map<number, Batch | Settle>();
  private batchesInFlight = 0;
  private seq = 0;
  private readonly pool: ArrayBuffer[] = [];
  /** Called at every acknowledgement (admit's waits). */
  private waiters: (() => void)[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private retryNotBefore = 0;
  /** Something was posted that no successful flush has covered yet (at first: unknown). */
  private sentSinceFlush = true;
  /** The last flush posted: a flush with nothing new to send is done when it is. */
  private lastFlush: Promise<void> = Promise.resolve();
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly reader: BlockBackend,
    private readonly port: WriterPort,
    private readonly opts: WriteBehindOptions = {},
  ) {
    this.size = reader.size;
    this.maxBytes = opts.maxBytes ?? DEFAULT_BEHIND_BYTES;
    this.sendBytes = opts.sendBytes ?? DEFAULT_SEND_BYTES;
    this.sendAfterMs = opts.sendAfterMs ?? DEFAULT_SEND_AFTER_MS;
    this.retryMs = opts.retryMs ?? DEFAULT_RETRY_MS;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < BEHIND_BLOCK || this.maxBytes % BEHIND_BLOCK !== 0) {
      throw new RangeError(`write-behind cache: maxBytes ${this.maxBytes} is not a positive multiple of ${BEHIND_BLOCK}`);
    }
    this.slots = this.maxBytes / BEHIND_BLOCK;
    this.current = new BlockTable(Math.ceil(this.size / BEHIND_BLOCK));
    this.slotState = new Uint8Array(this.slots);
    for (let s = this.slots - 1; s >= 0; s--) this.freeSlots.push(s);
    port.onmessage = (event) => this.acknowledged(event.data);
  }

  get mediumMs(): number | undefined {
    return this.reader.mediumMs;
  }

  /** Bytes of completed writes the medium has not stored yet (dirty and in flight). */
  get cachedWriteBytes(): number {
    return this.current.size * BEHIND_BLOCK;
  }

  /** Messages posted to the writer and not yet acknowledged. */
  get pendingMessages(): number {
    return this.inFlight.size;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockBackendError('range', `[${offset}, +${length}) is outside the ${this.size}-byte disk`);
    }
  }

  private blockLength(block: number): number {
    return Math.min(BEHIND_BLOCK, this.size - block * BEHIND_BLOCK);
  }

  private blocksSpanned(offset: number, length: number): number {
    if (length === 0) return 0;
    return Math.floor((offset + length - 1) / BEHIND_BLOCK) - Math.floor(offset / BEHIND_BLOCK) + 1;
  }

  /**
   * Undefined when a request can run now; otherwise a promise to retry it on. A write needs a
   * free slot per block it spans; zeroes need no batch in flight.
   */
  admit(op: 'write' | 'zero', offset: number, length: number): Promise<void> | undefined {
    if (this.dead) return undefined; // the request then fails with the writer's death
    if (this.dirtyBytes >= this.sendBytes) this.send();
    if (op === 'zero') {
      if (this.batchesInFlight === 0) return undefined;
      this.stats.waitsForIdle++;
      return this.nextAcknowledgement();
    }
    const need = this.blocksSpanned(offset, length);
    if (need <= this.freeSlots.length || need > this.slots) return undefined;
    this.stats.waitsForRoom++;
    this.send(); // what is dirty, so that acknowledgements free room
    return this.nextAcknowledgement();
  }

  private nextAcknowledgement(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once nothing posted to the writer is unacknowledged (or the writer died). */
  async whenIdle(): Promise<void> {
    while (this.inFlight.size > 0 && !this.dead) await this.nextAcknowledgement();
  }

  read(offset: number, dst: Uint8Array): void {
    this.check(offset, dst.length);
    if (this.current.size === 0) return this.reader.read(offset, dst);
    readThroughCache(offset, dst, BEHIND_BLOCK, (block) => this.current.get(block), this.slab, this.reader);
  }

  write(offset: number, src: Uint8Array): void {
    this.check(offset, src.length);
    if (this.dead) throw new BlockBackendError('io', this.dead.message);
    if (this.blocksSpanned(offset, src.length) > this.freeSlots.length) {
      // admit() said wait: a caller that did not ask is a bug, not the medium's failure.
      throw new BlockBackendError('range', `write of ${src.length} bytes: the write-behind cache has no room (admit() first)`);
    }
    this.slab ??= new Uint8Array(this.maxBytes);
    const slab = this.slab;
    const end = offset + src.length;
    // Copies go out in spans: neighbouring blocks in neighbouring slots take one set().
    let spanFrom = offset; // source offset (disk bytes) where the pending span starts
    let spanSlotAt = -1; // slab byte where it goes
    let spanEnd = offset;
    const copySpan = () => {
      if (spanEnd > spanFrom) slab.set(src.subarray(spanFrom - offset, spanEnd - offset), spanSlotAt);
    };
    for (let at = offset; at < end; ) {
      const block = Math.floor(at / BEHIND_BLOCK);
      const blockStart = block * BEHIND_BLOCK;
      const next = Math.min(end, blockStart + BEHIND_BLOCK);
      let slot = this.current.get(block);
      if (slot === -1 || this.slotState[slot] === SENT) {
        const fresh = this.freeSlots.pop()!;
        const length = this.blockLength(block);
        if (at > blockStart || next < blockStart + length) {
          // A partial block: the rest from its sent copy, or from the medium.
          if (slot !== -1) slab.copyWithin(fresh * BEHIND_BLOCK, slot * BEHIND_BLOCK, slot * BEHIND_BLOCK + length);
          else {
            try {
              this.reader.read(blockStart, slab.subarray(fresh * BEHIND_BLOCK, fresh * BEHIND_BLOCK + length));
            } catch (error) {
              this.freeSlots.push(fresh);
              copySpan();
              throw error;
            }
          }
        }
        if (slot !== -1) this.stats.rewritesInFlight++;
        slot = fresh;
        this.slotState[slot] = DIRTY;
        this.current.set(block, slot);
        this.dirtyList.push(block);
        this.dirtyBytes += length;
      }
      const to = slot * BEHIND_BLOCK + (at - blockStart);
      if (to !== spanSlotAt + (spanEnd - spanFrom)) {
        copySpan();
        spanFrom = at;
        spanSlotAt = to;
      }
      spanEnd = next;
      at = next;
    }
    copySpan();
    // No send here: the device writes a request piece by piece, and a send between its pieces
    // would make a later piece of the same block take a second slot admit() did not count.
    // admit() sends before the next request once sendBytes are dirty; the timer otherwise.
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer !== undefined || this.dirtyBytes === 0) return;
    const delay = Math.max(this.sendAfterMs, this.retryNotBefore - performance.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const t0 = performance.now();
      this.send();
      this.backgroundMs += performance.now() - t0;
    }, delay);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private post(message: ToWriter, entry: Batch | Settle, transfer?: Transferable[]): void {
    this.inFlight.set(message.seq, entry);
    this.port.postMessage(message, transfer);
  }

  /** Every dirty block to the writer, by ascending offset, in batches of ≤ WRITE_BATCH_BYTES. */
  private send(): void {
    this.cancelTimer();
    if (this.dirtyBytes === 0 || this.dead) return;
    const blocks = Float64Array.from(this.dirtyList).sort();
    this.dirtyList = [];
    this.dirtyBytes = 0;
    const slab = this.slab!;
    let batch: Batch = { kind: 'write', blocks: [], slots: [] };
    let buffer = this.pool.pop() ?? new ArrayBuffer(WRITE_BATCH_BYTES);
    let bytes = new Uint8Array(buffer);
    let runs: number[] = [];
    let used = 0;
    const flushBatch = () => {
      const seq = ++this.seq;
      this.batchesInFlight++;
      this.stats.batches++;
      this.stats.blocksSent += batch.blocks.length;
      this.sentSinceFlush = true;
      this.post({ type: 'write', seq, buffer, runs }, batch, [buffer]);
    };
    // Copies in spans: neighbouring blocks in neighbouring slots take one set().
    let spanSlotAt = 0;
    let spanLength = 0;
    let spanUsed = 0;
    const copySpan = () => {
      if (spanLength) bytes.set(slab.subarray(spanSlotAt, spanSlotAt + spanLength), spanUsed);
      spanLength = 0;
    };
    let previous = -1;
    for (const block of blocks) {
      const slot = this.current.get(block);
      // A repeated entry, or a block zeroed since it became dirty.
      if (block === previous || slot === -1 || this.slotState[slot] !== DIRTY) continue;
      previous = block;
      const length = this.blockLength(block);
      if (used + length > WRITE_BATCH_BYTES) {
        copySpan();
        flushBatch();
        batch = { kind: 'write', blocks: [], slots: [] };
        buffer = this.pool.pop() ?? new ArrayBuffer(WRITE_BATCH_BYTES);
        bytes = new Uint8Array(buffer);
        runs = [];
        used = 0;
      }
      if (spanLength && slot * BEHIND_BLOCK === spanSlotAt + spanLength && used === spanUsed + spanLength) spanLength += length;
      else {
        copySpan();
        spanSlotAt = slot * BEHIND_BLOCK;
        spanUsed = used;
        spanLength = length;
      }
      const offset = block * BEHIND_BLOCK;
      const last = runs.length - 2;
      // Extends the previous run when the block follows it on the disk.
      if (last >= 0 && runs[last]! + runs[last + 1]! === offset) runs[last + 1]! += length;
      else runs.push(offset, length);
      used += length;
      this.slotState[slot] = SENT;
      batch.blocks.push(block);
      batch.slots.push(slot);
    }
    copySpan();
    if (batch.blocks.length) flushBatch();
    else this.pool.push(buffer);
  }

  private acknowledged(done: WriterDone): void {
    const entry = this.inFlight.get(done.seq);
    if (!entry) return;
    this.inFlight.delete(done.seq);
    this.writerMs += done.ms;
    if (entry.kind === 'write') {
      this.batchesInFlight--;
      if (done.buffer?.byteLength === WRITE_BATCH_BYTES) this.pool.push(done.buffer);
      if (done.error) {
        this.stats.failedBatches++;
        this.retryNotBefore = performance.now() + this.retryMs;
      }
      // Backwards: the free stack then pops these slots in ascending order again.
      for (let i = entry.blocks.length - 1; i >= 0; i--) {
        const block = entry.blocks[i]!;
        const slot = entry.slots[i]!;
        if (this.current.get(block) !== slot) this.release(slot);
        else if (done.error) {
          this.slotState[slot] = DIRTY;
          this.dirtyList.push(block);
          this.dirtyBytes += this.blockLength(block);
        } else {
          this.current.delete(block);
          this.release(slot);
        }
      }
      if (done.error) this.armTimer();
    } else if (done.error) {
      this.sentSinceFlush = true;
      entry.reject(new BlockBackendError(done.error.kind, done.error.message));
    } else entry.resolve();
    this.wake();
  }

  private release(slot: number): void {
    this.slotState[slot] = FREE;
    this.freeSlots.push(slot);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * The writer is gone (its worker failed): nothing in flight will be acknowledged. Every
   * wait ends, flushes fail; the cache keeps its blocks, so reads still see them.
   */
  writerFailed(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    this.cancelTimer();
    for (const [, entry] of this.inFlight) if (entry.kind !== 'write') entry.reject(new BlockBackendError('io', error.message));
    this.inFlight.clear();
    this.wake();
    this.opts.onClosed?.();
  }

  /** Everything completed so far is durable once this resolves. */
  flushAsync(): Promise<void> {
    if (this.dead) return Promise.reject(new BlockBackendError('io', this.dead.message));
    this.send();
    if (!this.sentSinceFlush) {
      // Nothing sent since the last flush was posted; that one may still be running, and what
      // it covers is durable only once it ends.
      this.stats.flushesSkipped++;
      return this.lastFlush;
    }
    this.sentSinceFlush = false;
    this.stats.flushes++;
    this.lastFlush = new Promise((resolve, reject) => this.post({ type: 'flush', seq: ++this.seq }, { kind: 'flush', resolve, reject }));
    return this.lastFlush;
  }

  /** Synchronous durability cannot be had here: callers use flushAsync(). */
  flush(): void {
    throw new BlockBackendError('io', 'the write-behind cache flushes asynchronously (flushAsync)');
  }

  /** Zero a range on this worker's handle: only once no batch is in flight (admit('zero')). */
  private zeroRange(offset: number, length: number, how: (offset: number, length: number) => void): void {
    this.check(offset, length);
    if (this.batchesInFlight > 0) throw new BlockBackendError('range', 'zeroes while batches are in flight (admit() first)');
    if (length === 0) return;
    const first = Math.floor(offset / BEHIND_BLOCK);
    const last = Math.floor((offset + length - 1) / BEHIND_BLOCK);
    // The medium gets the zeroes; cached blocks inside the range are dropped, those it overlaps zeroed.
    this.current.forEachIn(first, last, (block, slot) => {
      const blockStart = block * BEHIND_BLOCK;
      const lo = Math.max(offset, blockStart);
      const hi = Math.min(offset + length, blockStart + this.blockLength(block));
      if (lo === blockStart && hi === blockStart + this.blockLength(block)) {
        // Dirty (nothing is in flight now): its dirtyList entry goes stale.
        this.current.delete(block);
        this.dirtyBytes -= this.blockLength(block);
        this.release(slot);
      } else this.slab!.fill(0, slot * BEHIND_BLOCK + (lo - blockStart), slot * BEHIND_BLOCK + (hi - blockStart));
    });
    this.sentSinceFlush = true;
    how(offset, length);
  }

  discard(offset: number, length: number): void {
    this.zeroRange(offset, length, (o, l) => this.reader.discard(o, l));
  }

  writeZeroes(offset: number, length: number): void {
    this.zeroRange(offset, length, (o, l) => this.reader.writeZeroes(o, l));
  }

  /**
   * Send what is dirty, let the writer flush and close, then close this worker's handle.
   * Resolves when the medium holds every completed write (or rejects with why not).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (!this.dead) {
          this.send();
          await new Promise<void>((resolve, reject) => this.post({ type: 'close', seq: ++this.seq }, { kind: 'close', resolve, reject }));
        }
      } finally {
        this.cancelTimer();
        this.reader.close();
        if (!this.dead) this.opts.onClosed?.();
      }
    })();
    return this.closing;
  }
}
