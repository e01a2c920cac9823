/**
 * What a device sees of a virtqueue, whichever layout the driver negotiated: split (§2.7,
 * SplitQueue) or packed (§2.8, PackedQueue, with VIRTIO_F_RING_PACKED). A device pops
 * validated chains, pushes them back used with the id it was given, and asks the transport
 * to signal; it never knows which layout it serves.
 */
import type { GuestMemory } from '../bus.ts';
import type { DescriptorChain } from './descriptor-chain.ts';
import type { VirtqueueError } from './errors.ts';
import type { QueueEngineState } from './queue-state.ts';

export type RingLayout = 'split' | 'packed';

/** Split-ring indices for the inspector and for snapshots. */
export interface SplitQueueState {
  readonly layout: 'split';
  readonly size: number;
  /** Next avail ring index the device will consume. */
  readonly lastAvailIdx: number;
  /** Next used ring index the device will fill (= used->idx it has published). */
  readonly usedIdx: number;
  /** used->idx at the last interrupt decision. */
  readonly signalledUsedIdx: number;
  /** Chains popped but not yet pushed back. */
  readonly inFlight: number;
  readonly broken: string | undefined;
}

/**
 * Packed-ring positions for the inspector and for snapshots (§2.8.1): where the device reads
 * the next available descriptor and writes the next used one, each with its wrap counter.
 */
export interface PackedQueueState {
  readonly layout: 'packed';
  readonly size: number;
  /** Ring slot of the next descriptor the device will check for AVAIL. */
  readonly nextAvail: number;
  /** The wrap counter an available descriptor at `nextAvail` carries in AVAIL (and not in USED). */
  readonly availWrap: boolean;
  /** Ring slot the next used descriptor goes to. */
  readonly nextUsed: number;
  /** Device Ring Wrap Counter: AVAIL and USED of the next used descriptor. */
  readonly usedWrap: boolean;
  /** Descriptors used since the last interrupt decision. */
  readonly usedSinceSignal: number;
  /** Chains (buffer ids) popped but not yet pushed back. */
  readonly inFlight: number;
  /** Ring slots those chains occupy: always (nextAvail − nextUsed) around the ring. */
  readonly inFlightDescriptors: number;
  /** What the device last published in its event suppression structure. */
  readonly deviceEvent: { readonly flags: number; readonly offWrap: number } | undefined;
  readonly broken: string | undefined;
}

export type VirtqueueState = SplitQueueState | PackedQueueState;

/**
 * Watches a queue for the inspector. Only set while someone looks: the hot path pays one
 * `undefined` check per pop and per push otherwise.
 */
export interface QueueObserver {
  popped(queue: Virtqueue, chain: DescriptorChain): void;
  completed(queue: Virtqueue, id: number, writtenLen: number): void;
}

/**
 * Freeze and step (the inspector's): while `frozen`, pop() hands out only `credits` more
 * chains, as if the ring were empty, so the driver's view grows and the device's does not.
 * Owned by the transport, so it outlives a queue rebuilt after reset.
 */
export interface QueueGate {
  frozen: boolean;
  credits: number;
}

export interface Virtqueue {
  readonly layout: RingLayout;
  /** Queue index within the device, for error messages. */
  readonly index: number;
  readonly size: number;
  readonly memory: GuestMemory;
  /** VIRTIO_F_RING_EVENT_IDX negotiated. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_RING_INDIRECT_DESC negotiated. */
  readonly indirectDesc: boolean;
  /** The violation that broke the queue, if any: pop() returns null from then on. */
  readonly broken: VirtqueueError | undefined;
  /** True while the queue may still be used (not broken, not detached by a reset). */
  readonly live: boolean;
  /** Chains popped and chains pushed used since the queue was enabled. */
  readonly requests: number;
  readonly completions: number;
  /** Descriptors read and Region objects built by the ring walk (the bounded-work meter). */
  readonly descriptorsVisited: number;
  readonly regionsAllocated: number;
  observer: QueueObserver | undefined;
  gate: QueueGate | undefined;

  /** Stop touching guest memory for good (device reset: the rings may be reused for anything). */
  detach(): void;
  /** Chains the driver has made available that pop() has not returned yet (gate included). */
  pending(): number;
  /** Next available chain, or null when there is none (or the queue is not live). */
  pop(): DescriptorChain | null;
  /**
   * Return a chain to the driver: `id` is the chain's `headIndex` (split: head descriptor;
   * packed: Buffer ID), `writtenLen` the bytes written into its writable buffers. A chain not
   * in flight or a length beyond its capacity is a device bug and throws.
   */
  pushUsed(id: number, writtenLen: number): void;
  /**
   * Whether the used buffers published since the last call deserve an interrupt, per the
   * driver's suppression (split: used_event / NO_INTERRUPT; packed: driver event suppression).
   * Every call moves the "last signalled" mark: ask once per batch.
   */
  needsInterrupt(): boolean;
  /** Ask the driver for kicks again; true if chains are already waiting. */
  enableNotifications(): boolean;
  /** Tell the driver kicks are not needed (the device will poll). */
  disableNotifications(): void;
  /** Ids of the chains popped and not pushed used yet, ascending. */
  inFlightIds(): number[];
  state(): VirtqueueState;
  /** What a VM snapshot keeps of this engine (JSON); the concrete class restores it. */
  saveState(): QueueEngineState;
}
