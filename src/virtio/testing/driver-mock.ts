/**
 * A virtio driver for tests, in the spirit of rust-vmm's mock.rs and QEMU's qtest drivers:
 * it finds the virtio capabilities in PCI config space, negotiates through BAR0 register
 * by register, lays descriptor tables and rings in an ArrayMemory, adds chains, kicks and
 * reads used elements. Devices under test see exactly what Linux would make them see.
 *
 *   const t = DriverMock.create(new VirtioRng());
 *   const [q] = t.init();                         // ACK → DRIVER → features → FEATURES_OK → queues → DRIVER_OK
 *   q.add({ writable: [16] }); q.kick();
 *   const [done] = q.used();                      // { head, len, data }
 *
 * It deliberately re-implements the driver side (ring writes, kick suppression) instead
 * of reusing the device code, so the two check each other.
 */
import type { AccessWidth } from '../bus.ts';
import {
  DeviceStatus,
  Feature,
  PCI_CAP_ID_VNDR,
  PciCapType,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VRING_USED_F_NO_NOTIFY,
  hasFeature,
} from '../constants.ts';
import type { VirtioDevice } from '../device.ts';
import type { Region } from '../queue/descriptor-chain.ts';
import { CommonCfg } from '../pci/layout.ts';
import { PackedQueue } from '../queue/packed-queue.ts';
import { SplitQueue } from '../queue/split-queue.ts';
import { VirtioPciFunction, type VirtioPciOptions } from '../pci/virtio-pci-function.ts';
import { ArrayMemory } from './array-memory.ts';
import { aliasedBuffers, gatherWritten, placeChainBuffers } from './chain-buffers.ts';
import type { AliasedSpec, ChainSpec, DriverRing, RawBuffer, Submitted, UsedElement } from './driver-ring.ts';
import { PackedDriverQueue } from './packed-driver-queue.ts';
import { TestIrq } from './test-irq.ts';

/** The virtio structures as a driver finds them through the capability list. */
export interface VirtioCaps {
  common: { offset: number; length: number };
  notify: { offset: number; length: number; multiplier: number };
  isr: { offset: number; length: number };
  device?: { offset: number; length: number };
}

export interface DriverMockOptions {
  /** Guest RAM size (default 1 MiB). Rings go in the first quarter, buffers in the rest. */
  memorySize?: number;
  /** Do every 16/32-bit register access as single bytes (like v86's MMIO path). */
  byteAccess?: boolean;
  pci?: VirtioPciOptions;
}

export type { AliasedSpec, ChainSpec, DriverRing, RawBuffer, Submitted, UsedElement } from './driver-ring.ts';

/** Bump allocator over a memory range. */
export class Arena {
  private next: number;
  constructor(
    private readonly start: number,
    private readonly end: number,
  ) {
    this.next = start;
  }
  alloc(len: number, align = 16): number {
    const addr = Math.ceil(this.next / align) * align;
    if (addr + len > this.end) throw new Error(`driver mock: out of guest memory (${len} bytes)`);
    this.next = addr + len;
    return addr;
  }
  clear(): void {
    this.next = this.start;
  }
}

export class DriverMock {
  readonly caps: VirtioCaps;
  /** Queues set up since the last reset, split or packed as negotiated. */
  readonly queues: DriverRing[] = [];
  /** Every reason the function reported through onError. */
  readonly errors: string[] = [];
  /** For each error, the function's reset count when it was reported. */
  readonly errorResets: number[] = [];
  /** Features accepted at the last negotiate(). */
  features = 0n;
  readonly rings: Arena;
  readonly buffers: Arena;

  constructor(
    /** The function, its RAM and its line: replaced by continueOn() (a snapshot restore). */
    public fn: VirtioPciFunction,
    public memory: ArrayMemory,
    public irq: TestIrq,
    private readonly byteAccess = false,
  ) {
    this.plug(fn, memory, irq);
    this.caps = DriverMock.parseCaps(fn.configSpace);
    // Page 0 stays unused so a zero address is never a valid buffer by accident.
    this.rings = new Arena(0x1000, memory.size >>> 2);
    this.buffers = new Arena(memory.size >>> 2, memory.size);
  }

  private plug(fn: VirtioPciFunction, memory: ArrayMemory, irq: TestIrq): void {
    fn.onError((reason) => {
      if (fn !== this.fn) return; // a function this driver has left
      this.errors.push(reason);
      this.errorResets.push(fn.stats.resets);
    });
    fn.connect({ memory, irq });
  }

  /**
   * A snapshot restore, as the guest lives it: this driver — its queues, their shadows, its
   * allocators — goes on over `memory` (a copy of its RAM) with `fn`, a fresh function of the
   * same layout, which the caller restores next. The old function and RAM are left behind.
   */
  continueOn(fn: VirtioPciFunction, memory: ArrayMemory, irq = new TestIrq()): void {
    if (memory.size !== this.memory.size) throw new Error('driver mock: continueOn needs RAM of the same size');
    this.fn = fn;
    this.memory = memory;
    this.irq = irq;
    // Earlier errors were counted against the old function's resets (its status carries over).
    this.errorResets.fill(-1);
    this.plug(fn, memory, irq);
  }

  static create(device: VirtioDevice, options: DriverMockOptions = {}): DriverMock {
    const fn = new VirtioPciFunction(device, options.pci);
    return new DriverMock(fn, new ArrayMemory(options.memorySize ?? 1 << 20), new TestIrq(), options.byteAccess);
  }

  /** Walk the PCI capability list like virtio_pci_modern does. */
  static parseCaps(config: Uint8Array): VirtioCaps {
    const dv = new DataView(config.buffer, config.byteOffset, config.byteLength);
    const found: Partial<VirtioCaps> = {};
    if (!(dv.getUint16(0x06, true) & 0x10)) throw new Error('no capability list');
    for (let at = config[0x34], hops = 0; at !== 0 && hops < 48; at = config[at + 1], hops++) {
      if (config[at] !== PCI_CAP_ID_VNDR) continue;
      if (config[at + 4] !== 0) throw new Error('virtio structure outside BAR0');
      const region = { offset: dv.getUint32(at + 8, true), length: dv.getUint32(at + 12, true) };
      switch (config[at + 3]) {
        case PciCapType.COMMON_CFG:
          found.common = region;
          break;
        case PciCapType.NOTIFY_CFG:
          found.notify = { ...region, multiplier: dv.getUint32(at + 16, true) };
          break;
        case PciCapType.ISR_CFG:
          found.isr = region;
          break;
        case PciCapType.DEVICE_CFG:
          found.device = region;
          break;
      }
    }
    if (!found.common || !found.notify || !found.isr) throw new Error('missing virtio capability');
    return found as VirtioCaps;
  }

  // ---- raw BAR0 access ------------------------------------------------------------------

  read(offset: number, width: AccessWidth): number {
    const bar = this.fn.bars[0]!;
    if (!this.byteAccess || width === 1) return bar.read(offset, width);
    let value = 0;
    for (let i = width - 1; i >= 0; i--) value = value * 256 + bar.read(offset + i, 1);
    return value;
  }

  write(offset: number, width: AccessWidth, value: number): void {
    const bar = this.fn.bars[0]!;
    if (!this.byteAccess || width === 1) return bar.write(offset, width, value);
    for (let i = 0; i < width; i++) bar.write(offset + i, 1, (value >>> (8 * i)) & 0xff);
  }

  readCommon(reg: number, width: AccessWidth): number {
    return this.read(this.caps.common.offset + reg, width);
  }

  writeCommon(reg: number, width: AccessWidth, value: number): void {
    this.write(this.caps.common.offset + reg, width, value);
  }

  readConfig(offset: number, width: AccessWidth): number {
    if (!this.caps.device) throw new Error('device has no config space');
    return this.read(this.caps.device.offset + offset, width);
  }

  writeConfig(offset: number, width: AccessWidth, value: number): void {
    if (!this.caps.device) throw new Error('device has no config space');
    this.write(this.caps.device.offset + offset, width, value);
  }

  get status(): number {
    return this.readCommon(CommonCfg.DEVICE_STATUS, 1);
  }

  set status(value: number) {
    this.writeCommon(CommonCfg.DEVICE_STATUS, 1, value);
  }

  /** Read ISR (clears it and lowers the line). */
  readIsr(): number {
    return this.read(this.caps.isr.offset, 1);
  }

  deviceFeatures(): bigint {
    this.writeCommon(CommonCfg.DEVICE_FEATURE_SELECT, 4, 0);
    const lo = this.readCommon(CommonCfg.DEVICE_FEATURE, 4);
    this.writeCommon(CommonCfg.DEVICE_FEATURE_SELECT, 4, 1);
    const hi = this.readCommon(CommonCfg.DEVICE_FEATURE, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  writeDriverFeatures(features: bigint): void {
    this.writeCommon(CommonCfg.DRIVER_FEATURE_SELECT, 4, 0);
    this.writeCommon(CommonCfg.DRIVER_FEATURE, 4, Number(features & 0xffffffffn));
    this.writeCommon(CommonCfg.DRIVER_FEATURE_SELECT, 4, 1);
    this.writeCommon(CommonCfg.DRIVER_FEATURE, 4, Number((features >> 32n) & 0xffffffffn));
  }

  /** Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. Returns whether the device kept FEATURES_OK. */
  negotiate(wanted?: bigint): boolean {
    this.reset();
    this.status = DeviceStatus.ACKNOWLEDGE;
    this.status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER;
    const features = wanted ?? this.deviceFeatures();
    this.writeDriverFeatures(features);
    this.status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK;
    const ok = (this.status & DeviceStatus.FEATURES_OK) !== 0;
    this.features = ok ? features : 0n;
    return ok;
  }

  /** VIRTIO_F_RING_PACKED accepted at the last negotiate(). */
  get packed(): boolean {
    return hasFeature(this.features, Feature.VIRTIO_F_RING_PACKED);
  }

  /**
   * Lay out split queue `index` in memory and enable it. `startIdx` begins both rings at that
   * index. Layout-neutral callers use setupRing().
   */
  setupQueue(index: number, options: { size?: number; startIdx?: number } = {}): DriverQueue {
    if (this.packed) throw new Error('driver mock: VIRTIO_F_RING_PACKED negotiated, use setupRing()/initRings()');
    this.writeCommon(CommonCfg.QUEUE_SELECT, 2, index);
    const max = this.readCommon(CommonCfg.QUEUE_SIZE, 2);
    if (max === 0) throw new Error(`queue ${index} does not exist`);
    const size = options.size ?? max;
    const eventIdx = hasFeature(this.features, Feature.VIRTIO_F_RING_EVENT_IDX);
    const desc = this.rings.alloc(16 * size, 16);
    const avail = this.rings.alloc(6 + 2 * size, 2);
    const used = this.rings.alloc(6 + 8 * size, 4);
    // Fresh rings are zeroed, as with Linux's DMA allocations (stale avail_event would
    // otherwise suppress our first kick after a reset).
    this.memory.bytes.fill(0, desc, used + 6 + 8 * size);
    const start = (options.startIdx ?? 0) & 0xffff;
    this.memory.writeU16(avail + 2, start);
    this.memory.writeU16(used + 2, start);
    this.writeCommon(CommonCfg.QUEUE_SIZE, 2, size);
    const set64 = (reg: number, addr: number) => {
      this.writeCommon(reg, 4, addr);
      this.writeCommon(reg + 4, 4, 0);
    };
    set64(CommonCfg.QUEUE_DESC_LO, desc);
    set64(CommonCfg.QUEUE_DRIVER_LO, avail);
    set64(CommonCfg.QUEUE_DEVICE_LO, used);
    const notifyOff = this.readCommon(CommonCfg.QUEUE_NOTIFY_OFF, 2);
    this.writeCommon(CommonCfg.QUEUE_ENABLE, 2, 1);
    if (start !== 0) {
      // Test back door (also what a snapshot restore does): the device resumes at `start`.
      const q = this.fn.queue(index);
      if (q instanceof SplitQueue) q.restoreIndices(start, start);
    }
    const notifyAddr = this.caps.notify.offset + notifyOff * this.caps.notify.multiplier;
    const queue = new DriverQueue(this, index, size, { desc, avail, used }, eventIdx, start, notifyAddr);
    this.queues[index] = queue;
    return queue;
  }

  /**
   * Lay out queue `index` in the negotiated layout and enable it. `startIdx`: split, both ring
   * indices; packed, that many descriptors into the ring's life (slot startIdx mod size, wrap
   * counters flipped once per lap), restored into the device as a snapshot would.
   */
  setupRing(index: number, options: { size?: number; startIdx?: number } = {}): DriverRing {
    if (!this.packed) return this.setupQueue(index, options);
    this.writeCommon(CommonCfg.QUEUE_SELECT, 2, index);
    const max = this.readCommon(CommonCfg.QUEUE_SIZE, 2);
    if (max === 0) throw new Error(`queue ${index} does not exist`);
    const size = options.size ?? max;
    const desc = this.rings.alloc(16 * size, 16);
    const driverEvent = this.rings.alloc(4, 4);
    const deviceEvent = this.rings.alloc(4, 4);
    const start = options.startIdx ?? 0;
    const position = start % size;
    const wrap = Math.floor(start / size) % 2 === 0;
    this.writeCommon(CommonCfg.QUEUE_SIZE, 2, size);
    const set64 = (reg: number, addr: number) => {
      this.writeCommon(reg, 4, addr);
      this.writeCommon(reg + 4, 4, 0);
    };
    set64(CommonCfg.QUEUE_DESC_LO, desc);
    set64(CommonCfg.QUEUE_DRIVER_LO, driverEvent);
    set64(CommonCfg.QUEUE_DEVICE_LO, deviceEvent);
    const notifyOff = this.readCommon(CommonCfg.QUEUE_NOTIFY_OFF, 2);
    const notifyAddr = this.caps.notify.offset + notifyOff * this.caps.notify.multiplier;
    const queue = new PackedDriverQueue(this, index, size, { desc, driverEvent, deviceEvent }, hasFeature(this.features, Feature.VIRTIO_F_RING_EVENT_IDX), notifyAddr, position, wrap);
    this.writeCommon(CommonCfg.QUEUE_ENABLE, 2, 1);
    if (start !== 0) {
      // Test back door (also what a snapshot restore does): the device resumes there.
      const q = this.fn.queue(index);
      if (q instanceof PackedQueue) q.restorePosition(position, wrap);
    }
    this.queues[index] = queue;
    return queue;
  }

  driverOk(): void {
    this.status = this.status | DeviceStatus.DRIVER_OK;
  }

  /**
   * The whole bring-up: negotiate (all offered features unless `features`), set up every
   * queue (or `queues` of them), DRIVER_OK. Throws if the device refuses.
   */
  init(options: { features?: bigint; queues?: number; size?: number; startIdx?: number } = {}): DriverQueue[] {
    if (!this.negotiate(options.features)) throw new Error('device refused FEATURES_OK');
    const count = options.queues ?? this.readCommon(CommonCfg.NUM_QUEUES, 2);
    const queues: DriverQueue[] = [];
    for (let i = 0; i < count; i++) queues.push(this.setupQueue(i, { size: options.size, startIdx: options.startIdx }));
    this.driverOk();
    return queues;
  }

  /** init() for either layout: negotiate, set up every queue as negotiated, DRIVER_OK. */
  initRings(options: { features?: bigint; queues?: number; size?: number; startIdx?: number } = {}): DriverRing[] {
    if (!this.negotiate(options.features)) throw new Error('device refused FEATURES_OK');
    const count = options.queues ?? this.readCommon(CommonCfg.NUM_QUEUES, 2);
    const queues: DriverRing[] = [];
    for (let i = 0; i < count; i++) queues.push(this.setupRing(i, { size: options.size, startIdx: options.startIdx }));
    this.driverOk();
    return queues;
  }

  reset(): void {
    this.status = 0;
    this.queues.length = 0;
    this.rings.clear();
    this.buffers.clear();
  }

  /** Free buffer memory once nothing is in flight anywhere (keeps long tests bounded). */
  recycleBuffers(): void {
    if (this.queues.every((q) => q === undefined || q.inFlight === 0)) this.buffers.clear();
  }
}

interface InFlight {
  descriptors: number[];
  writable: Region[];
}

export class DriverQueue implements DriverRing {
  readonly layout = 'split' as const;
  /** The driver's avail->idx shadow (next index it will publish). */
  availIdx: number;
  /** Next used ring index the driver will read. */
  lastUsedIdx: number;
  /** avail idx at the previous kick decision. */
  private kickedAvailIdx: number;
  private readonly free: number[] = [];
  private readonly inFlightByHead = new Map<number, InFlight>();
  notifies = 0;

  constructor(
    readonly driver: DriverMock,
    readonly index: number,
    readonly size: number,
    readonly addr: { desc: number; avail: number; used: number },
    readonly eventIdx: boolean,
    start: number,
    readonly notifyAddr: number,
  ) {
    this.availIdx = this.lastUsedIdx = this.kickedAvailIdx = start;
    for (let i = size - 1; i >= 0; i--) this.free.push(i);
  }

  private get memory(): ArrayMemory {
    return this.driver.memory;
  }

  get inFlight(): number {
    return this.inFlightByHead.size;
  }

  get freeDescriptors(): number {
    return this.free.length;
  }

  /** Write one descriptor at table address `table`, entry `i`. */
  writeDesc(table: number, i: number, addr: number, len: number, flags: number, next: number): void {
    const at = table + 16 * i;
    this.memory.writeU32(at, addr);
    this.memory.writeU32(at + 4, 0);
    this.memory.writeU32(at + 8, len);
    this.memory.writeU16(at + 12, flags);
    this.memory.writeU16(at + 14, next);
  }

  /** Put a chain in the avail ring (not kicked yet). */
  add(spec: ChainSpec): Submitted {
    const { buffers: parts, writable } = placeChainBuffers(spec, this.memory, this.driver.buffers);
    const flagsOf = (p: { write: boolean }, last: boolean) => (p.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
    let descriptors: number[];
    if (spec.indirect) {
      const table = this.driver.buffers.alloc(16 * parts.length, 16);
      parts.forEach((p, k) => this.writeDesc(table, k, p.addr, p.len, flagsOf(p, k === parts.length - 1), k + 1));
      descriptors = this.take(1);
      this.writeDesc(this.addr.desc, descriptors[0], table, 16 * parts.length, VIRTQ_DESC_F_INDIRECT, 0);
    } else {
      descriptors = this.take(parts.length);
      parts.forEach((p, k) => {
        const last = k === parts.length - 1;
        this.writeDesc(this.addr.desc, descriptors[k], p.addr, p.len, flagsOf(p, last), last ? 0 : descriptors[k + 1]);
      });
    }
    const head = descriptors[0];
    this.inFlightByHead.set(head, { descriptors, writable });
    this.publish(head);
    return { head, writable };
  }

  // ---- adversarial rings (bounded-work properties, regression tests) -------------------
  // A hostile driver's chains, all well-formed enough to reach the walk's budget checks.

  /**
   * Write `buffers` as one chain (entry k → k + 1) at `table`, or in a fresh table in buffer
   * memory; returns the table's address. As a ring table it must have as many free entries.
   */
  writeTable(buffers: readonly RawBuffer[], table = this.driver.buffers.alloc(16 * buffers.length, 16)): number {
    buffers.forEach((b, k) => {
      const last = k === buffers.length - 1;
      this.writeDesc(table, k, b.addr, b.len, (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), last ? 0 : k + 1);
    });
    return table;
  }

  /**
   * Make available one ring descriptor pointing at an indirect table of `entries` entries at
   * `table`, whatever lies there (len = 16 × entries: a huge table claims more than it holds).
   */
  addIndirectAt(table: number, entries: number, writable: Region[] = []): Submitted {
    const [head] = this.take(1);
    this.writeDesc(this.addr.desc, head, table, 16 * entries, VIRTQ_DESC_F_INDIRECT, 0);
    this.inFlightByHead.set(head, { descriptors: [head], writable });
    this.publish(head);
    return { head, writable };
  }

  /**
   * A huge indirect table: `entries` chained descriptors, each over [addr, +len), really laid
   * out, so a walk without a cap on the table's size would follow all of them.
   */
  addHugeIndirect(entries: number, addr: number, len: number): Submitted {
    const table = this.driver.buffers.alloc(16 * entries, 16);
    const bytes = this.memory.bytes;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let k = 0; k < entries; k++) {
      const at = table + 16 * k;
      dv.setUint32(at, addr, true);
      dv.setUint32(at + 4, 0, true);
      dv.setUint32(at + 8, len, true);
      dv.setUint16(at + 12, k === entries - 1 ? 0 : VIRTQ_DESC_F_NEXT, true);
      dv.setUint16(at + 14, k + 1, true);
    }
    return this.addIndirectAt(table, entries);
  }

  /** `chains` chains whose ring descriptors all point at the same indirect table. */
  addSharedIndirect(table: number, entries: number, chains: number): Submitted[] {
    const out: Submitted[] = [];
    for (let i = 0; i < chains && this.free.length > 0; i++) out.push(this.addIndirectAt(table, entries));
    return out;
  }

  /** Aliased buffers (many descriptors over the same RAM): one chain, direct or indirect. */
  addAliased(spec: AliasedSpec): Submitted {
    const { buffers, writable } = aliasedBuffers(spec);
    if (spec.indirect) return this.addIndirectAt(this.writeTable(buffers), spec.count, writable);
    return this.addDirect(buffers, writable);
  }

  /**
   * A chain of `direct` descriptors in the ring's own table followed by one pointing at an
   * indirect table of `indirect` entries (0: none), each over [addr, +len), driver-readable.
   * Its length is direct + indirect: the queue size is the most §2.7.5.3.1 allows.
   */
  addLong(direct: number, indirect: number, addr: number, len: number): Submitted {
    const buffers: RawBuffer[] = Array.from({ length: direct }, () => ({ addr, len }));
    if (indirect === 0) return this.addDirect(buffers, []);
    const table = this.writeTable(Array.from({ length: indirect }, () => ({ addr, len })));
    const descriptors = this.take(direct + 1);
    buffers.forEach((b, k) => this.writeDesc(this.addr.desc, descriptors[k], b.addr, b.len, VIRTQ_DESC_F_NEXT, descriptors[k + 1]));
    this.writeDesc(this.addr.desc, descriptors[direct], table, 16 * indirect, VIRTQ_DESC_F_INDIRECT, 0);
    this.inFlightByHead.set(descriptors[0], { descriptors, writable: [] });
    this.publish(descriptors[0]);
    return { head: descriptors[0], writable: [] };
  }

  /** `buffers` as one chain in the ring's own table. */
  private addDirect(buffers: readonly RawBuffer[], writable: Region[]): Submitted {
    const descriptors = this.take(buffers.length);
    buffers.forEach((b, k) => {
      const last = k === buffers.length - 1;
      const flags = (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
      this.writeDesc(this.addr.desc, descriptors[k], b.addr, b.len, flags, last ? 0 : descriptors[k + 1]);
    });
    this.inFlightByHead.set(descriptors[0], { descriptors, writable });
    this.publish(descriptors[0]);
    return { head: descriptors[0], writable };
  }

  /** Put a raw head index in the avail ring and bump avail->idx (for malformed-ring tests). */
  publish(head: number): void {
    this.memory.writeU16(this.addr.avail + 4 + 2 * (this.availIdx & (this.size - 1)), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.memory.writeU16(this.addr.avail + 2, this.availIdx);
  }

  private take(n: number): number[] {
    if (this.free.length < n) throw new Error(`queue ${this.index}: ${n} descriptors wanted, ${this.free.length} free`);
    return this.free.splice(this.free.length - n, n).reverse();
  }

  /** Notify if the device asked for it (NO_NOTIFY / avail_event), like virtqueue_kick_prepare. */
  kick(): boolean {
    const oldIdx = this.kickedAvailIdx;
    const newIdx = this.availIdx;
    this.kickedAvailIdx = newIdx;
    let needed: boolean;
    if (this.eventIdx) {
      const event = this.availEvent;
      needed = ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
    } else {
      needed = (this.usedFlags & VRING_USED_F_NO_NOTIFY) === 0;
    }
    if (needed) this.notify();
    return needed;
  }

  /** Write the notify register unconditionally. */
  notify(): void {
    this.notifies++;
    this.driver.write(this.notifyAddr, 2, this.index);
  }

  /** New used elements since the last call; their descriptors go back on the free list. */
  used(): UsedElement[] {
    const out: UsedElement[] = [];
    const usedIdx = this.memory.readU16(this.addr.used + 2);
    while (this.lastUsedIdx !== usedIdx) {
      const at = this.addr.used + 4 + 8 * (this.lastUsedIdx & (this.size - 1));
      const head = this.memory.readU32(at);
      const len = this.memory.readU32(at + 4);
      const chain = this.inFlightByHead.get(head);
      if (!chain) throw new Error(`queue ${this.index}: device used head ${head}, which is not in flight`);
      this.inFlightByHead.delete(head);
      this.free.push(...chain.descriptors);
      out.push({ head, len, data: gatherWritten(this.memory, chain.writable, len) });
      this.lastUsedIdx = (this.lastUsedIdx + 1) & 0xffff;
    }
    return out;
  }

  /** Like Linux's virtqueue_enable_cb: with EVENT_IDX, interrupt me for the next used entry. */
  armInterrupt(): void {
    this.setUsedEvent(this.lastUsedIdx);
    this.setAvailFlags(0);
  }

  /** The used ring (elements, idx, avail_event). */
  deviceWritableAreas(): Array<[number, number]> {
    return [[this.addr.used, this.addr.used + 6 + 8 * this.size]];
  }

  /** used_event (EVENT_IDX): "interrupt me when used idx passes this". */
  setUsedEvent(idx: number): void {
    this.memory.writeU16(this.addr.avail + 4 + 2 * this.size, idx & 0xffff);
  }

  /** avail->flags, e.g. VRING_AVAIL_F_NO_INTERRUPT. */
  setAvailFlags(flags: number): void {
    this.memory.writeU16(this.addr.avail, flags);
  }

  get availEvent(): number {
    return this.memory.readU16(this.addr.used + 4 + 8 * this.size);
  }

  get usedFlags(): number {
    return this.memory.readU16(this.addr.used);
  }

  get usedIdx(): number {
    return this.memory.readU16(this.addr.used + 2);
  }
}
