/**
 * Saving and restoring the lab's whole set of virtio functions for a VM snapshot, beside
 * v86's own state. With the emulator stopped:
 *
 *   await quiesceLabDevices(devices);          // may complete chains and raise interrupts…
 *   const ours = saveLabDevices(devices);      // …so both saves come after it, in one go
 *   const theirs = v86.save_state();
 *
 * and on a fresh machine (same devices and options; the NIC's MAC and the disk's size may
 * differ), after v86 restored its state (RAM, and the PIRQ routing a raised line follows) and
 * before the CPU runs: `restoreLabDevices(devices, ours)`. A function whose ISR was set raises
 * its line again (with memory BARs the adapter raises it a microtask later). Counters restart
 * from zero.
 * The state is JSON (see virtio/pci/function-state.ts); a bad or foreign one throws
 * FunctionStateError before any function changes.
 */
import { FUNCTION_STATE_FORMAT, type FunctionState } from '../virtio/pci/function-state.ts';
import { FunctionStateError, StateReader } from '../virtio/state/state-reader.ts';
import { netDevice } from '../devices/net/index.ts';
import type { LabDevices } from './lab-devices.ts';

export const LAB_DEVICES_STATE_FORMAT = 'virtio-lab-devices';
export const LAB_DEVICES_STATE_VERSION = 1;
/** More functions than the PCI bus has slots is not a lab's state. */
const MAX_FUNCTIONS = 32;

export type LabDevicesState = {
  readonly format: typeof LAB_DEVICES_STATE_FORMAT;
  readonly version: typeof LAB_DEVICES_STATE_VERSION;
  /** One per plugged function, in slot order. */
  readonly functions: readonly FunctionState[];
};

/** Finish every function's outstanding work (see VirtioPciFunction.quiesce). */
export async function quiesceLabDevices(devices: LabDevices): Promise<void> {
  for (const fn of devices.all) await fn.quiesce();
}

/** Every plugged function's state, in slot order. Throws FunctionStateError if one is not quiesced. */
export function saveLabDevices(devices: LabDevices): LabDevicesState {
  return { format: LAB_DEVICES_STATE_FORMAT, version: LAB_DEVICES_STATE_VERSION, functions: devices.all.map((fn) => fn.saveState()) };
}

/**
 * Continue every function from `state` (untrusted). The same functions must be plugged in the
 * same order; every function's state is checked before any of them changes.
 */
export function restoreLabDevices(devices: LabDevices, state: LabDevicesState): void {
  const r = StateReader.root(state, 'lab devices');
  r.at('format').literal(LAB_DEVICES_STATE_FORMAT);
  if (r.at('version').int(0, 0xffffffff) !== LAB_DEVICES_STATE_VERSION) r.at('version').fail(`version ${LAB_DEVICES_STATE_VERSION} is the only one known`);
  const saved = r.at('functions').items(MAX_FUNCTIONS);
  const savedNames = saved.map((f) => {
    f.at('format').literal(FUNCTION_STATE_FORMAT);
    return f.at('name').string(100);
  });
  const names = devices.all.map((fn) => fn.name);
  if (savedNames.length !== names.length || savedNames.some((name, i) => name !== names[i])) {
    throw new FunctionStateError(`lab devices: saved with [${savedNames.join(', ')}] in slot order, this machine has [${names.join(', ')}]`);
  }
  const apply = devices.all.map((fn, i) => fn.prepareRestore(saved[i]!.raw as FunctionState));
  for (const step of apply) step();
}

/**
 * After restoreLabDevices: the guest wakes up in another tab, on another relay port, so its NIC
 * asks it to announce itself (§5.1.6.5.4: with GUEST_ANNOUNCE negotiated, ANNOUNCE and a config
 * interrupt; Linux answers with gratuitous ARPs, which the relay's switch learns from, and an
 * ANNOUNCE_ACK). Apart from the restore itself, so that a restored state saves back as it was.
 * Returns whether the NIC asked.
 */
export function announceRestoredGuest(devices: LabDevices): boolean {
  const device = devices.net?.device;
  return device !== undefined && netDevice.owns(device) && device.requestAnnounce();
}
