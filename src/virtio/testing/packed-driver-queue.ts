/**
 * The driver side of a packed virtqueue (§2.8) for tests, written from the spec's driver
 * rules rather than from the device's engine: it keeps the Driver Ring Wrap Counter, writes
 * each list with its first descriptor's flags last (§2.8.21), puts the Buffer ID in the last
 * descriptor only (the others carry a decoy id a device must ignore, §2.8.6), reads used
 * descriptors in ring order skipping each buffer's slots (§2.8.22), and decides kicks from
 * the device event suppression structure (§2.8.10).
 */
import {
  RingEventFlags,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from '../constants.ts';
import type { Region } from '../queue/descriptor-chain.ts';
import { EventSuppressField, PACKED_DESC_SIZE, PackedDescField, offWrap, splitOffWrap } from '../queue/packed-layout.ts';
import { vringNeedEvent } from '../queue/layout.ts';
import type { ArrayMemory } from './array-memory.ts';
import { aliasedBuffers, gatherWritten, placeChainBuffers } from './chain-buffers.ts';
import type { AliasedSpec, ChainSpec, DriverRing, RawBuffer, Submitted, UsedElement } from './driver-ring.ts';

/** What the queue needs of its DriverMock (a structural type keeps the import one-way). */
export interface PackedDriverHost {
  readonly memory: ArrayMemory;
  readonly buffers: { alloc(len: number, align?: number): number };
  write(offset: number, width: 2, value: number): void;
}

/** A ring descriptor before the wrap-counter bits are added. */
interface RingDesc {
  addr: number;
  len: number;
  /** WRITE / INDIRECT; NEXT and AVAIL/USED are added when it is written. */
  flags: number;
}

interface InFlight {
  slots: number;
  writable: Region[];
}

/** Buffer IDs no driver uses (≥ any queue size): written where the device must not look. */
const DECOY_ID = 0xffff;

export class PackedDriverQueue implements DriverRing {
  readonly layout = 'packed' as const;
  /** Next ring slot the driver will fill, and the Driver Ring Wrap Counter. */
  nextAvail: number;
  availWrap: boolean;
  /** Next ring slot the driver expects a used descriptor in, and the wrap value it expects. */
  nextUsed: number;
  usedWrap: boolean;
  /** Ring slots made available since the last kick decision. */
  private addedSinceKick = 0;
  private freeSlots: number;
  private readonly freeIds: number[] = [];
  private readonly inFlightById = new Map<number, InFlight>();
  notifies = 0;

  constructor(
    readonly driver: PackedDriverHost,
    readonly index: number,
    readonly size: number,
    readonly addr: { desc: number; driverEvent: number; deviceEvent: number },
    readonly eventIdx: boolean,
    readonly notifyAddr: number,
    position = 0,
    wrap = true,
  ) {
    this.nextAvail = this.nextUsed = position;
    this.availWrap = this.usedWrap = wrap;
    this.freeSlots = size;
    for (let i = size - 1; i >= 0; i--) this.freeIds.push(i);
    // §2.8.13 the ring starts zeroed. Resuming on an odd lap, every slot holds a descriptor
    // used on the previous one (AVAIL = USED = 1), as it would after a real run.
    const flags = wrap ? 0 : VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED;
    this.memory.bytes.fill(0, addr.desc, addr.desc + PACKED_DESC_SIZE * size);
    for (let i = 0; i < size; i++) this.memory.writeU16(addr.desc + PACKED_DESC_SIZE * i + PackedDescField.FLAGS, flags);
    this.memory.bytes.fill(0, addr.driverEvent, addr.driverEvent + 4);
    this.memory.bytes.fill(0, addr.deviceEvent, addr.deviceEvent + 4);
  }

  private get memory(): ArrayMemory {
    return this.driver.memory;
  }

  get inFlight(): number {
    return this.inFlightById.size;
  }

  get freeDescriptors(): number {
    return this.freeIds.length === 0 ? 0 : this.freeSlots;
  }

  /** AVAIL/USED bits marking a descriptor available under wrap counter `wrap` (§2.8.1). */
  static availBits(wrap: boolean): number {
    return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
  }

  /** Write one descriptor's fields at ring slot (or table entry) address `at`, flags included. */
  writeRaw(at: number, d: { addr: number; hi?: number; len: number; id: number; flags: number }): void {
    this.memory.writeU32(at + PackedDescField.ADDR, d.addr >>> 0);
    this.memory.writeU32(at + PackedDescField.ADDR + 4, (d.hi ?? 0) >>> 0);
    this.memory.writeU32(at + PackedDescField.LEN, d.len >>> 0);
    this.memory.writeU16(at + PackedDescField.ID, d.id & 0xffff);
    this.memory.writeU16(at + PackedDescField.FLAGS, d.flags & 0xffff);
  }

  slotAddr(slot: number): number {
    return this.addr.desc + PACKED_DESC_SIZE * slot;
  }

  /**
   * Make `descs` available as one list under a fresh Buffer ID (§2.8.21): every descriptor
   * but the first is written complete, then the first one's flags.
   */
  private publishList(descs: readonly RingDesc[], writable: Region[]): Submitted {
    if (descs.length === 0) throw new Error('empty chain');
    if (this.freeIds.length === 0 || this.freeSlots < descs.length) {
      throw new Error(`queue ${this.index}: ${descs.length} slots wanted, ${this.freeSlots} free (${this.freeIds.length} ids)`);
    }
    const id = this.freeIds.pop()!;
    const first = this.nextAvail;
    let firstFlags = 0;
    descs.forEach((d, k) => {
      const last = k === descs.length - 1;
      const flags = d.flags | (last ? 0 : VIRTQ_DESC_F_NEXT) | PackedDriverQueue.availBits(this.availWrap);
      const at = this.slotAddr(this.nextAvail);
      this.memory.writeU32(at + PackedDescField.ADDR, d.addr >>> 0);
      this.memory.writeU32(at + PackedDescField.ADDR + 4, 0);
      this.memory.writeU32(at + PackedDescField.LEN, d.len >>> 0);
      this.memory.writeU16(at + PackedDescField.ID, last ? id : DECOY_ID);
      if (k === 0) firstFlags = flags;
      else this.memory.writeU16(at + PackedDescField.FLAGS, flags);
      if (++this.nextAvail === this.size) {
        this.nextAvail = 0;
        this.availWrap = !this.availWrap;
      }
    });
    this.memory.writeU16(this.slotAddr(first) + PackedDescField.FLAGS, firstFlags);
    this.freeSlots -= descs.length;
    this.addedSinceKick += descs.length;
    this.inFlightById.set(id, { slots: descs.length, writable });
    return { head: id, writable };
  }

  add(spec: ChainSpec): Submitted {
    const { buffers: parts, writable } = placeChainBuffers(spec, this.memory, this.driver.buffers);
    if (spec.indirect) {
      const table = this.writeTable(parts);
      return this.publishList([{ addr: table, len: PACKED_DESC_SIZE * parts.length, flags: VIRTQ_DESC_F_INDIRECT }], writable);
    }
    return this.publishList(
      parts.map((p) => ({ addr: p.addr, len: p.len, flags: p.write ? VIRTQ_DESC_F_WRITE : 0 })),
      writable,
    );
  }

  /** An indirect table (§2.8.7): entries in order, WRITE their only flag, ids ignored. */
  writeTable(buffers: readonly RawBuffer[], table = this.driver.buffers.alloc(PACKED_DESC_SIZE * buffers.length, 16)): number {
    buffers.forEach((b, k) => this.writeRaw(table + PACKED_DESC_SIZE * k, { addr: b.addr, len: b.len, id: DECOY_ID, flags: b.write ? VIRTQ_DESC_F_WRITE : 0 }));
    return table;
  }

  addIndirectAt(table: number, entries: number, writable: Region[] = []): Submitted {
    return this.publishList([{ addr: table, len: PACKED_DESC_SIZE * entries, flags: VIRTQ_DESC_F_INDIRECT }], writable);
  }

  addHugeIndirect(entries: number, addr: number, len: number): Submitted {
    const table = this.driver.buffers.alloc(PACKED_DESC_SIZE * entries, 16);
    const bytes = this.memory.bytes;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let k = 0; k < entries; k++) {
      const at = table + PACKED_DESC_SIZE * k;
      dv.setUint32(at + PackedDescField.ADDR, addr, true);
      dv.setUint32(at + PackedDescField.ADDR + 4, 0, true);
      dv.setUint32(at + PackedDescField.LEN, len, true);
      dv.setUint16(at + PackedDescField.ID, DECOY_ID, true);
      dv.setUint16(at + PackedDescField.FLAGS, 0, true);
    }
    return this.addIndirectAt(table, entries);
  }

  addSharedIndirect(table: number, entries: number, chains: number): Submitted[] {
    const out: Submitted[] = [];
    for (let i = 0; i < chains && this.freeDescriptors > 0; i++) out.push(this.addIndirectAt(table, entries));
    return out;
  }

  addAliased(spec: AliasedSpec): Submitted {
    const { buffers, writable } = aliasedBuffers(spec);
    if (spec.indirect) return this.addIndirectAt(this.writeTable(buffers), spec.count, writable);
    return this.publishList(buffers.map((b) => ({ addr: b.addr, len: b.len, flags: b.write ? VIRTQ_DESC_F_WRITE : 0 })), writable);
  }

  addLong(direct: number, indirect: number, addr: number, len: number): Submitted {
    const descs: RingDesc[] = Array.from({ length: direct }, () => ({ addr, len, flags: 0 }));
    if (indirect > 0) {
      const table = this.writeTable(Array.from({ length: indirect }, () => ({ addr, len })));
      descs.push({ addr: table, len: PACKED_DESC_SIZE * indirect, flags: VIRTQ_DESC_F_INDIRECT });
    }
    return this.publishList(descs, []);
  }

  /**
   * Notify unless the device event suppression says otherwise (§2.8.10): DISABLE never, DESC
   * (with EVENT_IDX) when the slots just made available pass the one it named, else always.
   */
  kick(): boolean {
    const added = this.addedSinceKick;
    this.addedSinceKick = 0;
    const flags = this.memory.readU16(this.addr.deviceEvent + EventSuppressField.FLAGS) & 3;
    let needed: boolean;
    if (flags === RingEventFlags.DISABLE) needed = false;
    else if (flags === RingEventFlags.DESC && this.eventIdx && added < this.size) {
      const event = splitOffWrap(this.memory.readU16(this.addr.deviceEvent + EventSuppressField.OFF_WRAP));
      const at = event.wrap === this.availWrap ? event.offset : event.offset - this.size;
      needed = vringNeedEvent(at & 0xffff, this.nextAvail, (this.nextAvail - added) & 0xffff);
    } else needed = true;
    if (needed) this.notify();
    return needed;
  }

  notify(): void {
    this.notifies++;
    this.driver.write(this.notifyAddr, 2, this.index);
  }

  /** Used descriptors at nextUsed while AVAIL = USED = the expected wrap value (§2.8.1). */
  used(): UsedElement[] {
    const out: UsedElement[] = [];
    while (this.inFlightById.size > 0) {
      const at = this.slotAddr(this.nextUsed);
      const flags = this.memory.readU16(at + PackedDescField.FLAGS);
      const avail = (flags & VIRTQ_DESC_F_AVAIL) !== 0;
      const used = (flags & VIRTQ_DESC_F_USED) !== 0;
      if (avail !== this.usedWrap || used !== this.usedWrap) break;
      const id = this.memory.readU16(at + PackedDescField.ID);
      // §2.8.4: len means something only with WRITE.
      const len = flags & VIRTQ_DESC_F_WRITE ? this.memory.readU32(at + PackedDescField.LEN) : 0;
      const chain = this.inFlightById.get(id);
      if (!chain) throw new Error(`queue ${this.index}: device used buffer id ${id}, which is not in flight`);
      this.inFlightById.delete(id);
      this.freeIds.push(id);
      this.freeSlots += chain.slots;
      this.nextUsed += chain.slots;
      if (this.nextUsed >= this.size) {
        this.nextUsed -= this.size;
        this.usedWrap = !this.usedWrap;
      }
      out.push({ head: id, len, data: gatherWritten(this.memory, chain.writable, len) });
    }
    return out;
  }

  /** With EVENT_IDX: DESC at the next used slot; else ENABLE (off_wrap before flags). */
  armInterrupt(): void {
    if (this.eventIdx) {
      this.memory.writeU16(this.addr.driverEvent + EventSuppressField.OFF_WRAP, offWrap(this.nextUsed, this.usedWrap));
      this.setDriverEventFlags(RingEventFlags.DESC);
    } else {
      this.setDriverEventFlags(RingEventFlags.ENABLE);
    }
  }

  /** Driver event suppression flags (ENABLE / DISABLE / DESC, or garbage for tests). */
  setDriverEventFlags(flags: number): void {
    this.memory.writeU16(this.addr.driverEvent + EventSuppressField.FLAGS, flags);
  }

  /** Driver event suppression off_wrap (DESC mode: "interrupt me when this slot is used"). */
  setDriverEventOffWrap(value: number): void {
    this.memory.writeU16(this.addr.driverEvent + EventSuppressField.OFF_WRAP, value);
  }

  /** The device event suppression structure as the device last wrote it. */
  get deviceEvent(): { flags: number; offWrap: number } {
    return {
      flags: this.memory.readU16(this.addr.deviceEvent + EventSuppressField.FLAGS),
      offWrap: this.memory.readU16(this.addr.deviceEvent + EventSuppressField.OFF_WRAP),
    };
  }

  /** The descriptor ring (used descriptors) and the device event suppression structure. */
  deviceWritableAreas(): Array<[number, number]> {
    return [
      [this.addr.desc, this.addr.desc + PACKED_DESC_SIZE * this.size],
      [this.addr.deviceEvent, this.addr.deviceEvent + 4],
    ];
  }
}
