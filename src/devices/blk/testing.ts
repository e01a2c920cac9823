/**
 * A virtio-blk driver for tests, over DriverMock: builds requests the way the wire format
 * allows (header, data and status split across descriptors at will) and reads statuses
 * back from guest memory (a refused request may return len 0, so not from used.data).
 */
import { DriverMock, type DriverQueue, type DriverRing, type Submitted, type UsedElement } from '../../virtio/testing/driver-mock.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { ringFeatures } from '../testing/ring-layout.ts';
import type { BlockBackend } from '../../backends/block-backend.ts';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import type { BlkLimits } from './config.ts';
import { VirtioBlk, type VirtioBlkOptions } from './blk.ts';
import { BLK_OUTHDR_SIZE, DISCARD_SEGMENT_SIZE, VirtioBlkReqType as T } from './spec.ts';

export function outhdr(type: number, sector: number | bigint = 0): Uint8Array {
  const b = new Uint8Array(BLK_OUTHDR_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, type >>> 0, true);
  dv.setBigUint64(8, BigInt.asUintN(64, BigInt(sector)), true);
  return b;
}

export function segment(sector: number | bigint, numSectors: number, flags = 0): Uint8Array {
  const b = new Uint8Array(DISCARD_SEGMENT_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, BigInt.asUintN(64, BigInt(sector)), true);
  dv.setUint32(8, numSectors >>> 0, true);
  dv.setUint32(12, flags >>> 0, true);
  return b;
}

/** Split `bytes` at the given lengths (the rest goes in a last piece). */
export function pieces(bytes: Uint8Array, lengths: readonly number[] = []): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const n of lengths) {
    if (at >= bytes.length) break;
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  if (at < bytes.length) out.push(bytes.subarray(at));
  return out;
}

export interface BlkRequestSpec {
  /** Driver-readable buffers: header (+ data), already split as wanted. */
  readable: Uint8Array[];
  /** Driver-writable buffer lengths; the last byte of the last one is the status. */
  writable: number[];
  indirect?: boolean;
}

export interface BlkHarnessOptions extends Partial<Omit<VirtioBlkOptions, 'backend'>> {
  backend?: BlockBackend;
  /** Disk size when no backend is given (default 1 MiB). */
  size?: number;
  memorySize?: number;
  features?: bigint;
  limits?: Partial<BlkLimits>;
  /** Ring layout the driver negotiates (default split: `queue` is then a DriverQueue). */
  ring?: RingLayout;
}

/** The split harness's queue is a DriverQueue (its raw split-ring helpers); on either layout, a DriverRing. */
export class BlkHarness<Q extends DriverRing = DriverQueue> {
  private constructor(
    readonly driver: DriverMock,
    readonly queue: Q,
    readonly device: VirtioBlk,
    readonly backend: BlockBackend,
    /** Every onBackendError call. */
    readonly backendErrors: Array<{ kind: string; message: string }>,
  ) {}

  static create(opts?: BlkHarnessOptions & { ring?: 'split' }): BlkHarness<DriverQueue>;
  static create(opts: BlkHarnessOptions): BlkHarness<DriverRing>;
  static create(opts: BlkHarnessOptions = {}): BlkHarness<DriverRing> {
    const ring = opts.ring ?? 'split';
    const backend = opts.backend ?? new MemoryBlockBackend(opts.size ?? 1 << 20);
    const errors: Array<{ kind: string; message: string }> = [];
    const device = new VirtioBlk({
      backend,
      serial: opts.serial ?? 'test-disk',
      limits: opts.limits,
      queueSize: opts.queueSize,
      defer: opts.defer,
      onBackendError: (kind, message) => {
        errors.push({ kind, message });
        opts.onBackendError?.(kind, message);
      },
    });
    const driver = DriverMock.create(device, { memorySize: opts.memorySize ?? 8 << 20, pci: { ring } });
    const [queue] = driver.initRings({ features: ringFeatures(opts.features, ring) });
    return new BlkHarness<DriverRing>(driver, queue, device, backend, errors);
  }

  add(spec: BlkRequestSpec): Submitted {
    return this.queue.add({ readable: spec.readable, writable: spec.writable, indirect: spec.indirect });
  }

  /** Status byte of a submitted request (the last writable byte), from guest memory. */
  status(sub: Submitted): number {
    const last = sub.writable[sub.writable.length - 1];
    return this.driver.memory.bytes[last.addr + last.len - 1];
  }

  /** Bytes of a submitted request's writable buffers (data + status), from guest memory. */
  writableBytes(sub: Submitted): Uint8Array {
    const total = sub.writable.reduce((s, r) => s + r.len, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const r of sub.writable) {
      out.set(this.driver.memory.bytes.subarray(r.addr, r.addr + r.len), at);
      at += r.len;
    }
    return out;
  }

  /** Kick and collect the used elements (the driver frees their buffers afterwards). */
  kick(): UsedElement[] {
    this.queue.kick();
    const used = this.queue.used();
    this.driver.recycleBuffers();
    return used;
  }

  /** One request, one kick: its status and used element. */
  run(spec: BlkRequestSpec): { status: number; used: UsedElement; data: Uint8Array } {
    const sub = this.add(spec);
    this.queue.kick();
    const [used] = this.queue.used();
    if (!used || used.head !== sub.head) throw new Error('request was not completed');
    const result = { status: this.status(sub), used, data: this.writableBytes(sub).slice(0, -1) };
    this.driver.recycleBuffers();
    return result;
  }

  write(sector: number | bigint, data: Uint8Array, split?: number[], indirect = false): number {
    return this.run({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, sector), ...pieces(data, split)], writable: [1], indirect }).status;
  }

  read(sector: number | bigint, length: number, split: number[] = [], indirect = false): { status: number; data: Uint8Array } {
    const lens = pieces(new Uint8Array(length), split).map((p) => p.length);
    lens.push(1);
    const r = this.run({ readable: [outhdr(T.VIRTIO_BLK_T_IN, sector)], writable: lens, indirect });
    return { status: r.status, data: r.data };
  }

  flush(): number {
    return this.run({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] }).status;
  }
}

/**
 * Point entries `entries` of `sub`'s indirect table at one guest buffer [addr, +len), keeping
 * their flags and links: the aliasing a hostile guest can do (every descriptor naming the
 * same RAM), which the mock's allocator never produces. `sub` must have been added indirect.
 */
export function aliasIndirect(queue: DriverQueue, sub: Submitted, entries: readonly number[], addr: number, len: number): void {
  const memory = queue.driver.memory;
  const table = memory.readU32(queue.addr.desc + 16 * sub.head);
  for (const k of entries) {
    memory.writeU32(table + 16 * k, addr);
    memory.writeU32(table + 16 * k + 8, len);
  }
}
