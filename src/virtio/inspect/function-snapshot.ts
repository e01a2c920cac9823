/** A whole virtio-pci function for the inspector: transport state, features, config, queues. */
import { featureNames, hasFeature, statusNames, DeviceStatus } from '../constants.ts';
import type { VirtioPciFunction } from '../pci/virtio-pci-function.ts';
import { DEFAULT_LIMITS, disabledQueue, snapshotQueue, type QueueSnapshotLimits } from './queue-snapshot.ts';
import { snapshotPackedQueue } from './packed-snapshot.ts';
import { SplitQueue } from '../queue/split-queue.ts';
import { PackedQueue } from '../queue/packed-queue.ts';
import type { ConfigField, FeatureRow, FunctionSnapshot, TimelineEvent } from './types.ts';

export interface FunctionView {
  /** The device's short name ("blk"), for tabs and test ids. */
  shortName?: string;
  /** Its device-specific feature bits by name, when virtio/constants.ts has no table for it. */
  featureBits?: Readonly<Record<string, number>>;
  /** Queue names by index ("requestq", "receiveq"…). */
  queueNames?: readonly string[];
  /** The device's config space, decoded. */
  config?: () => ConfigField[];
  limits?: QueueSnapshotLimits;
}

export function featureRows(fn: VirtioPciFunction, featureBits?: Readonly<Record<string, number>>): FeatureRow[] {
  const deviceNames = featureBits && new Map(Object.entries(featureBits).map(([name, bit]) => [bit, name]));
  const offered = fn.offeredFeatures;
  const accepted = fn.negotiatedFeatures;
  const rows: FeatureRow[] = [];
  for (let bit = 0; bit < 64; bit++) {
    const o = hasFeature(offered, bit);
    const a = hasFeature(accepted, bit);
    if (!o && !a) continue;
    const name = deviceNames?.get(bit) ?? featureNames(1n << BigInt(bit), fn.device.deviceId)[0] ?? `bit ${bit}`;
    rows.push({ bit, name, offered: o, accepted: a });
  }
  return rows;
}

export function snapshotFunction(fn: VirtioPciFunction, view: FunctionView = {}, events: TimelineEvent[] = []): FunctionSnapshot {
  const queues = [];
  for (let i = 0; i < fn.numQueues; i++) {
    const name = view.queueNames?.[i] ?? `queue ${i}`;
    const counters = fn.queueCounters[i]!;
    const q = fn.queue(i);
    if (q instanceof SplitQueue) queues.push(snapshotQueue(q, name, counters, view.limits ?? DEFAULT_LIMITS));
    else if (q instanceof PackedQueue) queues.push(snapshotPackedQueue(q, name, counters, view.limits ?? DEFAULT_LIMITS));
    else queues.push(disabledQueue(i, name, counters, fn.gates[i]!.frozen));
  }
  let config: ConfigField[] = [];
  try {
    config = view.config?.() ?? [];
  } catch (error) {
    config = [{ name: 'config', value: `unreadable: ${error instanceof Error ? error.message : String(error)}`, section: '' }];
  }
  const bar = fn.bars[0]!;
  const snap: FunctionSnapshot = {
    name: fn.name,
    shortName: view.shortName ?? fn.name,
    deviceId: fn.device.deviceId,
    status: fn.deviceStatus,
    statusNames: statusNames(fn.deviceStatus),
    features: featureRows(fn, view.featureBits),
    featuresOk: (fn.deviceStatus & DeviceStatus.FEATURES_OK) !== 0,
    bar: { kind: bar.kind, size: bar.size },
    isr: fn.isrStatus,
    config,
    queues,
    resets: fn.stats.resets,
    events,
  };
  let pci: FunctionSnapshot['pci'];
  try {
    pci = fn.location();
  } catch {
    pci = undefined; // a host that cannot tell: show nothing rather than fail the snapshot
  }
  const placed = pci ? { ...snap, pci } : snap;
  return fn.lastError === undefined ? placed : { ...placed, lastError: fn.lastError };
}
