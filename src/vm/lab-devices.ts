/**
 * Which of our devices the lab's machine gets. One list for the worker and the Node runner.
 */
import type { PciBus } from '../virtio/bus.ts';

export interface LabDeviceOptions {
  /** A device saw the guest break the spec; it is now in DEVICE_NEEDS_RESET. */
  onDeviceError(device: string, reason: string): void;
}

export function plugLabDevices(_bus: PciBus, _opts: LabDeviceOptions): void {
  // Devices are added here as they land (virtio-rng first).
}
