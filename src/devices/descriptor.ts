/**
 * A device type as the lab knows it. Each device folder exports one descriptor from its
 * `index.ts`, and `registry.ts` lists them in PCI slot order: creating the device from the
 * lab's options, its counters in `status()`, what the inspector shows of it and the transport
 * fuzzer's subject all come from here, so a new device is its folder plus one registry line.
 */
import type { VirtioDevice } from '../virtio/device.ts';
import type { DeviceStateHooks } from '../virtio/state/device-state.ts';
import type { RequestDecoder } from '../virtio/inspect/timeline.ts';
import type { ConfigField } from '../virtio/inspect/types.ts';
// Type only (erased): the subject's code is loaded by fuzzSubject(), never by the page.
import type { TransportSubject } from '../virtio/testing/transport-properties.ts';
import type { NamedProperty } from '../virtio/testing/invariants.ts';

/** What the lab hands every device it creates, besides the device's own options. */
export interface DeviceEnvironment {
  /**
   * Where to serve kicks later (at the guest's next HLT or the end of the emulator's slice),
   * so a burst of kicks costs one pass; undefined: serve inside the notify write.
   */
  readonly defer?: (job: () => void) => void;
  /**
   * Where a device continues work that spent its per-pass budget (README, Reliability): after
   * the emulator has run again (a macrotask), so one kick never holds the worker for longer
   * than a pass. Undefined: `defer`, else a microtask.
   */
  readonly later?: (job: () => void) => void;
  /** Where work waits for the emulator's next timer check or, if it sleeps, the next task (DrainPoint.hold). */
  readonly hold?: (job: () => void) => void;
}

/** Per-kick work limits a device states (see DeviceDescriptor.kickBudget). */
export interface KickBudget {
  /** Guest RAM bytes read or written by the device (views count whole). */
  readonly bytes: number;
  /** Frames handed to the network (net only). */
  readonly frames?: number;
}

/** A device's state in and out of a VM snapshot: virtio/state/device-state.ts. */
export type { DeviceStateHooks } from '../virtio/state/device-state.ts';

/**
 * `Kind` is the short name ("blk"): the key of the device's options in `LabDeviceOptions`
 * and of its function in `LabDevices`. `Options` is what the lab passes to create it.
 * Methods, not function properties, so any descriptor is a `DeviceDescriptor` (the registry's
 * element type) while each folder keeps its own device and option types.
 */
export interface DeviceDescriptor<Kind extends string = string, Options = unknown, Device extends VirtioDevice = VirtioDevice> {
  readonly kind: Kind;
  /** The function's name, `device.name` ("virtio-blk"): the key of its `status().devices` entry. */
  readonly name: string;
  /** Queue names by index, as the spec names them ("requestq"; "receiveq", "transmitq"). */
  readonly queueNames: readonly string[];
  /**
   * The device for the lab's `options[kind]`. Undefined options mean "not attached": return
   * undefined, unless the device is always there (rng, which then uses its defaults).
   */
  create(options: Options | undefined, env: DeviceEnvironment): Device | undefined;
  /** Whether a function's device is of this type (how stats and the inspector find the descriptor). */
  owns(device: VirtioDevice): device is Device;
  /** Its device-specific feature bits by name (§5.x.3), for the inspector; absent: virtio/constants.ts's table or "bit N". */
  readonly featureBits?: Readonly<Record<string, number>>;
  /** The device's config space decoded for the inspector (§5.x.4). Read-only, never throws. */
  config(device: Device): ConfigField[];
  /** Its requests decoded for the inspector's timeline (§5.x.6); a function when the decoder keeps state, for a fresh one per device. */
  readonly decoder: RequestDecoder | (() => RequestDecoder);
  /** `DeviceStats.extra`: device-specific counters. Public API: keys are never renamed. */
  stats(device: Device): Record<string, number>;
  /**
   * The most host work one kick on any of this device's queues may cause, beyond the queue
   * engine's own ring walk (README, Reliability): bytes of guest RAM the device touches and,
   * where it applies, frames it emits. The bounded-work fuzz property holds the device to it.
   */
  readonly kickBudget?: KickBudget;
  /** Save/restore for VM snapshots: the lab hands it to the device's function (VirtioPciOptions.deviceState). */
  readonly state?: DeviceStateHooks<Device>;
  /**
   * The device as a subject of the transport fuzzer (virtio/testing/transport-properties.ts).
   * Loaded on demand (`() => import('./fuzz-subject.ts')…`): it pulls DriverMock and test
   * backends, which must stay out of the page's bundle.
   */
  fuzzSubject(): Promise<TransportSubject>;
  /**
   * The device's own fuzz campaign (`npm run fuzz -- --only <kind>`): properties of its
   * request parsing, loaded on demand like the subject. Absent: the transport campaign only.
   */
  fuzzProperties?(): Promise<NamedProperty[]>;
}

/** The options type a descriptor's `create` takes. */
export type DeviceOptionsOf<D> = D extends DeviceDescriptor<string, infer Options, VirtioDevice> ? Options : never;
/** The device type a descriptor creates. */
export type DeviceOf<D> = D extends DeviceDescriptor<string, unknown, infer Device> ? Device : never;
