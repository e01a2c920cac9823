/**
 * virtio-blk (§5.2) over a BlockBackend: one request queue, served inside the kick (the
 * backends are synchronous) one budgeted pass at a time, like a vhost worker draining its ring.
 *
 * Per kick: pop and parse every available chain (request.ts), then one pass: execute the
 * parsed requests in order (io.ts) until the pass has moved BLK_DRAIN_BYTES (budget.ts),
 * then — after one flush for the pass in write-through mode — write the status bytes,
 * return the chains and ask the transport for at most one interrupt. Requests left over
 * wait, in order, for a pass scheduled through `defer` (or a microtask), so no kick costs
 * more than one pass whatever the guest queued.
 *
 * A backend whose writes complete in another worker (write-behind) changes two things: a
 * write it has no room for waits, in order, until `admit` says retry; and a FLUSH (or a
 * write-through pass) completes when the backend's asynchronous flush settles, while the
 * device goes on serving other requests.
 *
 * Guest mistakes in a request are answered with a status byte (IOERR/UNSUPP), never with
 * DEVICE_NEEDS_RESET: the ring itself is fine, only the request is bad. Backend failures
 * are IOERR to the guest and an `onBackendError` to the host (e.g. "storage full").
 */
import type { ConfigSpace } from '../../virtio/config-space.ts';
import { BlkFeature, DeviceId, PciClass, featureBit } from '../../virtio/constants.ts';
import type { DeviceContext, VirtioDevice } from '../../virtio/device.ts';
import { BlockBackendError, type BlockBackend, type BlockBackendErrorKind } from '../../backends/block-backend.ts';
import { BlkConfig, DEFAULT_BLK_LIMITS, type BlkLimits } from './config.ts';
import { executeBlkRequest, usedLength, type BlkIoTarget } from './io.ts';
import { BounceBuffer } from './bounce.ts';
import { parseBlkRequest } from './request.ts';
import { BLK_REQUESTQ, VIRTIO_BLK_ID_BYTES, VirtioBlkReqType as T, VirtioBlkStatus as S } from './spec.ts';
import { BLK_DRAIN_BYTES, checkLimits, requestCost } from './budget.ts';
import type { ParsedBlkRequest } from './request.ts';
import type { Virtqueue } from '../../virtio/queue/virtqueue.ts';
import { BlkStats } from './stats.ts';
import { DeferredKicks } from '../../virtio/deferred-kicks.ts';
import { PendingJob, type Scheduler } from '../../virtio/pending-job.ts';

export interface VirtioBlkOptions {
  backend: BlockBackend;
  /** The disk's name, answered to GET_ID (/sys/block/vda/serial): at most 20 bytes of UTF-8. */
  serial?: string;
  /** Advertised limits (defaults: DEFAULT_BLK_LIMITS). */
  limits?: Partial<BlkLimits>;
  /** requestq size, a power of 2 (default 256). */
  queueSize?: number;
  /**
   * Serve a kick later instead of inside the notify write (e.g. queueMicrotask: at the end
   * of the emulator's time slice). Kicks are suppressed meanwhile, so a guest that keeps
   * queueing (iodepth 32) fills the ring and one kick + one interrupt covers the batch; a
   * guest that waits idles at once and is served at once. Default: serve inside the kick.
   */
  defer?: (drain: () => void) => void;
  /**
   * Where the leftovers of a pass that spent its budget are served (the lab: a macrotask, so
   * the emulator runs between passes). Default: `defer`, else a microtask.
   */
  later?: (job: () => void) => void;
  /**
   * The backend failed ('quota': storage full; 'io'; ...). The guest got IOERR. Called at
   * most once per kind per kick, so a guest hammering a full disk cannot flood the host.
   */
  onBackendError?(kind: BlockBackendErrorKind, message: string): void;
}

/** A popped chain, parsed, waiting for its pass. */
interface Waiting {
  head: number;
  req: ParsedBlkRequest;
}

interface Completion {
  head: number;
  /** -1: no status byte (unanswerable chain). */
  statusAddr: number;
  status: number;
  usedLen: number;
  modified: boolean;
}

export class VirtioBlk implements VirtioDevice {
  readonly name = 'virtio-blk';
  readonly deviceId = DeviceId.BLOCK;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly pciClass = PciClass.STORAGE_OTHER;
  readonly deviceConfig: ConfigSpace;
  readonly config: BlkConfig;
  readonly backend: BlockBackend;
  readonly serial: Uint8Array;
  readonly stats = new BlkStats();
  /** Most recent reason a request was refused or failed (for logs and tests). */
  lastRequestError: string | undefined;

  private ctx: DeviceContext | undefined;
  private target: BlkIoTarget | undefined;
  private readonly onBackendError: VirtioBlkOptions['onBackendError'];
  /** Completions of the current kick, reused across kicks. */
  private readonly batch: Completion[] = [];
  private readonly deferred: DeferredKicks | undefined;
  private readonly bounce = new BounceBuffer();
  /** Popped and parsed, not yet served: at most the queue size, in ring order from `nextWaiting`. */
  private readonly waiting: Waiting[] = [];
  private nextWaiting = 0;
  /** Where a pass for the leftovers runs: `later`, else `defer`, else a microtask. */
  private readonly later: Scheduler;
  /** The scheduled leftover pass. */
  private readonly continuation = new PendingJob();
  /** A request waits for the backend's room (admit); the pass resumes when it settles. */
  private admitWait: Promise<void> | undefined;
  /** Completions held until the backend's asynchronous flush settles, and those flushes. */
  private held = 0;
  private readonly heldFlushes = new Set<Promise<void>>();

  constructor(opts: VirtioBlkOptions) {
    this.backend = opts.backend;
    this.deferred = opts.defer && new DeferredKicks(opts.defer);
    this.later = opts.later ?? opts.defer ?? ((job) => queueMicrotask(job));
    this.onBackendError = opts.onBackendError;
    this.serial = new TextEncoder().encode(opts.serial ?? '');
    if (this.serial.length > VIRTIO_BLK_ID_BYTES) {
      throw new RangeError(`virtio-blk: serial "${opts.serial}" is ${this.serial.length} bytes; at most ${VIRTIO_BLK_ID_BYTES}`);
    }
    const limits = { ...DEFAULT_BLK_LIMITS, ...opts.limits };
    checkLimits(limits);
    const readOnly = opts.backend.readOnly;
    // Write-back by default: writes go to the backend at once and become durable at FLUSH,
    // which Linux sends for fsync/journal commits — one flush per commit, not per write.
    this.config = new BlkConfig(opts.backend.size, limits, true, (writeback) => {
      // Leaving write-back: what earlier writes left in the cache must not stay volatile.
      if (writeback) return;
      if (this.backend.flushAsync) this.flushLater(undefined);
      else {
        const failure = this.flushBackend();
        if (failure) this.backendFailed(failure, new Set());
      }
    });
    this.deviceConfig = this.config.space;
    this.queueMaxSizes = [opts.queueSize ?? 256];
    let features =
      featureBit(BlkFeature.VIRTIO_BLK_F_SIZE_MAX) |
      featureBit(BlkFeature.VIRTIO_BLK_F_SEG_MAX) |
      featureBit(BlkFeature.VIRTIO_BLK_F_BLK_SIZE) |
      featureBit(BlkFeature.VIRTIO_BLK_F_FLUSH) |
      featureBit(BlkFeature.VIRTIO_BLK_F_TOPOLOGY) |
      featureBit(BlkFeature.VIRTIO_BLK_F_CONFIG_WCE);
    // Discard and write-zeroes write: pointless to offer on a read-only disk.
    if (readOnly) features |= featureBit(BlkFeature.VIRTIO_BLK_F_RO);
    else features |= featureBit(BlkFeature.VIRTIO_BLK_F_DISCARD) | featureBit(BlkFeature.VIRTIO_BLK_F_WRITE_ZEROES);
    this.deviceFeatures = features;
  }

  get capacitySectors(): number {
    return this.config.capacitySectors;
  }

  /**
   * The cache mode in force: the writeback byte when CONFIG_WCE was negotiated; otherwise
   * write-back exactly when the driver can FLUSH (a driver that cannot flush must get
   * durable writes: §5.2.5.1 legacy behaviour, and what SeaBIOS gets).
   */
  get writeback(): boolean {
    const ctx = this.ctx;
    if (!ctx) return this.config.writeback;
    if (ctx.hasFeature(BlkFeature.VIRTIO_BLK_F_CONFIG_WCE)) return this.config.writeback;
    return ctx.hasFeature(BlkFeature.VIRTIO_BLK_F_FLUSH);
  }

  /**
   * §5.2.5.1: with CONFIG_WCE but not FLUSH negotiated the device MUST initialise writeback
   * to 0 — a driver that cannot flush must not start on a volatile cache.
   */
  featuresAccepted(features: bigint): void {
    const has = (bit: number) => (features & featureBit(bit)) !== 0n;
    if (has(BlkFeature.VIRTIO_BLK_F_CONFIG_WCE) && !has(BlkFeature.VIRTIO_BLK_F_FLUSH)) this.config.setWriteback(false);
  }

  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.target = {
      memory: ctx.memory,
      backend: this.backend,
      serial: this.serial,
      readOnly: this.backend.readOnly,
      discard: ctx.hasFeature(BlkFeature.VIRTIO_BLK_F_DISCARD),
      writeZeroes: ctx.hasFeature(BlkFeature.VIRTIO_BLK_F_WRITE_ZEROES),
      bounce: this.backend.coalesceRequests ? this.bounce : undefined,
      bounceWrites: this.backend.coalesceRequests === true,
    };
  }

  reset(): void {
    this.ctx = undefined;
    this.target = undefined;
    this.config.resetWriteback();
    this.deferred?.cancel();
    this.waiting.length = 0;
    this.nextWaiting = 0;
    this.continuation.cancel();
    // Held completions and admit waits see the new context on settling and drop their chains.
    this.admitWait = undefined;
  }

  /**
   * Work that would complete later (a deferred kick, requests waiting for a pass), or
   * undefined when there is none.
   */
  get outstandingWork(): string | undefined {
    if (this.deferred?.pending) return 'a deferred kick';
    if (this.held) return `${this.held} requests waiting for the disk's flush`;
    if (this.admitWait) return 'requests waiting for room in the write cache';
    const waiting = this.waiting.length - this.nextWaiting;
    if (waiting > 0 || this.continuation.pending) return `${waiting} requests waiting for a pass`;
    // Completed writes only a volatile cache holds: a saved state must not outlive them.
    const cached = this.backend.cachedWriteBytes;
    if (cached) return `${cached} bytes of completed writes in the write cache`;
    return undefined;
  }

  /**
   * Serve the deferred kick and every leftover pass now instead of later (a snapshot: the
   * emulator is stopped, so the guest adds nothing). Each round drains the ring or serves at
   * least one waiting request, and at most a queue's worth wait: bounded by the queue size.
   * Then the write cache goes to the medium (and is flushed), so the disk holds every write
   * the saved guest believes done; if that fails the device stays busy and quiesce fails.
   */
  settleNow(): void | Promise<void> {
    // Synchronous backends settle synchronously (snapshot campaigns rely on it).
    if (this.backend.flushAsync || this.backend.admit) return this.settleWriteBehind();
    const rounds = 2 * this.queueMaxSizes[0]! + 2;
    for (let round = 0; round < rounds; round++) {
      if (!(this.deferred?.runNow() || this.continuation.runNow())) break;
    }
    if (this.backend.cachedWriteBytes) {
      const failure = this.flushBackend();
      if (failure) this.backendFailed(failure, new Set());
    }
  }

  /** settleNow() over a write-behind backend: waits for room and for held flushes, then flushes. */
  private async settleWriteBehind(): Promise<void> {
    // Each round serves a request, or waits for the backend to make room or end a flush.
    const rounds = 4 * this.queueMaxSizes[0]! + 4;
    for (let round = 0; round < rounds; round++) {
      if (this.deferred?.runNow() || this.continuation.runNow()) continue;
      if (this.admitWait) await this.admitWait.then(() => this.continuation.runNow());
      else if (this.heldFlushes.size) await Promise.all(this.heldFlushes);
      else break;
    }
    if (this.backend.readOnly) return;
    // What the writer stored may not be durable yet, even with nothing cached (the flush
    // skips fdatasync when nothing was sent since the last one).
    try {
      await this.backend.flushAsync?.();
    } catch (error) {
      this.backendFailed(failureOf(error), new Set());
    }
  }

  notify(queueIndex: number): void {
    if (!this.deferred) return this.drain(queueIndex);
    const queue = this.ctx?.queue(queueIndex);
    if (queue) this.deferred.schedule(this.ctx!, queue, () => this.drain(queueIndex));
  }

  /** Take everything available on the queue, serve one pass of it; at most one interrupt. */
  private drain(queueIndex: number): void {
    const ctx = this.ctx;
    const target = this.target;
    if (queueIndex !== BLK_REQUESTQ || !ctx || !target) return;
    const queue = ctx.queue(queueIndex);
    if (!queue) return;
    const stats = this.stats;
    // A malformed ring makes pop() throw; the transport turns that into DEVICE_NEEDS_RESET.
    // At most queue-size chains; parsing reads a header and at most max_*_seg segments each.
    try {
      for (let chain = queue.pop(); chain; chain = queue.pop()) {
        const t0 = performance.now();
        this.waiting.push({ head: chain.headIndex, req: parseBlkRequest(ctx.memory, chain, this.config) });
        stats.hostMs += performance.now() - t0;
      }
    } catch (error) {
      // The queue is broken: its chains are never completed, so the requests popped before
      // the break wait for nothing (kept, they would make the device busy for good and no
      // VM snapshot could be saved until a reset).
      this.waiting.length = 0;
      this.nextWaiting = 0;
      throw error;
    }
    this.servePass(ctx, target, queue);
    // Waiting for the backend: its settling schedules the next pass (mustWait).
    if (this.nextWaiting < this.waiting.length && !this.admitWait) this.continueLater(ctx, queue);
  }

  /** Execute waiting requests in order until the pass has moved BLK_DRAIN_BYTES; complete them. */
  private servePass(ctx: DeviceContext, target: BlkIoTarget, queue: Virtqueue): void {
    const batch = this.batch;
    batch.length = 0;
    const reported = new Set<BlockBackendErrorKind>();
    const stats = this.stats;
    let modified = false;
    let spent = 0;

    while (this.nextWaiting < this.waiting.length) {
      const { head, req } = this.waiting[this.nextWaiting];
      if (req.kind === 'unanswerable') {
        this.nextWaiting++;
        stats.unanswerable++;
        this.lastRequestError = req.reason;
        batch.push({ head, statusAddr: -1, status: S.VIRTIO_BLK_S_IOERR, usedLen: 0, modified: false });
        continue;
      }
      // Every request costs ≤ BLK_MAX_REQUEST_BYTES = BLK_DRAIN_BYTES: the first always fits.
      const cost = requestCost(req);
      if (spent + cost > BLK_DRAIN_BYTES) break;
      if (this.mustWait(ctx, req)) break;
      spent += cost;
      this.nextWaiting++;
      if (req.type === T.VIRTIO_BLK_T_FLUSH && this.backend.flushAsync && !req.error && !target.readOnly) {
        // Completes when the backend's flush settles; the pass goes on meanwhile.
        stats.count(req.type, { status: S.VIRTIO_BLK_S_OK, usedLen: 0, bytesRead: 0, bytesWritten: 0, bytesZeroed: 0, modified: false });
        this.flushLater({ queue, completions: [{ head, statusAddr: req.statusAddr, status: S.VIRTIO_BLK_S_OK, usedLen: usedLength(req, S.VIRTIO_BLK_S_OK), modified: false }] });
        continue;
      }
      const t0 = performance.now();
      const out = executeBlkRequest(req, target);
      stats.count(req.type, out);
      if (out.reason !== undefined) this.lastRequestError = out.reason;
      if (out.backendError) this.backendFailed(out.backendError, reported);
      modified ||= out.modified;
      batch.push({ head, statusAddr: req.statusAddr, status: out.status, usedLen: out.usedLen, modified: out.modified });
      const ms = performance.now() - t0;
      stats.hostMs += ms;
      if (req.type === T.VIRTIO_BLK_T_FLUSH) stats.flushMs += ms;
    }
    if (this.nextWaiting === this.waiting.length) {
      this.waiting.length = 0;
      this.nextWaiting = 0;
    }
    if (batch.length === 0) return;

    // Write-through: the pass's writes are durable before any of them completes.
    if (modified && !this.writeback && this.backend.flushAsync) {
      this.flushLater({ queue, completions: batch.filter((c) => c.modified) });
      const rest = batch.filter((c) => !c.modified);
      batch.length = 0;
      batch.push(...rest);
      if (batch.length === 0) return;
    } else if (modified && !this.writeback) {
      const t0 = performance.now();
      const failure = this.flushBackend();
      if (failure) {
        for (const c of batch) {
          if (c.modified && c.status === S.VIRTIO_BLK_S_OK) {
            c.status = S.VIRTIO_BLK_S_IOERR;
            stats.ioErrors++;
          }
        }
        this.backendFailed(failure, reported);
      }
      const ms = performance.now() - t0;
      stats.hostMs += ms;
      stats.flushMs += ms;
    }

    for (const c of batch) {
      if (c.statusAddr >= 0) ctx.memory.writeU8(c.statusAddr, c.status);
      queue.pushUsed(c.head, c.usedLen);
    }
    stats.batches++;
    if (batch.length > stats.maxBatch) stats.maxBatch = batch.length;
    ctx.signalUsed(queue);
  }

  /**
   * Whether the next request must wait for the backend (write-behind: no room for a write, or
   * zeroes while writes are in flight); if so, a pass is scheduled for when it may go on.
   */
  private mustWait(ctx: DeviceContext, req: ParsedBlkRequest): boolean {
    if (this.admitWait) return true;
    const admit = this.backend.admit;
    if (!admit || req.kind !== 'request' || req.error || this.backend.readOnly) return false;
    let wait: Promise<void> | undefined;
    if (req.type === T.VIRTIO_BLK_T_OUT) wait = admit.call(this.backend, 'write', req.offset, req.dataLength);
    else if (req.type === T.VIRTIO_BLK_T_DISCARD || req.type === T.VIRTIO_BLK_T_WRITE_ZEROES) wait = admit.call(this.backend, 'zero', 0, 0);
    if (!wait) return false;
    this.stats.backendWaits++;
    const queue = ctx.queue(BLK_REQUESTQ);
    const settled: Promise<void> = wait.then(() => {
      if (this.admitWait !== settled) return; // a reset came in between
      this.admitWait = undefined;
      if (queue) this.continueLater(ctx, queue);
    });
    this.admitWait = settled;
    return true;
  }

  /**
   * Complete `held` (if any) when the backend's asynchronous flush settles: OK if it
   * succeeded, IOERR for each OK one if not. Nothing is completed after a reset.
   */
  private flushLater(held: { queue: Virtqueue; completions: Completion[] } | undefined): void {
    const ctx = this.ctx;
    const n = held?.completions.length ?? 0;
    this.held += n;
    this.stats.asyncFlushes++;
    const started = performance.now();
    const done: Promise<void> = this.backend.flushAsync!().then(
      () => undefined,
      (error: unknown) => failureOf(error),
    ).then((failure) => {
      this.heldFlushes.delete(done);
      this.held -= n;
      this.stats.flushWaitMs += performance.now() - started;
      if (failure) {
        this.lastRequestError = failure.message;
        this.backendFailed(failure, new Set());
      }
      if (!held || !ctx || this.ctx !== ctx || ctx.queue(held.queue.index) !== held.queue) return;
      try {
        for (const c of held.completions) {
          if (failure && c.status === S.VIRTIO_BLK_S_OK) {
            c.status = S.VIRTIO_BLK_S_IOERR;
            this.stats.ioErrors++;
          }
          if (c.statusAddr >= 0) ctx.memory.writeU8(c.statusAddr, c.status);
          held.queue.pushUsed(c.head, c.usedLen);
        }
        ctx.signalUsed(held.queue);
      } catch (error) {
        ctx.fail(error);
      }
    });
    this.heldFlushes.add(done);
  }

  /** One more pass for the leftovers, later (once, however often asked; never after a reset). */
  private continueLater(ctx: DeviceContext, queue: Virtqueue): void {
    if (this.continuation.pending) return;
    this.stats.passesLater++;
    this.continuation.post(this.later, () => {
      if (this.ctx !== ctx || ctx.queue(queue.index) !== queue) return;
      try {
        this.drain(BLK_REQUESTQ);
      } catch (error) {
        // Outside the BAR handler nobody else catches: report (DEVICE_NEEDS_RESET), never throw.
        ctx.fail(error);
      }
    });
  }

  /** The device's own backend.flush() (write-through, leaving write-back); the failure, if any. */
  private flushBackend(): { kind: BlockBackendErrorKind; message: string } | undefined {
    if (this.backend.readOnly) return undefined;
    try {
      this.stats.writeThroughFlushes++;
      this.backend.flush();
      return undefined;
    } catch (error) {
      const failure = failureOf(error);
      this.lastRequestError = failure.message;
      return failure;
    }
  }

  /** Count a backend failure; tell the host once per kind per kick (`reported`). */
  private backendFailed(failure: { kind: BlockBackendErrorKind; message: string }, reported: Set<BlockBackendErrorKind>): void {
    this.stats.backendErrors++;
    if (failure.kind === 'quota') this.stats.quotaErrors++;
    if (reported.has(failure.kind)) return;
    reported.add(failure.kind);
    try {
      this.onBackendError?.(failure.kind, failure.message);
    } catch {
      // the host's bug must not become the guest's problem
    }
  }
}

/** A flush's failure as the host hears of it. */
function failureOf(error: unknown): { kind: BlockBackendErrorKind; message: string } {
  const kind = error instanceof BlockBackendError ? error.kind : 'io';
  return { kind, message: `flush: ${error instanceof Error ? error.message : String(error)}` };
}
