/**
 * What the inspector ships from the worker to the page: plain numbers, strings and arrays
 * only (structured-clone friendly, no bigint, no class instances), and bounded in size.
 */

/** A guest structure the snapshot could not read (bad address): shown, never thrown. */
export interface Unreadable {
  readonly unreadable: string;
}

/** One virtq_desc (§2.7.5), as read from the table. */
export interface DescRow {
  readonly index: number;
  readonly addr: number;
  readonly len: number;
  readonly flags: number;
  readonly next: number;
  /** Head of the chain it was reached from. */
  readonly head: number;
  /** An INDIRECT descriptor's table, expanded (capped). */
  readonly indirect?: readonly DescRow[] | Unreadable;
}

/** A chain reached from the avail ring or in flight, with the descriptor indices it walks. */
export interface ChainView {
  readonly head: number;
  /** 'pending': made available, not popped; 'in-flight': popped, not used; 'used': recently returned. */
  readonly state: 'pending' | 'in-flight' | 'used';
  readonly descriptors: readonly number[];
  /** The walk stopped early (cap, loop, bad index). */
  readonly truncated?: string;
}

export interface AvailView {
  readonly flags: number;
  readonly idx: number;
  /** used_event, when VIRTIO_F_RING_EVENT_IDX. */
  readonly usedEvent?: number;
  /** The newest entries published since the queue was enabled: `pos` is the free-running 16-bit index, slot = pos mod size. */
  readonly entries: readonly { readonly pos: number; readonly head: number }[];
}

export interface UsedView {
  readonly flags: number;
  readonly idx: number;
  /** avail_event, when VIRTIO_F_RING_EVENT_IDX. */
  readonly availEvent?: number;
  readonly entries: readonly { readonly pos: number; readonly id: number; readonly len: number }[];
}

/** How a packed ring slot reads against the positions and wrap counters (§2.8.1). */
export type PackedSlotState =
  /** AVAIL = the driver's wrap counter ≠ USED, in the run the device has not reached yet. */
  | 'available'
  /** Read by the device (between its used and its avail position), its buffer not returned yet. */
  | 'in-flight'
  /** A used descriptor the device wrote: AVAIL = USED = the Device Ring Wrap Counter of its lap. */
  | 'used'
  /** Anything else: a slot of a longer list the used position skipped, or never written. */
  | 'free';

/** One pvirtq_desc (§2.8.13) in the descriptor ring, classified. */
export interface PackedSlotRow {
  readonly slot: number;
  readonly addr: number;
  readonly len: number;
  /** Buffer ID: meaningful in the last descriptor of a list and in used descriptors (§2.8.6). */
  readonly id: number;
  readonly flags: number;
  readonly state: PackedSlotState;
  /** An INDIRECT descriptor's table (§2.8.7), expanded (capped); `next` is unused there. */
  readonly indirect?: readonly DescRow[] | Unreadable;
}

/** A pvirtq_event_suppress structure (§2.8.14), decoded. */
export interface EventSuppressView {
  /** The raw le16 flags; `mode` is its low 2 bits (§2.8.10). */
  readonly flags: number;
  readonly mode: 'ENABLE' | 'DISABLE' | 'DESC' | 'reserved';
  readonly offWrap: number;
  /** off_wrap bits 0–14: the ring slot DESC names; bit 15: the wrap counter it applies to. */
  readonly offset: number;
  readonly wrap: boolean;
}

/** The packed-only part of a queue snapshot: one ring both sides walk, and their positions. */
export interface PackedRingView {
  readonly layout: 'packed';
  readonly descRing: number;
  /** Driver Event Suppression (driver writes: "interrupt me…") and Device Event Suppression (device writes: "kick me…"). */
  readonly driverEventAddr: number;
  readonly deviceEventAddr: number;
  /** The device's positions and wrap counters (its own state, not in shared memory). */
  readonly device: { readonly nextAvail: number; readonly availWrap: boolean; readonly nextUsed: number; readonly usedWrap: boolean };
  /**
   * The driver's next slot and Driver Ring Wrap Counter, inferred from the flags (the end of
   * the available run); `exact` false when the run passed the scan cap.
   */
  readonly driver: { readonly nextAvail: number; readonly wrap: boolean; readonly exact: boolean };
  /** Ring slots available to the device, and held by buffers in flight. */
  readonly availableSlots: number;
  readonly inFlightSlots: number;
  /** Buffer IDs the device popped and has not used yet (ascending, capped). */
  readonly inFlightIds: readonly number[];
  /** The ring around the positions, in ring order from `rowsFrom` (capped). */
  readonly slots: readonly PackedSlotRow[];
  /** One letter per slot from `mapFrom` (wrapping): a available, f in flight, u used, · free. */
  readonly mapFrom: number;
  readonly map: string;
  readonly driverEvent: EventSuppressView | Unreadable;
  readonly deviceEvent: EventSuppressView | Unreadable;
}

export interface QueueSnapshot {
  readonly index: number;
  readonly name: string;
  readonly enabled: boolean;
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
  readonly eventIdx: boolean;
  /** The device's own position: next avail index it will consume. */
  readonly lastAvailIdx: number;
  /** avail.idx − last_avail_idx (mod 2^16): made available, not consumed yet. */
  readonly pending: number;
  readonly inFlight: number;
  readonly broken?: string;
  readonly avail: AvailView | Unreadable;
  readonly used: UsedView | Unreadable;
  readonly descriptors: readonly DescRow[];
  readonly chains: readonly ChainView[];
  readonly counters: {
    readonly kicks: number;
    readonly requests: number;
    readonly interrupts: number;
    readonly completions: number;
  };
  readonly frozen: boolean;
  /**
   * Present on a packed queue (VIRTIO_F_RING_PACKED): then `avail` and `used` are unreadable
   * (there are no such rings), `descriptors` is empty, `chains` name Buffer IDs and ring
   * slots, `lastAvailIdx` is the device's next avail slot and `pending` counts lists.
   */
  readonly packed?: PackedRingView;
}

export interface FeatureRow {
  readonly bit: number;
  readonly name: string;
  readonly offered: boolean;
  readonly accepted: boolean;
}

/** A decoded device config field (§5.x.4). */
export interface ConfigField {
  readonly name: string;
  readonly value: string;
  /** Spec section it comes from, e.g. "5.2.4". */
  readonly section: string;
}

/** 'status': device_status changed (fields.status: the new value; detail: its bit names). */
export type TimelineKind = 'kick' | 'pop' | 'complete' | 'interrupt' | 'config-interrupt' | 'reset' | 'error' | 'status';

export interface TimelineEvent {
  /** Increasing per function, so the page can append only what is new. */
  readonly seq: number;
  /** Worker clock (performance.now(), ms). */
  readonly t: number;
  readonly kind: TimelineKind;
  /** -1: not about one queue. */
  readonly queue: number;
  readonly head?: number;
  readonly len?: number;
  /** Decoded request or reason, one line. */
  readonly detail?: string;
  /** Structured decode for tests and filters, e.g. { type: 'IN', sector: 8 }. */
  readonly fields?: Readonly<Record<string, string | number>>;
}

export interface FunctionSnapshot {
  readonly name: string;
  /** The device's short name ("blk", "console"; `name` when it has none): tab labels, test ids. */
  readonly shortName: string;
  readonly deviceId: number;
  readonly status: number;
  readonly statusNames: readonly string[];
  readonly features: readonly FeatureRow[];
  readonly featuresOk: boolean;
  readonly bar: { readonly kind: 'io' | 'mem'; readonly size: number };
  /** Where the host placed the function (absent when the host cannot tell). */
  readonly pci?: { readonly slot: number; readonly irqLine: number; readonly bar0: number };
  readonly isr: number;
  readonly config: readonly ConfigField[];
  readonly queues: readonly QueueSnapshot[];
  readonly lastError?: string;
  readonly resets: number;
  /** Events since the previous snapshot of this function (the page keeps the history). */
  readonly events: readonly TimelineEvent[];
}

export interface InspectorSnapshot {
  /** Worker clock at the snapshot. */
  readonly now: number;
  readonly functions: readonly FunctionSnapshot[];
}
