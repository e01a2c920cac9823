/**
 * A device's own part of a function's saved state (VM snapshots). The transport saves and
 * restores everything it keeps (status, features, queues and the chains in flight); a
 * device type adds what only it knows (its config as the driver saw it, chains it holds,
 * bytes waiting for the guest) through these hooks, which its descriptor provides and the
 * lab hands to the function (VirtioPciOptions.deviceState).
 *
 * Restoring is two-phase so a bad state changes nothing: `restore` reads and checks the
 * state and claims the chains it holds, then returns the step that applies it, which the
 * transport runs only once everything (its own part included) checked out.
 */
import type { DeviceContext, VirtioDevice } from '../device.ts';
import type { DescriptorChain } from '../queue/descriptor-chain.ts';
import type { JsonValue, StateReader } from './state-reader.ts';

/** What the transport offers a device's restore. */
export interface DeviceRestoreHost {
  /**
   * The chain `id` that was in flight on queue `queueIndex` when the state was saved, re-read
   * from the restored guest memory; each may be taken once. Undefined when that queue is
   * broken (its chains are gone with it). Throws FunctionStateError when no such chain was in
   * flight. Every chain in flight on a live queue must be taken by someone.
   */
  takeChain(queueIndex: number, id: number): DescriptorChain | undefined;
  /**
   * Tell the driver the device configuration changed (config_generation, and the config
   * interrupt with DRIVER_OK), once the restore is complete: e.g. the disk now has another size.
   */
  configChanged(): void;
  /** Run `job` once the function is fully restored (host callbacks, which may use the queues). */
  whenRestored(job: () => void): void;
}

/** Applies a checked state; `ctx` is the device's context when it was active (DRIVER_OK) at the save. */
export type ApplyDeviceState = (ctx: DeviceContext | undefined) => void;

export interface DeviceStateHooks<Device extends VirtioDevice = VirtioDevice> {
  /** Why saving now would lose work (a deferred kick, a pass still to run), or undefined when quiet. */
  busy(device: Device): string | undefined;
  /**
   * Finish the work `busy` would name, now: the emulator is stopped, so nothing the guest
   * does can add to it. May complete chains and raise interrupts (before v86's state is saved).
   */
  quiesce(device: Device): void | Promise<void>;
  /** The device's state as JSON (only when not busy). */
  save(device: Device): JsonValue;
  /**
   * Check `state` against this device (built with the same options) and claim its chains;
   * throw FunctionStateError for anything wrong, changing nothing. The returned step applies
   * it to the device, which has just been activated with `ctx` if it was active; it must not throw.
   */
  restore(device: Device, state: StateReader, host: DeviceRestoreHost): ApplyDeviceState;
}
