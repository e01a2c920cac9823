/**
 * The device side of one split virtqueue (§2.7). It knows guest memory and the ring
 * layout, nothing of PCI or interrupts: the transport asks `needsInterrupt()` and
 * delivers the interrupt itself (as rust-vmm's virtio-queue leaves it "up to the VMM").
 *
 * Everything read from the rings is guest-controlled and validated before use. The first
 * violation throws a VirtqueueError, reports it through `onBroken`, and leaves the queue
 * broken: pop() returns null and pushUsed() is ignored until the transport builds a new
 * queue (after a device reset).
 *
 * Every walk is bounded by the written budget (../budget.ts): a chain holds at most `size`
 * buffer descriptors (§2.7.5.3.1), an indirect table at most `size` entries and a chain
 * less than 4 GiB (§2.7.5.2). Over budget is a violation like any other, so one kick costs
 * at most size × (size + 1) descriptor reads whatever the guest wrote.
 */
import type { GuestMemory } from '../bus.ts';
import { MAX_CHAIN_BYTES, maxChainDescriptors, maxIndirectEntries } from '../budget.ts';
import {
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_MAX_SIZE,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_USED_F_NO_NOTIFY,
} from '../constants.ts';
import type { DescriptorChain, Region } from './descriptor-chain.ts';
import { requireRingArea, unexpectedReason, VirtqueueError } from './errors.ts';
import { gatedPending, gateOpen, spendGateCredit } from './queue-gate.ts';
import type { SplitEngineState } from './queue-state.ts';
import { FunctionStateError } from '../state/state-reader.ts';
import type { QueueGate, QueueObserver, SplitQueueState, Virtqueue } from './virtqueue.ts';
import {
  DESC_SIZE,
  DescField,
  RING_ENTRIES,
  RING_FLAGS,
  RING_IDX,
  RingAlign,
  USED_ELEM_SIZE,
  availEventOffset,
  availRingBytes,
  descTableBytes,
  isPowerOfTwo,
  usedEventOffset,
  usedRingBytes,
  vringNeedEvent,
} from './layout.ts';

export interface SplitQueueConfig {
  /** Queue index within the device, for error messages. */
  readonly index: number;
  /** Negotiated queue size: power of 2, ≤ 32768. */
  readonly size: number;
  /** Guest-physical addresses of the Descriptor Table, Driver Area, Device Area. */
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  /** VIRTIO_F_RING_EVENT_IDX negotiated. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_RING_INDIRECT_DESC negotiated. */
  readonly indirectDesc: boolean;
}

export type { QueueGate, QueueObserver, SplitQueueState } from './virtqueue.ts';

const hex = (n: number) => `0x${n.toString(16)}`;

export class SplitQueue implements Virtqueue {
  readonly layout = 'split' as const;
  readonly index: number;
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly eventIdx: boolean;
  readonly indirectDesc: boolean;

  private lastAvailIdx = 0;
  private usedIdx = 0;
  private signalledUsedIdx = 0;
  private notificationsEnabled = true;
  /** Per head descriptor: writable bytes of the chain while in flight, -1 when not. */
  private readonly inFlightWritable: Float64Array;
  private inFlightCount = 0;
  private brokenBy: VirtqueueError | undefined;
  private detached = false;
  /**
   * memory.size, read once: guest RAM does not change size while a queue lives, and on v86
   * every read of it builds a typed array behind a Proxy (µs), which per descriptor cost more
   * than the rest of the ring walk.
   */
  private readonly ramSize: number;
  /** Chains popped and chains pushed used since the queue was enabled (counters always on). */
  requests = 0;
  completions = 0;
  /**
   * Descriptors read and Region objects built by the ring walk since the queue was enabled
   * (always on, one addition each): the bounded-work properties read them around a kick.
   */
  descriptorsVisited = 0;
  regionsAllocated = 0;
  observer: QueueObserver | undefined;
  gate: QueueGate | undefined;

  /** Throws VirtqueueError if the configuration itself is invalid (nothing is reported). */
  constructor(
    readonly memory: GuestMemory,
    config: SplitQueueConfig,
    private readonly onBroken: (error: VirtqueueError) => void = () => {},
  ) {
    const { index, size, eventIdx } = config;
    this.index = index;
    if (!isPowerOfTwo(size) || size > VIRTQ_MAX_SIZE) {
      throw new VirtqueueError(index, `queue size ${size} is not a power of 2 ≤ ${VIRTQ_MAX_SIZE}`);
    }
    const ramSize = memory.size;
    this.ramSize = ramSize;
    const area = (what: string, addr: number, len: number, align: number) => requireRingArea(index, ramSize, what, addr, len, align);
    area('descriptor table', config.descTable, descTableBytes(size), RingAlign.DESC);
    area('avail ring', config.availRing, availRingBytes(size, eventIdx), RingAlign.AVAIL);
    area('used ring', config.usedRing, usedRingBytes(size, eventIdx), RingAlign.USED);
    this.size = size;
    this.descTable = config.descTable;
    this.availRing = config.availRing;
    this.usedRing = config.usedRing;
    this.eventIdx = eventIdx;
    this.indirectDesc = config.indirectDesc;
    this.inFlightWritable = new Float64Array(size).fill(-1);
  }

  get broken(): VirtqueueError | undefined {
    return this.brokenBy;
  }

  /** True while the queue may still be used (not broken, not detached by a reset). */
  get live(): boolean {
    return !this.brokenBy && !this.detached;
  }

  /** Stop touching guest memory for good (device reset: the rings may be reused for anything). */
  detach(): void {
    this.detached = true;
  }

  state(): SplitQueueState {
    return {
      layout: 'split',
      size: this.size,
      lastAvailIdx: this.lastAvailIdx,
      usedIdx: this.usedIdx,
      signalledUsedIdx: this.signalledUsedIdx,
      inFlight: this.inFlightCount,
      broken: this.brokenBy?.reason,
    };
  }

  /** Virtqueue's name for inFlightHeads(): a split chain's id is its head descriptor. */
  inFlightIds(): number[] {
    return this.inFlightHeads();
  }

  /** Heads of the chains popped and not yet pushed used, ascending. */
  inFlightHeads(): number[] {
    const heads: number[] = [];
    if (this.inFlightCount === 0) return heads;
    for (let i = 0; i < this.size; i++) if (this.inFlightWritable[i] >= 0) heads.push(i);
    return heads;
  }

  /** Everything this engine keeps beside the rings, for a VM snapshot (see queue-state.ts). */
  saveState(): SplitEngineState {
    return {
      layout: 'split',
      lastAvailIdx: this.lastAvailIdx,
      usedIdx: this.usedIdx,
      signalledUsedIdx: this.signalledUsedIdx,
      notificationsEnabled: this.notificationsEnabled,
      inFlight: this.inFlightHeads(),
      broken: this.brokenBy?.reason ?? null,
    };
  }

  /**
   * Continue where a saved engine stopped, on this queue just built over the restored guest
   * memory (nothing popped yet). The chains in flight are walked again from their heads, with
   * every check of a pop: the driver may not have touched them (§2.7.13.1). Returns them by
   * head, for the device that holds them. Writes nothing to guest memory (it already holds
   * what the saved engine wrote). Throws FunctionStateError when a chain no longer reads as
   * one; the queue is then unusable (the caller drops it).
   */
  restoreState(state: SplitEngineState): Map<number, DescriptorChain> {
    if (this.requests !== 0 || this.brokenBy) throw new Error(`queue ${this.index}: restoreState on a queue already in use`);
    const chains = new Map<number, DescriptorChain>();
    if (state.broken === null) {
      for (const head of state.inFlight) {
        if (head >= this.size) throw new FunctionStateError(`queue ${this.index}: head ${head} in flight ≥ queue size ${this.size}`);
        try {
          chains.set(head, this.walkChain(head));
        } catch (error) {
          const reason = error instanceof VirtqueueError ? error.reason : unexpectedReason(error);
          throw new FunctionStateError(`queue ${this.index}: the chain in flight at head ${head} no longer reads as one: ${reason}`, { cause: error });
        }
      }
    }
    this.lastAvailIdx = state.lastAvailIdx & 0xffff;
    this.usedIdx = state.usedIdx & 0xffff;
    this.signalledUsedIdx = state.signalledUsedIdx & 0xffff;
    this.notificationsEnabled = state.notificationsEnabled;
    // A broken queue's chains are never completed (pushUsed ignores them): only counted.
    for (const head of state.inFlight) this.inFlightWritable[head] = chains.get(head)?.writableLength ?? 0;
    this.inFlightCount = state.inFlight.length;
    if (state.broken !== null) this.brokenBy = new VirtqueueError(this.index, state.broken);
    return chains;
  }

  /**
   * Resume from saved indices (snapshot restore; tests that start near the 16-bit wrap).
   * Only valid with nothing in flight.
   */
  restoreIndices(lastAvailIdx: number, usedIdx: number): void {
    if (this.inFlightCount !== 0) throw new Error(`queue ${this.index}: restore with chains in flight`);
    this.lastAvailIdx = lastAvailIdx & 0xffff;
    this.usedIdx = usedIdx & 0xffff;
    this.signalledUsedIdx = this.usedIdx;
    // The driver's kick decision reads avail_event: point it at where we resume.
    if (this.live) this.publishAvailEvent();
  }

  private fail(reason: string): never {
    const error = new VirtqueueError(this.index, reason);
    this.brokenBy = error;
    this.onBroken(error);
    throw error;
  }

  /** The driver's avail->idx, checked against what we have already consumed. */
  private readAvailIdx(): number {
    const availIdx = this.memory.readU16(this.availRing + RING_IDX);
    const pending = (availIdx - this.lastAvailIdx) & 0xffff;
    if (pending > this.size) {
      this.fail(
        `avail idx ${availIdx} is ${pending} entries ahead of last seen ${this.lastAvailIdx} ` +
          `(queue size ${this.size})`,
      );
    }
    return availIdx;
  }

  /** Number of chains the driver has made available that pop() has not returned yet. */
  pending(): number {
    if (!this.live) return 0;
    let pending: number;
    try {
      pending = (this.readAvailIdx() - this.lastAvailIdx) & 0xffff;
    } catch (error) {
      return this.unexpected(error);
    }
    return gatedPending(this.gate, pending);
  }

  /** Next available chain, or null when the ring is empty (or the queue is not live). */
  pop(): DescriptorChain | null {
    if (!this.live) return null;
    const gate = this.gate;
    if (!gateOpen(gate)) return null;
    try {
      const availIdx = this.readAvailIdx();
      if (availIdx === this.lastAvailIdx) {
        this.publishAvailEvent();
        return null;
      }
      const slot = this.lastAvailIdx & (this.size - 1);
      const head = this.memory.readU16(this.availRing + RING_ENTRIES + 2 * slot);
      if (head >= this.size) this.fail(`avail ring[${slot}]: head ${head} ≥ queue size ${this.size}`);
      if (this.inFlightWritable[head] >= 0) {
        this.fail(`avail ring[${slot}]: head ${head} is already in flight`);
      }
      const chain = this.walkChain(head);
      this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
      this.inFlightWritable[head] = chain.writableLength;
      this.inFlightCount++;
      this.requests++;
      spendGateCredit(gate);
      this.publishAvailEvent();
      this.observer?.popped(this, chain);
      return chain;
    } catch (error) {
      return this.unexpected(error);
    }
  }

  /**
   * For pop() and pending()'s catch: turn anything unexpected (a host memory error despite
   * our checks) into a broken queue; a VirtqueueError (already reported) passes through.
   */
  private unexpected(error: unknown): never {
    return this.fail(unexpectedReason(error));
  }

  private walkChain(head: number): DescriptorChain {
    const readable: Region[] = [];
    const writable: Region[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let sawWritable = false;
    let indirect = false;
    // The table being walked: the ring's own, or an indirect one.
    let table = this.descTable;
    let tableSize = this.size;
    let i = head;
    let count = 0;
    // Buffer descriptors of the whole chain, direct and indirect together.
    let buffers = 0;
    const maxBuffers = maxChainDescriptors(this.size);

    for (;;) {
      // Every descriptor in a table visited at most once per chain: more means a loop.
      if (++count > tableSize) {
        this.fail(
          `chain from head ${head} has more than ${tableSize} descriptors in ` +
            `${indirect ? 'its indirect table' : 'the queue'} (loop?)`,
        );
      }
      const base = table + DESC_SIZE * i;
      this.descriptorsVisited++;
      const addrLo = this.memory.readU32(base + DescField.ADDR);
      const addrHi = this.memory.readU32(base + DescField.ADDR + 4);
      const len = this.memory.readU32(base + DescField.LEN);
      const flags = this.memory.readU16(base + DescField.FLAGS);
      const next = this.memory.readU16(base + DescField.NEXT);

      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.indirectDesc) this.fail(`${this.where(i, indirect, head)}: INDIRECT but VIRTIO_F_RING_INDIRECT_DESC not negotiated`);
        if (indirect) this.fail(`${this.where(i, indirect, head)}: nested INDIRECT inside an indirect table`);
        if (flags & VIRTQ_DESC_F_NEXT) this.fail(`${this.where(i, indirect, head)}: INDIRECT together with NEXT`);
        if (len === 0 || len % DESC_SIZE !== 0) {
          this.fail(`${this.where(i, indirect, head)}: indirect table length ${len} is not a nonzero multiple of ${DESC_SIZE}`);
        }
        // Refused from its length alone: a huge table costs one read, not a walk.
        const entries = len / DESC_SIZE;
        if (entries > maxIndirectEntries(this.size)) {
          this.fail(`${this.where(i, indirect, head)}: indirect table of ${entries} descriptors is longer than the queue size ${this.size}`);
        }
        this.checkBuffer(addrLo, addrHi, len, i, indirect, head);
        table = addrLo;
        tableSize = entries;
        indirect = true;
        i = 0;
        count = 0;
        continue;
      }

      this.checkBuffer(addrLo, addrHi, len, i, indirect, head);
      if (++buffers > maxBuffers) {
        this.fail(`chain from head ${head} is longer than the queue size ${this.size} (direct and indirect descriptors together)`);
      }
      // Both stay exact below 2^53: at most 32768 lengths of < 2^32 each.
      if (readableLength + writableLength + len > MAX_CHAIN_BYTES) {
        this.fail(`${this.where(i, indirect, head)}: chain from head ${head} passes ${MAX_CHAIN_BYTES} bytes in total`);
      }
      if (flags & VIRTQ_DESC_F_WRITE) {
        sawWritable = true;
        if (len > 0) {
          writable.push({ addr: addrLo, len });
          this.regionsAllocated++;
        }
        writableLength += len;
      } else {
        if (sawWritable) this.fail(`${this.where(i, indirect, head)}: driver-readable descriptor after a writable one`);
        if (len > 0) {
          readable.push({ addr: addrLo, len });
          this.regionsAllocated++;
        }
        readableLength += len;
      }
      if (!(flags & VIRTQ_DESC_F_NEXT)) break;
      if (next >= tableSize) {
        this.fail(`${this.where(i, indirect, head)}: next ${next} ≥ ${indirect ? 'indirect table size' : 'queue size'} ${tableSize}`);
      }
      i = next;
    }
    return { headIndex: head, readable, writable, readableLength, writableLength, indirect };
  }

  /** Names descriptor `i` in an error message (built only when one is raised). */
  private where(i: number, indirect: boolean, head: number): string {
    return indirect ? `indirect descriptor ${i} (chain head ${head})` : `descriptor ${i}`;
  }

  /** A guest buffer must lie wholly inside RAM; le64 addresses above 4 GiB never do here. */
  private checkBuffer(addrLo: number, addrHi: number, len: number, i: number, indirect: boolean, head: number): void {
    if (addrHi !== 0) {
      this.fail(`${this.where(i, indirect, head)}: address ${hex(addrHi)}_${addrLo.toString(16).padStart(8, '0')} is beyond 4 GiB`);
    }
    if (addrLo + len > this.ramSize) {
      this.fail(
        `${this.where(i, indirect, head)}: buffer [${hex(addrLo)}, +${len}) is outside guest RAM (${hex(this.ramSize)} bytes)`,
      );
    }
  }

  /**
   * Return a chain to the driver with the number of bytes written into its writable
   * buffers. Pushing a head that is not in flight, or claiming more bytes than the chain
   * can hold, is a device bug and throws. Does not interrupt: see needsInterrupt().
   */
  pushUsed(headIndex: number, writtenLen: number): void {
    if (!this.live) return;
    const capacity = headIndex >= 0 && headIndex < this.size ? this.inFlightWritable[headIndex] : -1;
    if (!(capacity >= 0)) throw new Error(`queue ${this.index}: pushUsed(${headIndex}) but that chain is not in flight`);
    if (!Number.isInteger(writtenLen) || writtenLen < 0 || writtenLen > capacity) {
      throw new Error(`queue ${this.index}: pushUsed(${headIndex}, ${writtenLen}) but the chain holds ${capacity} writable bytes`);
    }
    this.inFlightWritable[headIndex] = -1;
    this.inFlightCount--;
    const slot = this.usedIdx & (this.size - 1);
    const elem = this.usedRing + RING_ENTRIES + USED_ELEM_SIZE * slot;
    this.memory.writeU32(elem, headIndex);
    this.memory.writeU32(elem + 4, writtenLen);
    // The element must be in place before the driver can see the new index.
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    this.memory.writeU16(this.usedRing + RING_IDX, this.usedIdx);
    this.completions++;
    this.observer?.completed(this, headIndex, writtenLen);
  }

  /**
   * The one place that decides whether the used entries published since the last call
   * deserve an interrupt: used_event with VIRTIO_F_RING_EVENT_IDX (§2.7.10), else the
   * driver's VRING_AVAIL_F_NO_INTERRUPT flag. Every call moves the "last signalled" mark,
   * so ask once per batch and raise the interrupt when it says true.
   */
  needsInterrupt(): boolean {
    if (!this.live) return false;
    const oldIdx = this.signalledUsedIdx;
    const newIdx = this.usedIdx;
    this.signalledUsedIdx = newIdx;
    if (oldIdx === newIdx) return false;
    if (this.eventIdx) {
      const usedEvent = this.memory.readU16(this.availRing + usedEventOffset(this.size));
      return vringNeedEvent(usedEvent, newIdx, oldIdx);
    }
    return (this.memory.readU16(this.availRing + RING_FLAGS) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Ask the driver for kicks again (the default). Returns true if chains are already
   * pending, so the caller can process them instead of waiting for a kick that may
   * never come.
   */
  enableNotifications(): boolean {
    this.notificationsEnabled = true;
    if (!this.live) return false;
    if (this.eventIdx) this.publishAvailEvent();
    else this.memory.writeU16(this.usedRing + RING_FLAGS, 0);
    return this.pending() > 0;
  }

  /** Tell the driver kicks are not needed (we will poll, e.g. while draining a batch). */
  disableNotifications(): void {
    this.notificationsEnabled = false;
    if (!this.live) return;
    // With EVENT_IDX, leaving avail_event behind lastAvailIdx already suppresses kicks.
    if (!this.eventIdx) this.memory.writeU16(this.usedRing + RING_FLAGS, VRING_USED_F_NO_NOTIFY);
  }

  /** With EVENT_IDX: "kick me when you make index lastAvailIdx available". */
  private publishAvailEvent(): void {
    if (this.eventIdx && this.notificationsEnabled) {
      this.memory.writeU16(this.usedRing + availEventOffset(this.size), this.lastAvailIdx);
    }
  }
}
