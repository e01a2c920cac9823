/** How the inspector shows a device, from its descriptor: queue names, decoded config, request decoder. */
import type { VirtioDevice } from '../virtio/device.ts';
import type { FunctionView } from '../virtio/inspect/function-snapshot.ts';
import type { RequestDecoder } from '../virtio/inspect/timeline.ts';
import type { DeviceDescriptor } from './descriptor.ts';

export interface InspectorView {
  view: FunctionView;
  decoder: RequestDecoder;
}

/** A device the inspector has no descriptor for: generic queue names, no config, no decoding. */
export const UNKNOWN_DEVICE_VIEW: InspectorView = { view: {}, decoder: {} };

export function inspectorView<Device extends VirtioDevice>(descriptor: DeviceDescriptor<string, never, Device>, device: Device): InspectorView {
  return { view: { shortName: descriptor.kind, featureBits: descriptor.featureBits, queueNames: descriptor.queueNames, config: () => descriptor.config(device) }, decoder: typeof descriptor.decoder === 'function' ? descriptor.decoder() : descriptor.decoder };
}
