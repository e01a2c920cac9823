/**
 * virtio-blk (§5.2) over a BlockBackend: one request queue, served completely inside the
 * kick (the backends are synchronous), like a vhost worker draining its ring.
 *
 * Per kick: pop every available chain, parse it (request.ts), execute it (io.ts),
 * then — after one flush for the whole batch in write-through mode — write the status
 * bytes, return the chains and ask the transport for at most one interrupt.
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
import { executeBlkRequest, type BlkIoTarget } from './io.ts';
import { BounceBuffer } from './bounce.ts';
import { parseBlkRequest } from './request.ts';
import { BLK_REQUESTQ, VIRTIO_BLK_ID_BYTES, VirtioBlkStatus as S } from './spec.ts';
import { BlkStats } from './stats.ts';
import { DeferredKicks } from '../../virtio/deferred-kicks.ts';

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
   * The backend failed ('quota': storage full; 'io'; ...). The guest got IOERR. Called at
   * most once per kind per kick, so a guest hammering a full disk cannot flood the host.
   */
  onBackendError?(kind: BlockBackendErrorKind, message: string): void;
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

  constructor(opts: VirtioBlkOptions) {
    this.backend = opts.backend;
    this.deferred = opts.defer && new DeferredKicks(opts.defer);
    this.onBackendError = opts.onBackendError;
    this.serial = new TextEncoder().encode(opts.serial ?? '');
    if (this.serial.length > VIRTIO_BLK_ID_BYTES) {
      throw new RangeError(`virtio-blk: serial "${opts.serial}" is ${this.serial.length} bytes; at most ${VIRTIO_BLK_ID_BYTES}`);
    }
    const limits = { ...DEFAULT_BLK_LIMITS, ...opts.limits };
    const readOnly = opts.backend.readOnly;
    // Write-back by default: writes go to the backend at once and become durable at FLUSH,
    // which Linux sends for fsync/journal commits — one flush per commit, not per write.
    this.config = new BlkConfig(opts.backend.size, limits, true, (writeback) => {
      // Leaving write-back: what earlier writes left in the cache must not stay volatile.
      const failure = writeback ? undefined : this.flushBackend();
      if (failure) this.backendFailed(failure, new Set());
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
    };
  }

  reset(): void {
    this.ctx = undefined;
    this.target = undefined;
    this.config.resetWriteback();
    this.deferred?.cancel();
  }

  notify(queueIndex: number): void {
    if (!this.deferred) return this.drain(queueIndex);
    const queue = this.ctx?.queue(queueIndex);
    if (queue) this.deferred.schedule(this.ctx!, queue, () => this.drain(queueIndex));
  }

  /** Serve everything available on the queue; at most one interrupt. */
  private drain(queueIndex: number): void {
    const ctx = this.ctx;
    const target = this.target;
    if (queueIndex !== BLK_REQUESTQ || !ctx || !target) return;
    const queue = ctx.queue(queueIndex);
    if (!queue) return;
    const batch = this.batch;
    batch.length = 0;
    const reported = new Set<BlockBackendErrorKind>();
    const stats = this.stats;
    const shape = this.config;
    let modified = false;

    // A malformed ring makes pop() throw; the transport turns that into DEVICE_NEEDS_RESET.
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const t0 = performance.now();
      const req = parseBlkRequest(ctx.memory, chain, shape);
      if (req.kind === 'unanswerable') {
        stats.unanswerable++;
        this.lastRequestError = req.reason;
        batch.push({ head: chain.headIndex, statusAddr: -1, status: S.VIRTIO_BLK_S_IOERR, usedLen: 0, modified: false });
        stats.hostMs += performance.now() - t0;
        continue;
      }
      const out = executeBlkRequest(req, target);
      stats.count(req.type, out);
      if (out.reason !== undefined) this.lastRequestError = out.reason;
      if (out.backendError) this.backendFailed(out.backendError, reported);
      modified ||= out.modified;
      batch.push({ head: chain.headIndex, statusAddr: req.statusAddr, status: out.status, usedLen: out.usedLen, modified: out.modified });
      stats.hostMs += performance.now() - t0;
    }
    if (batch.length === 0) return;

    // Write-through: the batch's writes are durable before any of them completes.
    if (modified && !this.writeback) {
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
      stats.hostMs += performance.now() - t0;
    }

    for (const c of batch) {
      if (c.statusAddr >= 0) ctx.memory.writeU8(c.statusAddr, c.status);
      queue.pushUsed(c.head, c.usedLen);
    }
    stats.batches++;
    if (batch.length > stats.maxBatch) stats.maxBatch = batch.length;
    ctx.signalUsed(queue);
  }

  /** The device's own backend.flush() (write-through, leaving write-back); the failure, if any. */
  private flushBackend(): { kind: BlockBackendErrorKind; message: string } | undefined {
    if (this.backend.readOnly) return undefined;
    try {
      this.stats.writeThroughFlushes++;
      this.backend.flush();
      return undefined;
    } catch (error) {
      const kind = error instanceof BlockBackendError ? error.kind : 'io';
      const message = `flush: ${error instanceof Error ? error.message : String(error)}`;
      this.lastRequestError = message;
      return { kind, message };
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
