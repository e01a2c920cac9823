/**
 * A disk in a Uint8Array, for tests and benchmarks. It can model a volatile write cache
 * (what a FLUSH makes durable) and inject faults, so the device's error and ordering paths
 * can be tested without a real medium.
 */
import { BlockBackendError, type BlockBackend, type BlockBackendErrorKind } from './block-backend.ts';

export type BlockOp = 'read' | 'write' | 'flush' | 'discard' | 'writeZeroes';

/** Return an error kind to make the operation throw it (before it changes anything). */
export type BlockFaultHook = (op: BlockOp, offset: number, length: number) => BlockBackendErrorKind | undefined;

export interface MemoryBlockBackendOptions {
  readOnly?: boolean;
  fault?: BlockFaultHook;
  /** Ask the device to gather multi-piece requests into one call, like a file backend. */
  coalesceRequests?: boolean;
  /** Keep `durable`: the contents as of the last flush (what would survive a power cut). */
  trackDurability?: boolean;
}

export class MemoryBlockBackend implements BlockBackend {
  /** Current contents: what reads return. */
  readonly bytes: Uint8Array;
  /** Contents at the last flush, when trackDurability is on. */
  readonly durable: Uint8Array | undefined;
  readonly readOnly: boolean;
  readonly coalesceRequests: boolean;
  fault: BlockFaultHook | undefined;
  /** Operation counts, for tests. */
  readonly counts: Record<BlockOp, number> = { read: 0, write: 0, flush: 0, discard: 0, writeZeroes: 0 };
  closed = false;

  constructor(sizeOrBytes: number | Uint8Array, opts: MemoryBlockBackendOptions = {}) {
    this.bytes = typeof sizeOrBytes === 'number' ? new Uint8Array(sizeOrBytes) : sizeOrBytes;
    if (this.bytes.length % 512 !== 0) {
      throw new RangeError(`memory disk of ${this.bytes.length} bytes: size must be a multiple of 512`);
    }
    this.readOnly = opts.readOnly ?? false;
    this.coalesceRequests = opts.coalesceRequests ?? false;
    this.fault = opts.fault;
    this.durable = opts.trackDurability ? this.bytes.slice() : undefined;
  }

  get size(): number {
    return this.bytes.length;
  }

  private check(op: BlockOp, offset: number, length: number): void {
    this.counts[op]++;
    if (this.closed) throw new BlockBackendError('io', `${op} on a closed disk`);
    if (op !== 'read' && op !== 'flush' && this.readOnly) throw new BlockBackendError('read-only', `${op} on a read-only disk`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockBackendError('range', `${op} [${offset}, +${length}) is outside the ${this.size}-byte disk`);
    }
    const kind = this.fault?.(op, offset, length);
    if (kind) throw new BlockBackendError(kind, `injected ${kind} fault on ${op} [${offset}, +${length})`);
  }

  read(offset: number, dst: Uint8Array): void {
    this.check('read', offset, dst.length);
    dst.set(this.bytes.subarray(offset, offset + dst.length));
  }

  write(offset: number, src: Uint8Array): void {
    this.check('write', offset, src.length);
    this.bytes.set(src, offset);
  }

  flush(): void {
    this.check('flush', 0, 0);
    this.durable?.set(this.bytes);
  }

  discard(offset: number, length: number): void {
    this.check('discard', offset, length);
    this.bytes.fill(0, offset, offset + length);
  }

  writeZeroes(offset: number, length: number): void {
    this.check('writeZeroes', offset, length);
    this.bytes.fill(0, offset, offset + length);
  }

  close(): void {
    this.closed = true;
  }
}
