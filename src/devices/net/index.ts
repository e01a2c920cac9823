/** virtio-net as the lab plugs, shows and fuzzes it (see ../descriptor.ts). */
import type { DeviceDescriptor } from '../descriptor.ts';
import { netKickBudget } from './budget.ts';
import { netConfigFields, netControlFields, netDecoder } from './inspect.ts';
import { VirtioNet, type VirtioNetOptions } from './net.ts';
import { netState } from './state.ts';

/** A NIC to attach as virtio-net (eth0), over a FrameLink (e.g. a WebSocketFrameLink to the relay). */
export type NetLabOptions = Pick<
  VirtioNetOptions,
  'link' | 'mac' | 'onCapture' | 'onCaptureCopies' | 'mtu' | 'tso' | 'guestTso' | 'ctrlVq' | 'mergeableRxBuffers' | 'superSegments' | 'superSegmentsOut' | 'rxBacklogFrames' | 'rxBacklogBytes'
>;

export const netDevice: DeviceDescriptor<'net', NetLabOptions, VirtioNet> = {
  kind: 'net',
  name: 'virtio-net',
  queueNames: ['receiveq', 'transmitq', 'controlq'],
  // tx: the first kick of a burst is served at once (a ping never waits for the timer check),
  // the rest deferred (a burst costs two exits). rx: frames after the first of a burst wait
  // for the timer check, so they merge (large receive).
  create: (options, { defer, later, hold }) => options && new VirtioNet({ ...options, defer, later, rxHold: hold, txFirstKickAtOnce: true }),
  owns: (device): device is VirtioNet => device instanceof VirtioNet,
  // The config space, then what the driver set through the control queue.
  config: (device) => [...netConfigFields(device), ...netControlFields(device)],
  decoder: netDecoder,
  stats: (device) => ({ ...device.stats.toRecord(), ...device.control.stats.toRecord(), rxPromisc: device.control.filter.promisc ? 1 : 0, linkUp: device.linkUp ? 1 : 0, mtu: device.mtu }),
  // At the default queue size and backlog (budget.ts says how each number comes about); a
  // control-queue kick costs less (ctrl-budget.ts; bounded-work.ts checks both).
  kickBudget: (({ bytes, frames }) => ({ bytes, frames }))(netKickBudget(256)),
  state: netState,
  fuzzSubject: async () => (await import('./fuzz-subject.ts')).netSubject,
  fuzzProperties: async () => (await import('./properties.ts')).netProperties(),
};
