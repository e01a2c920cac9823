/**
 * Every device type the lab has, in PCI slot order: virtio indices follow it, and the rng
 * stays first because tooling finds it at virtio0. A device is its folder (whose index.ts
 * exports a DeviceDescriptor) plus one line here; the lab's options, plugging, stats, the
 * inspector and the transport fuzzer all loop over this list.
 */
import type { VirtioDevice } from '../virtio/device.ts';
import { blkDevice } from './blk/index.ts';
import { consoleDevice } from './console/index.ts';
import type { DeviceDescriptor, DeviceOptionsOf } from './descriptor.ts';
import { netDevice } from './net/index.ts';
import { rngDevice } from './rng/index.ts';

export const deviceRegistry = [rngDevice, blkDevice, netDevice, consoleDevice] as const;

export type RegisteredDevice = (typeof deviceRegistry)[number];
/** "rng" | "blk" | "net" … */
export type DeviceKind = RegisteredDevice['kind'];
/** Each registered device's lab options under its kind (absent: not attached). */
export type DeviceOptionsByKind = { [D in RegisteredDevice as D['kind']]?: DeviceOptionsOf<D> };

/** The registry with one element type, for code that treats every device alike. */
export const registeredDevices: readonly DeviceDescriptor[] = deviceRegistry;

/** The descriptor of a function's device, if it is a registered type. */
export function descriptorFor(device: VirtioDevice): DeviceDescriptor | undefined {
  return registeredDevices.find((d) => d.owns(device));
}
