/**
 * The driver mock's queue, whichever layout was negotiated: what the layout-neutral
 * properties (ring traffic, bounded work) drive. DriverQueue writes split rings (§2.7),
 * PackedDriverQueue packed ones (§2.8); each re-implements its driver side independently of
 * the device's queue engine, so the two check each other.
 */
import type { RingLayout } from '../queue/virtqueue.ts';
import type { Region } from '../queue/descriptor-chain.ts';

export interface ChainSpec {
  /** Driver-readable buffers (device reads them), in order. */
  readable?: Uint8Array[];
  /** Lengths of device-writable buffers, in order. */
  writable?: number[];
  /** Put the chain in an indirect table (needs VIRTIO_F_RING_INDIRECT_DESC). */
  indirect?: boolean;
  /**
   * Descriptor order, true = the next writable buffer, false = the next readable one (the
   * rest follow in the usual order). Lets a test build the layouts §2.7.4.2 / §2.8.17 forbid,
   * a readable buffer after a writable one.
   */
  order?: readonly boolean[];
}

/** One buffer descriptor as the adversarial builders write it. */
export interface RawBuffer {
  addr: number;
  len: number;
  /** VIRTQ_DESC_F_WRITE (device-writable). */
  write?: boolean;
}

/** Aliased buffers: `count` descriptors over the same guest bytes [addr, +len). */
export interface AliasedSpec {
  count: number;
  addr: number;
  len: number;
  /** Where the device-writable ones point instead (default `addr`), e.g. away from a header. */
  writeAddr?: number;
  /** Length of the driver-readable ones instead (default `len`), e.g. a request header's. */
  readLen?: number;
  /** How many of them (the first) are driver-readable; the rest are device-writable. */
  readable: number;
  /** In an indirect table (one ring descriptor) rather than the ring's own. */
  indirect?: boolean;
}

export interface Submitted {
  /** The id the device echoes: split, the head descriptor; packed, the Buffer ID. */
  head: number;
  writable: Region[];
}

export interface UsedElement {
  head: number;
  len: number;
  /** The first `len` bytes of the chain's writable buffers. */
  data: Uint8Array;
}

export interface DriverRing {
  readonly layout: RingLayout;
  readonly index: number;
  readonly size: number;
  /** Notify register writes so far. */
  readonly notifies: number;
  /** Chains made available and not seen used yet. */
  readonly inFlight: number;
  /** Ring descriptors (split: table entries; packed: ring slots) free for new chains. */
  readonly freeDescriptors: number;
  /** Make a chain available (not kicked yet). */
  add(spec: ChainSpec): Submitted;
  /** Notify if the device's suppression asks for it; returns whether it did. */
  kick(): boolean;
  /** Write the notify register unconditionally. */
  notify(): void;
  /** New used buffers since the last call; their descriptors and ids become free. */
  used(): UsedElement[];
  /** "Interrupt me for the next used buffer", as Linux's virtqueue_enable_cb does. */
  armInterrupt(): void;
  /** Guest RAM the device may write besides the chains' writable buffers: [lo, hi) pairs. */
  deviceWritableAreas(): Array<[number, number]>;

  // Adversarial builders (bounded-work properties): a hostile driver's chains, well-formed
  // enough to reach the walk's budget checks.
  /** Write `buffers` as one table (in fresh buffer memory unless `table`); returns its address. */
  writeTable(buffers: readonly RawBuffer[], table?: number): number;
  /** One ring descriptor pointing at an indirect table of `entries` entries at `table`. */
  addIndirectAt(table: number, entries: number, writable?: Region[]): Submitted;
  /** An indirect table of `entries` descriptors over [addr, +len), really laid out. */
  addHugeIndirect(entries: number, addr: number, len: number): Submitted;
  /** `chains` ring descriptors pointing at the same indirect table. */
  addSharedIndirect(table: number, entries: number, chains: number): Submitted[];
  addAliased(spec: AliasedSpec): Submitted;
  /**
   * `direct` ring descriptors then one pointing at an indirect table of `indirect` entries
   * (0: none), each over [addr, +len), driver-readable. Split allows the mix (§2.7.5.3.1);
   * packed forbids INDIRECT in a NEXT list (§2.8.19), so there a mix is a violation.
   */
  addLong(direct: number, indirect: number, addr: number, len: number): Submitted;
}
