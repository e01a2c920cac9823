/**
 * What must hold after anything a guest does to a virtio-pci function, shared by every
 * fuzz property (virtio core, transport, devices): checked after each step, they name the
 * first step that broke the device rather than a symptom much later.
 */
import type fc from 'fast-check';
import { DeviceStatus, Feature, hasFeature } from '../constants.ts';
import { snapshotFunction, type FunctionView } from '../inspect/function-snapshot.ts';
import { DEFAULT_LIMITS } from '../inspect/queue-snapshot.ts';
import { PACKED_LIMITS } from '../inspect/packed-snapshot.ts';
import type { Timeline } from '../inspect/timeline.ts';
import type { DriverMock } from './driver-mock.ts';

/** A fuzz campaign's unit: one fast-check property under a stable name. */
export interface NamedProperty {
  readonly name: string;
  readonly property: fc.IProperty<any>;
  /** What the cases reached (paths, states, drop reasons), for the campaign's report. */
  readonly coverage?: Map<string, number>;
}

/** Count one more `key` in a coverage map. */
export function bump(coverage: Map<string, number>, key: string, n = 1): void {
  coverage.set(key, (coverage.get(key) ?? 0) + n);
}

export function fail(message: string): never {
  throw new Error(message);
}

/** Errors reported since the device was last reset (by any means). */
export function errorsSinceReset(t: DriverMock): number {
  return t.errorResets.filter((r) => r === t.fn.stats.resets).length;
}

/** Invariants that must hold after anything the guest does. */
export function checkInvariants(t: DriverMock): void {
  if (t.memory.rejected.length > 0) {
    const r = t.memory.rejected[0];
    fail(`device touched memory outside RAM: ${r.op} [0x${r.addr.toString(16)}, +${r.len})`);
  }
  if (t.irq.level !== (t.fn.isrStatus !== 0)) {
    fail(`irq level ${t.irq.level} but ISR 0x${t.fn.isrStatus.toString(16)}`);
  }
  const status = t.fn.deviceStatus;
  if (status & DeviceStatus.FEATURES_OK) {
    const f = t.fn.negotiatedFeatures;
    if ((f & ~t.fn.offeredFeatures) !== 0n || !hasFeature(f, Feature.VIRTIO_F_VERSION_1)) {
      fail(`FEATURES_OK with unacceptable features 0x${f.toString(16)}`);
    }
  }
  if (errorsSinceReset(t) > 0 && !(status & DeviceStatus.DEVICE_NEEDS_RESET)) {
    fail(`error "${t.errors.at(-1)}" but no DEVICE_NEEDS_RESET`);
  }
}

/** A reason with its numbers masked, so reasons group by kind. */
export function maskNumbers(reason: string): string {
  return reason.replace(/0x[0-9a-f_]+|\d+/g, 'N');
}

/**
 * Count the error reasons a case provoked (numbers masked), so a campaign can show it
 * reached the validation paths rather than bouncing off the first check.
 */
export function recordReasons(t: DriverMock, coverage: Map<string, number>): void {
  for (const reason of t.errors) bump(coverage, `error: ${maskNumbers(reason)}`);
}

/**
 * The inspector reads whatever the guest wrote (rings, descriptor tables, buffers): its
 * snapshot and its decoded timeline must come out whole, without touching memory outside
 * RAM and without a decoder failing on the guest's bytes.
 */
export function checkInspector(t: DriverMock, view: FunctionView = {}, timeline?: Timeline): void {
  const snap = snapshotFunction(t.fn, view, timeline?.takeNew() ?? []);
  const json = JSON.stringify(snap);
  for (const q of snap.queues) {
    const limits = view.limits ?? DEFAULT_LIMITS;
    if (q.descriptors.length > limits.descriptors || q.chains.length > limits.chains) fail(`queue ${q.index} snapshot over its limits`);
    const packed = q.packed;
    if (packed) {
      if (packed.slots.length > limits.descriptors || packed.map.length > PACKED_LIMITS.map || packed.inFlightIds.length > PACKED_LIMITS.ids) {
        fail(`queue ${q.index} packed snapshot over its limits`);
      }
    }
  }
  if (json.includes('decode failed')) fail(`an inspector decoder failed: ${/decode failed[^"]*/.exec(json)?.[0]}`);
  if (t.memory.rejected.length > 0) fail('the inspector touched memory outside RAM');
}
