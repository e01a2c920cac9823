/**
 * The device side of one packed virtqueue (§2.8): a single descriptor ring the driver and
 * the device both walk in order, with AVAIL/USED flag bits read against wrap counters instead
 * of separate avail and used rings, plus two event suppression structures. Like SplitQueue
 * it knows guest memory and the ring layout, nothing of PCI or interrupts.
 *
 * Everything read from the ring is guest-controlled and validated before use; the first
 * violation throws a VirtqueueError, reports it through `onBroken` and leaves the queue
 * broken until the transport builds a new one (after a device reset). The walk keeps the
 * split ring's written budget (../budget.ts): a chain holds at most `size` buffer
 * descriptors, an indirect table at most `size` entries, a chain less than 4 GiB. A kick can
 * pop at most `size` chains: the slots after the last available one carry the old wrap
 * counter, and used descriptors have AVAIL = USED, so neither reads as available.
 *
 * Rules kept here (§2.8): a descriptor is available when AVAIL matches the Driver Ring Wrap
 * Counter and USED does not (§2.8.1), in every descriptor of a list (§2.8.6 note); the Buffer
 * ID is in the last descriptor of a list (§2.8.6); INDIRECT only alone, never in a NEXT list
 * (§2.8.19), and inside an indirect table only WRITE means anything (§2.8.7). Used
 * descriptors are written in completion order, one per chain, and the used position skips
 * the chain's ring descriptors (§2.8.6, §2.8.12).
 *
 * Buffer IDs must be below the queue size: every driver we know numbers them so (Linux's
 * virtio_ring; the driver example of §2.8.22 asserts `id < vq->size`), and it lets the in-flight
 * table stay `size` entries, as in the split ring.
 */
import type { GuestMemory } from '../bus.ts';
import { MAX_CHAIN_BYTES, maxChainDescriptors, maxIndirectEntries } from '../budget.ts';
import {
  PACKED_MAX_SIZE,
  RingEventFlags,
  VIRTQ_DESC_F_AVAIL,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_USED,
  VIRTQ_DESC_F_WRITE,
} from '../constants.ts';
import type { DescriptorChain, Region } from './descriptor-chain.ts';
import { requireRingArea, unexpectedReason, VirtqueueError } from './errors.ts';
import { gatedPending, gateOpen, spendGateCredit } from './queue-gate.ts';
import { vringNeedEvent } from './layout.ts';
import {
  EVENT_SUPPRESS_SIZE,
  EventSuppressField,
  PACKED_DESC_SIZE,
  PackedDescField,
  PackedRingAlign,
  offWrap,
  packedRingBytes,
  splitOffWrap,
} from './packed-layout.ts';
import type { PackedQueueState, QueueGate, QueueObserver, Virtqueue } from './virtqueue.ts';
import type { PackedChainState, PackedEngineState } from './queue-state.ts';
import { FunctionStateError } from '../state/state-reader.ts';

/** [addr, len, …] of a chain's regions, as a saved state keeps them. */
function flatRegions(regions: readonly Region[]): number[] {
  return regions.flatMap((r) => [r.addr, r.len]);
}

export interface PackedQueueConfig {
  readonly index: number;
  /** Negotiated queue size: 1..32768, not necessarily a power of 2 (§2.8). */
  readonly size: number;
  /** Guest-physical addresses of the Descriptor Ring, Driver Area, Device Area (§2.8.10.1). */
  readonly descRing: number;
  /** Driver Event Suppression: the driver writes it, the device reads it (interrupts). */
  readonly driverEvent: number;
  /** Device Event Suppression: the device writes it, the driver reads it (kicks). */
  readonly deviceEvent: number;
  readonly eventIdx: boolean;
  readonly indirectDesc: boolean;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Names a descriptor in an error message (built only when one is raised). */
function where(slot: number, entry = -1): string {
  return entry < 0 ? `descriptor ${slot}` : `indirect descriptor ${entry} (slot ${slot})`;
}

/** §2.8.1: available = AVAIL matches the wrap counter and USED does not. */
function isAvailable(flags: number, wrap: boolean): boolean {
  const avail = (flags & VIRTQ_DESC_F_AVAIL) !== 0;
  const used = (flags & VIRTQ_DESC_F_USED) !== 0;
  return avail === wrap && used !== wrap;
}

interface Walked {
  readonly chain: DescriptorChain;
  /** Ring slots the chain occupies (1 for an indirect one). */
  readonly slots: number;
}

export class PackedQueue implements Virtqueue {
  readonly layout = 'packed' as const;
  readonly index: number;
  readonly size: number;
  readonly descRing: number;
  readonly driverEvent: number;
  readonly deviceEvent: number;
  readonly eventIdx: boolean;
  readonly indirectDesc: boolean;

  private nextAvail = 0;
  private availWrap = true;
  private nextUsed = 0;
  private usedWrap = true;
  private usedSinceSignal = 0;
  private notificationsEnabled = true;
  /** What we last wrote to the device event suppression structure (undefined: nothing yet). */
  private publishedFlags: number | undefined;
  private publishedOffWrap: number | undefined;
  /** Per Buffer ID: writable bytes while in flight, -1 when not. */
  private readonly inFlightWritable: Float64Array;
  /** Per Buffer ID: ring slots of the chain while in flight. */
  private readonly inFlightSlots: Uint16Array;
  /** Per Buffer ID: the ring slot its list began at (for the inspector). */
  private readonly inFlightFirst: Uint16Array;
  /**
   * Per Buffer ID: the chain while in flight. A snapshot saves its buffers: its ring
   * descriptors may be overwritten by used ones before it completes (queue-state.ts).
   */
  private readonly inFlightChain: Array<DescriptorChain | undefined>;
  private inFlightCount = 0;
  private inFlightDescriptors = 0;
  private brokenBy: VirtqueueError | undefined;
  private detached = false;
  /** memory.size, read once (see SplitQueue: on v86 each read builds a typed array). */
  private readonly ramSize: number;
  requests = 0;
  completions = 0;
  descriptorsVisited = 0;
  regionsAllocated = 0;
  observer: QueueObserver | undefined;
  gate: QueueGate | undefined;

  /** Throws VirtqueueError if the configuration itself is invalid (nothing is reported). */
  constructor(
    readonly memory: GuestMemory,
    config: PackedQueueConfig,
    private readonly onBroken: (error: VirtqueueError) => void = () => {},
  ) {
    const { index, size } = config;
    this.index = index;
    if (!Number.isInteger(size) || size < 1 || size > PACKED_MAX_SIZE) {
      throw new VirtqueueError(index, `queue size ${size} is not in 1..${PACKED_MAX_SIZE}`);
    }
    const ramSize = memory.size;
    this.ramSize = ramSize;
    const area = (what: string, addr: number, len: number, align: number) => requireRingArea(index, ramSize, what, addr, len, align);
    area('descriptor ring', config.descRing, packedRingBytes(size), PackedRingAlign.DESC);
    area('driver event suppression', config.driverEvent, EVENT_SUPPRESS_SIZE, PackedRingAlign.DRIVER);
    area('device event suppression', config.deviceEvent, EVENT_SUPPRESS_SIZE, PackedRingAlign.DEVICE);
    this.size = size;
    this.descRing = config.descRing;
    this.driverEvent = config.driverEvent;
    this.deviceEvent = config.deviceEvent;
    this.eventIdx = config.eventIdx;
    this.indirectDesc = config.indirectDesc;
    this.inFlightWritable = new Float64Array(size).fill(-1);
    this.inFlightSlots = new Uint16Array(size);
    this.inFlightFirst = new Uint16Array(size);
    this.inFlightChain = new Array<DescriptorChain | undefined>(size).fill(undefined);
  }

  get broken(): VirtqueueError | undefined {
    return this.brokenBy;
  }

  get live(): boolean {
    return !this.brokenBy && !this.detached;
  }

  detach(): void {
    this.detached = true;
  }

  state(): PackedQueueState {
    return {
      layout: 'packed',
      size: this.size,
      nextAvail: this.nextAvail,
      availWrap: this.availWrap,
      nextUsed: this.nextUsed,
      usedWrap: this.usedWrap,
      usedSinceSignal: this.usedSinceSignal,
      inFlight: this.inFlightCount,
      inFlightDescriptors: this.inFlightDescriptors,
      deviceEvent:
        this.publishedFlags === undefined ? undefined : { flags: this.publishedFlags, offWrap: this.publishedOffWrap ?? 0 },
      broken: this.brokenBy?.reason,
    };
  }

  inFlightIds(): number[] {
    const ids: number[] = [];
    if (this.inFlightCount === 0) return ids;
    for (let i = 0; i < this.size; i++) if (this.inFlightWritable[i] >= 0) ids.push(i);
    return ids;
  }

  /**
   * The chains in flight as the ring holds them, in Buffer ID order: where each list began,
   * how many slots it covers, and its writable capacity. With state() this is what a drawing
   * of the ring needs (which slots the driver may not touch yet, §2.8.16).
   */
  inFlightChains(): Array<{ id: number; firstSlot: number; slots: number; writableLength: number }> {
    const out: Array<{ id: number; firstSlot: number; slots: number; writableLength: number }> = [];
    if (this.inFlightCount === 0) return out;
    for (let id = 0; id < this.size; id++) {
      const writableLength = this.inFlightWritable[id]!;
      if (writableLength >= 0) out.push({ id, firstSlot: this.inFlightFirst[id]!, slots: this.inFlightSlots[id]!, writableLength });
    }
    return out;
  }

  /** Everything this engine keeps beside the ring, for a VM snapshot (see queue-state.ts). */
  saveState(): PackedEngineState {
    const inFlight: PackedChainState[] = [];
    for (const { id, firstSlot, slots } of this.inFlightChains()) {
      const chain = this.inFlightChain[id]!;
      inFlight.push({ id, firstSlot, slots, indirect: chain.indirect, readable: flatRegions(chain.readable), writable: flatRegions(chain.writable) });
    }
    return {
      layout: 'packed',
      nextAvail: this.nextAvail,
      availWrap: this.availWrap,
      nextUsed: this.nextUsed,
      usedWrap: this.usedWrap,
      usedSinceSignal: this.usedSinceSignal,
      notificationsEnabled: this.notificationsEnabled,
      deviceEventFlags: this.publishedFlags ?? null,
      deviceEventOffWrap: this.publishedOffWrap ?? null,
      inFlight,
      broken: this.brokenBy?.reason ?? null,
    };
  }

  /**
   * Continue where a saved engine stopped, on this queue just built over the restored guest
   * memory (nothing popped yet). The chains in flight come back from their saved buffers,
   * each checked to lie inside guest RAM as a pop checks it; returns them by Buffer ID.
   * Writes nothing to guest memory. Throws FunctionStateError for a buffer outside RAM.
   */
  restoreState(state: PackedEngineState): Map<number, DescriptorChain> {
    if (this.requests !== 0 || this.brokenBy) throw new Error(`queue ${this.index}: restoreState on a queue already in use`);
    const chains = new Map<number, DescriptorChain>();
    for (const saved of state.inFlight) chains.set(saved.id, this.restoredChain(saved));
    this.nextAvail = state.nextAvail;
    this.availWrap = state.availWrap;
    this.nextUsed = state.nextUsed;
    this.usedWrap = state.usedWrap;
    this.usedSinceSignal = state.usedSinceSignal;
    this.notificationsEnabled = state.notificationsEnabled;
    this.publishedFlags = state.deviceEventFlags ?? undefined;
    this.publishedOffWrap = state.deviceEventOffWrap ?? undefined;
    for (const saved of state.inFlight) {
      const chain = chains.get(saved.id)!;
      this.inFlightWritable[saved.id] = chain.writableLength;
      this.inFlightSlots[saved.id] = saved.slots;
      this.inFlightFirst[saved.id] = saved.firstSlot;
      this.inFlightChain[saved.id] = chain;
      this.inFlightDescriptors += saved.slots;
    }
    this.inFlightCount = state.inFlight.length;
    if (state.broken !== null) {
      this.brokenBy = new VirtqueueError(this.index, state.broken);
      chains.clear(); // a broken queue's chains are never completed
    }
    return chains;
  }

  private restoredChain(saved: PackedChainState): DescriptorChain {
    const regions = (flat: readonly number[]): Region[] => {
      const out: Region[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const addr = flat[i]!;
        const len = flat[i + 1]!;
        if (addr + len > this.ramSize) {
          throw new FunctionStateError(
            `queue ${this.index}: buffer id ${saved.id} in flight has a buffer [${hex(addr)}, +${len}) outside guest RAM (${hex(this.ramSize)} bytes)`,
          );
        }
        out.push({ addr, len });
      }
      return out;
    };
    const readable = regions(saved.readable);
    const writable = regions(saved.writable);
    const sum = (list: Region[]) => list.reduce((n, r) => n + r.len, 0);
    return { headIndex: saved.id, readable, writable, readableLength: sum(readable), writableLength: sum(writable), indirect: saved.indirect };
  }

  /**
   * Resume at ring slot `position` with both wrap counters `wrap` (snapshot restore; tests
   * that start near the wrap). Only valid with nothing in flight, where the driver's and the
   * device's positions meet (§2.8.1).
   */
  restorePosition(position: number, wrap: boolean): void {
    if (this.inFlightCount !== 0) throw new Error(`queue ${this.index}: restore with chains in flight`);
    if (!Number.isInteger(position) || position < 0 || position >= this.size) {
      throw new RangeError(`queue ${this.index}: position ${position} outside the ring of ${this.size}`);
    }
    this.nextAvail = this.nextUsed = position;
    this.availWrap = this.usedWrap = wrap;
    this.usedSinceSignal = 0;
    if (this.live && this.notificationsEnabled) this.publishEnable();
  }

  private fail(reason: string): never {
    const error = new VirtqueueError(this.index, reason);
    this.brokenBy = error;
    this.onBroken(error);
    throw error;
  }

  private unexpected(error: unknown): never {
    return this.fail(unexpectedReason(error));
  }

  private flagsAt(slot: number): number {
    return this.memory.readU16(this.descRing + PACKED_DESC_SIZE * slot + PackedDescField.FLAGS);
  }

  /**
   * Chains made available and not popped: walks the flags of the available descriptors from
   * `nextAvail` (at most size − in-flight of them, 2 bytes each) and counts list ends.
   */
  pending(): number {
    if (!this.live) return 0;
    let chains = 0;
    try {
      let slot = this.nextAvail;
      let wrap = this.availWrap;
      const free = this.size - this.inFlightDescriptors;
      for (let n = 0; n < free; n++) {
        const flags = this.flagsAt(slot);
        if (!isAvailable(flags, wrap)) break;
        if (!(flags & VIRTQ_DESC_F_NEXT)) chains++;
        if (++slot === this.size) {
          slot = 0;
          wrap = !wrap;
        }
      }
    } catch (error) {
      return this.unexpected(error);
    }
    return gatedPending(this.gate, chains);
  }

  /** Whether the descriptor at `nextAvail` is available (one 2-byte read). */
  private headAvailable(): boolean {
    return isAvailable(this.flagsAt(this.nextAvail), this.availWrap);
  }

  pop(): DescriptorChain | null {
    if (!this.live) return null;
    const gate = this.gate;
    if (!gateOpen(gate)) return null;
    try {
      if (!this.headAvailable()) {
        this.publishAvailEvent();
        return null;
      }
      const { chain, slots } = this.walkChain();
      const id = chain.headIndex;
      this.inFlightFirst[id] = this.nextAvail;
      const next = this.nextAvail + slots;
      if (next >= this.size) {
        this.nextAvail = next - this.size;
        this.availWrap = !this.availWrap;
      } else {
        this.nextAvail = next;
      }
      this.inFlightWritable[id] = chain.writableLength;
      this.inFlightSlots[id] = slots;
      this.inFlightChain[id] = chain;
      this.inFlightCount++;
      this.inFlightDescriptors += slots;
      this.requests++;
      spendGateCredit(gate);
      this.publishAvailEvent();
      this.observer?.popped(this, chain);
      return chain;
    } catch (error) {
      return this.unexpected(error);
    }
  }

  /** Read the list starting at `nextAvail` (already known available) without moving. */
  private walkChain(): Walked {
    const readable: Region[] = [];
    const writable: Region[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let sawWritable = false;
    let indirect = false;
    let buffers = 0;
    const maxBuffers = maxChainDescriptors(this.size);
    const first = this.nextAvail;
    // Ring slots not held by chains in flight: the most one list can cover (§2.8.17).
    const free = this.size - this.inFlightDescriptors;
    let slot = first;
    let wrap = this.availWrap;
    let slots = 0;
    let id = 0;

    // `at`: the ring slot; `entry`: the indirect table entry, or -1 for the slot itself.
    const take = (addrLo: number, addrHi: number, len: number, write: boolean, at: number, entry: number) => {
      this.checkBuffer(addrLo, addrHi, len, at, entry);
      if (++buffers > maxBuffers) this.fail(`chain at slot ${first} is longer than the queue size ${this.size}`);
      if (readableLength + writableLength + len > MAX_CHAIN_BYTES) {
        this.fail(`${where(at, entry)}: chain at slot ${first} passes ${MAX_CHAIN_BYTES} bytes in total`);
      }
      if (write) {
        sawWritable = true;
        if (len > 0) {
          writable.push({ addr: addrLo, len });
          this.regionsAllocated++;
        }
        writableLength += len;
      } else {
        if (sawWritable) this.fail(`${where(at, entry)}: driver-readable descriptor after a writable one`);
        if (len > 0) {
          readable.push({ addr: addrLo, len });
          this.regionsAllocated++;
        }
        readableLength += len;
      }
    };

    for (;;) {
      if (slots >= free) {
        this.fail(
          `chain at slot ${first} runs past ${free} free ring slots ` +
            `(queue size ${this.size}, ${this.inFlightDescriptors} held by chains in flight)`,
        );
      }
      const base = this.descRing + PACKED_DESC_SIZE * slot;
      this.descriptorsVisited++;
      const flags = this.memory.readU16(base + PackedDescField.FLAGS);
      const at = slot;
      // The head was checked by pop(); the rest of the list must be available too (§2.8.6).
      if (slots > 0 && !isAvailable(flags, wrap)) {
        this.fail(`${where(at)}: in the chain at slot ${first} but not available (flags ${hex(flags)}, wrap counter ${wrap ? 1 : 0})`);
      }
      const addrLo = this.memory.readU32(base + PackedDescField.ADDR);
      const addrHi = this.memory.readU32(base + PackedDescField.ADDR + 4);
      const len = this.memory.readU32(base + PackedDescField.LEN);
      id = this.memory.readU16(base + PackedDescField.ID);
      slots++;
      if (++slot === this.size) {
        slot = 0;
        wrap = !wrap;
      }

      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.indirectDesc) this.fail(`${where(at)}: INDIRECT but VIRTIO_F_RING_INDIRECT_DESC not negotiated`);
        // §2.8.19: never in a list linked by NEXT, so only alone.
        if (flags & VIRTQ_DESC_F_NEXT || slots > 1) this.fail(`${where(at)}: INDIRECT inside a NEXT list`);
        if (len === 0 || len % PACKED_DESC_SIZE !== 0) {
          this.fail(`${where(at)}: indirect table length ${len} is not a nonzero multiple of ${PACKED_DESC_SIZE}`);
        }
        const entries = len / PACKED_DESC_SIZE;
        if (entries > maxIndirectEntries(this.size)) {
          this.fail(`${where(at)}: indirect table of ${entries} descriptors is longer than the queue size ${this.size}`);
        }
        this.checkBuffer(addrLo, addrHi, len, at, -1);
        indirect = true;
        // §2.8.7: entries follow one another; WRITE is their only flag, ids are ignored.
        for (let k = 0; k < entries; k++) {
          const entry = addrLo + PACKED_DESC_SIZE * k;
          this.descriptorsVisited++;
          const eFlags = this.memory.readU16(entry + PackedDescField.FLAGS);
          const eLo = this.memory.readU32(entry + PackedDescField.ADDR);
          const eHi = this.memory.readU32(entry + PackedDescField.ADDR + 4);
          const eLen = this.memory.readU32(entry + PackedDescField.LEN);
          take(eLo, eHi, eLen, (eFlags & VIRTQ_DESC_F_WRITE) !== 0, at, k);
        }
        break;
      }
      take(addrLo, addrHi, len, (flags & VIRTQ_DESC_F_WRITE) !== 0, at, -1);
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    }
    // §2.8.6: the Buffer ID is the last descriptor's.
    if (id >= this.size) this.fail(`chain at slot ${first}: buffer id ${id} ≥ queue size ${this.size}`);
    if (this.inFlightWritable[id] >= 0) this.fail(`chain at slot ${first}: buffer id ${id} is already in flight`);
    return { chain: { headIndex: id, readable, writable, readableLength, writableLength, indirect }, slots };
  }

  /** A guest buffer must lie wholly inside RAM; le64 addresses above 4 GiB never do here. */
  private checkBuffer(addrLo: number, addrHi: number, len: number, at: number, entry: number): void {
    if (addrHi !== 0) {
      this.fail(`${where(at, entry)}: address ${hex(addrHi)}_${addrLo.toString(16).padStart(8, '0')} is beyond 4 GiB`);
    }
    if (addrLo + len > this.ramSize) {
      this.fail(`${where(at, entry)}: buffer [${hex(addrLo)}, +${len}) is outside guest RAM (${hex(this.ramSize)} bytes)`);
    }
  }

  /**
   * Write one used descriptor at `nextUsed` (§2.8.6): id and len first, flags last (they make
   * it visible), AVAIL = USED = the Device Ring Wrap Counter, WRITE when bytes were written
   * (§2.8.3). Then skip the chain's ring slots.
   */
  pushUsed(id: number, writtenLen: number): void {
    if (!this.live) return;
    const capacity = Number.isInteger(id) && id >= 0 && id < this.size ? this.inFlightWritable[id] : -1;
    if (!(capacity >= 0)) throw new Error(`queue ${this.index}: pushUsed(${id}) but that buffer is not in flight`);
    if (!Number.isInteger(writtenLen) || writtenLen < 0 || writtenLen > capacity) {
      throw new Error(`queue ${this.index}: pushUsed(${id}, ${writtenLen}) but the chain holds ${capacity} writable bytes`);
    }
    const slots = this.inFlightSlots[id];
    this.inFlightWritable[id] = -1;
    this.inFlightChain[id] = undefined;
    this.inFlightCount--;
    this.inFlightDescriptors -= slots;
    const base = this.descRing + PACKED_DESC_SIZE * this.nextUsed;
    this.memory.writeU16(base + PackedDescField.ID, id);
    this.memory.writeU32(base + PackedDescField.LEN, writtenLen);
    const wrapBits = this.usedWrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
    this.memory.writeU16(base + PackedDescField.FLAGS, wrapBits | (writtenLen > 0 ? VIRTQ_DESC_F_WRITE : 0));
    const next = this.nextUsed + slots;
    if (next >= this.size) {
      this.nextUsed = next - this.size;
      this.usedWrap = !this.usedWrap;
    } else {
      this.nextUsed = next;
    }
    this.usedSinceSignal += slots;
    this.completions++;
    this.observer?.completed(this, id, writtenLen);
  }

  /**
   * The driver event suppression decides (§2.8.10): DISABLE never, ENABLE always, DESC when
   * the used position passed the descriptor off_wrap names (with VIRTIO_F_RING_EVENT_IDX;
   * without it, and for the reserved value 3, we interrupt: a spare interrupt is harmless,
   * a missing one hangs the driver).
   */
  needsInterrupt(): boolean {
    if (!this.live) return false;
    const used = this.usedSinceSignal;
    this.usedSinceSignal = 0;
    if (used === 0) return false;
    const flags = this.memory.readU16(this.driverEvent + EventSuppressField.FLAGS) & 3;
    if (flags === RingEventFlags.DISABLE) return false;
    if (flags !== RingEventFlags.DESC || !this.eventIdx) return true;
    // A whole lap or more since the last decision: every slot was passed, the event's too.
    if (used >= this.size) return true;
    const event = splitOffWrap(this.memory.readU16(this.driverEvent + EventSuppressField.OFF_WRAP));
    // Positions of this lap count from 0; the other wrap value means the previous lap.
    const eventPos = event.wrap === this.usedWrap ? event.offset : event.offset - this.size;
    const newPos = this.nextUsed;
    const oldPos = newPos - used;
    return vringNeedEvent(eventPos & 0xffff, newPos & 0xffff, oldPos & 0xffff);
  }

  enableNotifications(): boolean {
    this.notificationsEnabled = true;
    if (!this.live) return false;
    this.publishEnable();
    try {
      return gateOpen(this.gate) && this.headAvailable();
    } catch (error) {
      return this.unexpected(error);
    }
  }

  disableNotifications(): void {
    this.notificationsEnabled = false;
    if (!this.live) return;
    this.publish(RingEventFlags.DISABLE, this.publishedOffWrap);
  }

  /** ENABLE, or with EVENT_IDX "kick me when slot nextAvail (this wrap) becomes available". */
  private publishEnable(): void {
    if (this.eventIdx) this.publish(RingEventFlags.DESC, offWrap(this.nextAvail, this.availWrap));
    else this.publish(RingEventFlags.ENABLE, this.publishedOffWrap);
  }

  /** With EVENT_IDX and kicks wanted: move off_wrap to where we will look next. */
  private publishAvailEvent(): void {
    if (this.eventIdx && this.notificationsEnabled) this.publish(RingEventFlags.DESC, offWrap(this.nextAvail, this.availWrap));
  }

  /**
   * Write the device event suppression structure, skipping fields that did not change (the
   * structure is write-only by the device, §2.8.10, so our copy is what the driver reads).
   * off_wrap goes first so the driver never sees DESC with a stale offset.
   */
  private publish(flags: number, offWrapValue: number | undefined): void {
    if (offWrapValue !== undefined && offWrapValue !== this.publishedOffWrap) {
      this.memory.writeU16(this.deviceEvent + EventSuppressField.OFF_WRAP, offWrapValue);
      this.publishedOffWrap = offWrapValue;
    }
    if (flags !== this.publishedFlags) {
      this.memory.writeU16(this.deviceEvent + EventSuppressField.FLAGS, flags);
      this.publishedFlags = flags;
    }
  }
}
