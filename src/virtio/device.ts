/**
 * What a virtio device type (blk, net, rng …) implements, independent of the transport.
 * The PCI transport owns negotiation, queue setup and interrupts; a device only sees
 * negotiated features, live queues and a context to signal through.
 */
import type { GuestMemory } from './bus.ts';
import type { ConfigSpace } from './config-space.ts';
import type { Virtqueue } from './queue/virtqueue.ts';

export interface VirtioDevice {
  /** Short name for logs and the inspector ("virtio-rng"). */
  readonly name: string;
  /** §5 device id (DeviceId.*). */
  readonly deviceId: number;
  /**
   * Device-type feature bits the device offers. The transport adds VIRTIO_F_VERSION_1 and
   * the ring features it implements (INDIRECT_DESC, EVENT_IDX, and RING_PACKED when asked) itself.
   */
  readonly deviceFeatures: bigint;
  /** One entry per virtqueue: its maximum size (power of 2, ≤ 32768). */
  readonly queueMaxSizes: readonly number[];
  /** PCI class code (class << 16 | subclass << 8 | prog-if); default PciClass.OTHER. */
  readonly pciClass?: number;
  /**
   * The device-specific configuration (§4.1.4.6), if the type has one. The transport maps it
   * into BAR0 and does every driver access itself (bounds, widths, writable bytes); the
   * device fills it and hears about driver writes through the ConfigSpace's hooks.
   */
  readonly deviceConfig?: ConfigSpace;
  /**
   * The transport accepted the driver's features (FEATURES_OK, §3.1.1 step 5): the moment a
   * device sets config fields that depend on them (blk's writeback per §5.2.5). Optional.
   */
  featuresAccepted?(features: bigint): void;
  /** The driver set DRIVER_OK: queues are live. Keep `ctx`; it goes inert on reset. */
  activate(ctx: DeviceContext): void;
  /** The driver kicked queue `queueIndex` (only delivered while active). */
  notify(queueIndex: number): void;
  /** The driver reset the device: drop all queue state and in-flight work. */
  reset(): void;
}

/** Handed to a device on activation; every method becomes a no-op after a reset. */
export interface DeviceContext {
  readonly memory: GuestMemory;
  /** Features the driver accepted (FEATURES_OK). */
  readonly features: bigint;
  hasFeature(bit: number): boolean;
  /** The live queue at `index` (split or packed, as negotiated), or undefined if the driver did not enable it. */
  queue(index: number): Virtqueue | undefined;
  /**
   * Call after pushing a batch of used entries: raises the queue interrupt if the
   * queue's suppression rules (EVENT_IDX / NO_INTERRUPT) say so. Returns whether it did.
   */
  signalUsed(queue: Virtqueue): boolean;
  /** The device changed its config space: bump config_generation and interrupt. */
  configChanged(): void;
  /** Report a guest or device error found outside a kick (e.g. in async work). */
  fail(error: unknown): void;
}
