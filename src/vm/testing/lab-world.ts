/**
 * The lab's whole set of functions (every registered device, as plugLabDevices builds them)
 * with a mock driver on each and the host ends a worker would hold (the network's far end,
 * the console's ports, the disk), driven by random traffic: what the device-state fuzz
 * campaign takes valid states from and what a restored set must keep working against.
 *
 * Traffic is honest where a device has a protocol (blk requests, frames from the network,
 * console control messages and host writes) and loose elsewhere (raw chains on any queue,
 * garbage over a ring, partial bring-ups, resets), so saved states cover every status,
 * in-flight chains, held rx buffers, backlogs and broken queues, on split and packed rings.
 */
import fc from 'fast-check';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { memoryLinkPair, type MemoryFrameLink } from '../../backends/memory-frame-link.ts';
import { blkDevice } from '../../devices/blk/index.ts';
import { BlkConfigOffset } from '../../devices/blk/config.ts';
import { VirtioBlkReqType as T } from '../../devices/blk/spec.ts';
import { outhdr } from '../../devices/blk/testing.ts';
import { consoleDevice } from '../../devices/console/index.ts';
import { encodeControl } from '../../devices/console/control.ts';
import { CONTROL_TRANSMITQ } from '../../devices/console/spec.ts';
import { RUN_PORT } from '../../devices/console/testing.ts';
import { manualDefer } from '../../devices/testing/manual-defer.ts';
import { netDevice } from '../../devices/net/index.ts';
import { NET_RECEIVEQ } from '../../devices/net/spec.ts';
import { GUEST_MAC, PEER_MAC, ethernet } from '../../devices/net/testing.ts';
import { descriptorFor, registeredDevices } from '../../devices/registry.ts';
import type { PciBus } from '../../virtio/bus.ts';
import { DeviceStatus, Feature, hasFeature } from '../../virtio/constants.ts';
import type { VirtioPciFunction } from '../../virtio/pci/virtio-pci-function.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { DriverMock, DriverQueue } from '../../virtio/testing/driver-mock.ts';
import { PackedDriverQueue } from '../../virtio/testing/packed-driver-queue.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import { TestIrq } from '../../virtio/testing/test-irq.ts';
import { plugLabDevices, type LabDevices } from '../lab-devices.ts';

/**
 * Guest RAM per function: the driver mock's rings take the first quarter (every queue of
 * every device fits), buffers the rest. Small, since every case copies it a few times.
 */
export const LAB_RAM = 1 << 18;
const DISK_BYTES = 64 * 512;
const FUNCTIONS = registeredDevices.length;

export interface LabWorld {
  readonly ring: RingLayout;
  readonly devices: LabDevices;
  /** One driver per function, in slot order. */
  readonly drivers: DriverMock[];
  /** The network's far end: frames sent here reach the NIC. */
  readonly peer: MemoryFrameLink;
  readonly disk: MemoryBlockBackend;
  /** Run the deferred kicks and passes (the end of the emulator's slice). */
  readonly settle: () => void;
  /** Queues ("fn:queue") whose rings got garbage: the mock can no longer read their used side. */
  readonly tainted: Set<string>;
}

/** Every function on a throwaway attachment: each driver mock connects it to its own RAM. */
const placeholderBus: PciBus = { attach: () => ({ memory: new ArrayMemory(16), irq: new TestIrq() }) };

/** The set of functions a lab with every registered device plugs, with fresh host ends. */
function plug(ring: RingLayout, disk: MemoryBlockBackend, linkUp: boolean): Omit<LabWorld, 'drivers' | 'tainted'> {
  const { defer, settle } = manualDefer();
  const [near, peer] = memoryLinkPair({ up: linkUp });
  peer.attach({ onFrame: () => {}, onLinkChange: () => {} });
  const devices = plugLabDevices(placeholderBus, {
    onDeviceError() {},
    ring,
    defer,
    later: defer,
    blk: { backend: disk, name: 'fuzz' },
    // A small backlog, so frames wait and get dropped within a short case.
    net: { link: near, mac: '02:00:00:00:aa:bb', rxBacklogFrames: 3, rxBacklogBytes: 4000 },
    console: { ports: [RUN_PORT] },
  });
  if (devices.all.length !== FUNCTIONS) {
    fail(`the lab plugged ${devices.all.length} of ${FUNCTIONS} registered devices: give the new one options in lab-world.ts`);
  }
  for (const fn of devices.all) {
    if (consoleDevice.owns(fn.device)) for (const port of fn.device.ports) port.onData = port.onOpen = () => {};
  }
  return { ring, devices, peer, disk, settle };
}

/** How far a function's driver got before the traffic: nowhere, partway, or DRIVER_OK. */
export type BringUp = { readonly stage: 'none' | 'acknowledged' | 'features' | 'running'; readonly drop: readonly number[]; readonly queues: number };

export const bringUpArb: fc.Arbitrary<BringUp> = fc.record({
  stage: fc.oneof(
    { weight: 12, arbitrary: fc.constant('running' as const) },
    { weight: 1, arbitrary: fc.constantFrom('none' as const, 'acknowledged' as const, 'features' as const) },
  ),
  /** Offered feature bits to leave out (indices into the offered list; VERSION_1 always stays). */
  drop: fc.array(fc.nat(), { maxLength: 3 }),
  /** Queues set up at the 'features' stage. */
  queues: fc.nat(8),
});

function bringUp(t: DriverMock, how: BringUp): void {
  if (how.stage === 'none') return;
  const offered = t.deviceFeatures();
  const bits: number[] = [];
  for (let bit = 0; bit < 64; bit++) if (bit !== Feature.VIRTIO_F_VERSION_1 && hasFeature(offered, bit)) bits.push(bit);
  let features = offered;
  for (const pick of how.drop) if (bits.length) features &= ~(1n << BigInt(bits[pick % bits.length]!));
  if (how.stage === 'acknowledged') {
    t.reset();
    t.status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER;
    t.writeDriverFeatures(features);
    return;
  }
  if (!t.negotiate(features)) return; // a combination the device refuses: FEATURES_OK stays clear
  const count = t.fn.numQueues;
  for (let i = 0; i < (how.stage === 'running' ? count : Math.min(count, how.queues)); i++) t.setupRing(i);
  if (how.stage === 'running') t.driverOk();
}

/** A lab brought up as `setup` says, function by function (missing entries: running, all features). */
export function createLab(ring: RingLayout, setup: readonly BringUp[]): LabWorld {
  const world = plug(ring, new MemoryBlockBackend(DISK_BYTES), true);
  const drivers = world.devices.all.map((fn, i) => {
    const t = new DriverMock(fn, new ArrayMemory(LAB_RAM), new TestIrq());
    bringUp(t, setup[i] ?? { stage: 'running', drop: [], queues: 0 });
    return t;
  });
  return { ...world, drivers, tainted: new Set() };
}

/**
 * A fresh set of functions for a restore of `old` (same options, the disk and the network's
 * state carried over), with `old`'s drivers moved onto them over copies of their RAM, as v86
 * restores it. Nothing is restored yet; `old` keeps its own RAM.
 */
export function rebuildLab(old: LabWorld): LabWorld {
  const world = plug(old.ring, new MemoryBlockBackend(old.disk.bytes.slice()), old.peer.up);
  old.drivers.forEach((t, i) => {
    const memory = new ArrayMemory(t.memory.size);
    memory.bytes.set(t.memory.bytes);
    t.continueOn(world.devices.all[i]!, memory);
  });
  return { ...world, drivers: old.drivers, tainted: new Set(old.tainted) };
}

/** Run every function's outstanding work now (VirtioPciFunction.quiesce, synchronously: every registered device's is). */
export function quiesceLabSync(world: LabWorld): void {
  for (const fn of world.devices.all) {
    const done: unknown = descriptorFor(fn.device)?.state?.quiesce(fn.device);
    if (done instanceof Promise) fail(`${fn.name}: an asynchronous quiesce (this campaign runs synchronously)`);
  }
}

// ---- traffic ----------------------------------------------------------------------------

/** `fn` and `queue` pick modulo what exists, so every step applies to any lab. */
export type LabStep =
  | { readonly kind: 'chain'; readonly fn: number; readonly queue: number; readonly readable: readonly number[]; readonly writable: readonly number[]; readonly indirect: boolean; readonly kick: boolean }
  | { readonly kind: 'kick' | 'collect' | 'arm'; readonly fn: number; readonly queue: number }
  | { readonly kind: 'isr' | 'reinit'; readonly fn: number }
  | { readonly kind: 'settle' }
  | { readonly kind: 'garbage'; readonly fn: number; readonly queue: number; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'blk-request'; readonly type: number; readonly sector: number; readonly sectors: number; readonly seed: number }
  | { readonly kind: 'blk-writeback'; readonly value: number }
  | { readonly kind: 'net-rx' | 'console-rx'; readonly queue: number; readonly sizes: readonly number[]; readonly kick: boolean }
  | { readonly kind: 'net-frame'; readonly len: number; readonly seed: number }
  | { readonly kind: 'net-link'; readonly up: boolean }
  | { readonly kind: 'console-control'; readonly event: number; readonly id: number; readonly value: number }
  | { readonly kind: 'console-host'; readonly port: number; readonly len: number; readonly seed: number };

const fnArb = fc.nat(FUNCTIONS - 1);
const queueArb = fc.nat(7);

export const labStepArb: fc.Arbitrary<LabStep> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('chain' as const),
      fn: fnArb,
      queue: queueArb,
      readable: fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 2 }),
      // Small rx buffers make the NIC hold chains for a frame (MRG_RXBUF); 1526 fits any frame.
      writable: fc.array(fc.oneof(fc.integer({ min: 1, max: 400 }), fc.constant(1526)), { maxLength: 3 }),
      indirect: fc.boolean(),
      kick: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('kick' as const, 'collect' as const, 'arm' as const), fn: fnArb, queue: queueArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('isr' as const), fn: fnArb }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'settle' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reinit' as const), fn: fnArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('garbage' as const), fn: fnArb, queue: queueArb, at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('blk-request' as const),
      type: fc.constantFrom(T.VIRTIO_BLK_T_IN, T.VIRTIO_BLK_T_OUT, T.VIRTIO_BLK_T_FLUSH, T.VIRTIO_BLK_T_GET_ID, 0x7777),
      sector: fc.nat(70),
      sectors: fc.nat(3),
      seed: fc.nat(255),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('blk-writeback' as const), value: fc.constantFrom(0, 1, 7) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constantFrom('net-rx' as const, 'console-rx' as const),
      // console: port 0's receiveq, the control receiveq, port 1's receiveq.
      queue: fc.constantFrom(0, 2, 4),
      // Mostly small: a large frame then takes several (MRG_RXBUF) and the NIC holds them until it fits.
      sizes: fc.array(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 20, max: 400 }) }, { weight: 1, arbitrary: fc.constant(1526) }), { minLength: 1, maxLength: 4 }),
      kick: fc.boolean(),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('net-frame' as const), len: fc.oneof(fc.integer({ min: 14, max: 1514 }), fc.integer({ min: 900, max: 1514 })), seed: fc.nat(255) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('net-link' as const), up: fc.constantFrom(true, true, false) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('console-control' as const),
      event: fc.constantFrom(0, 3, 3, 6, 6, 99),
      id: fc.nat(2),
      value: fc.constantFrom(0, 1, 1),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('console-host' as const), port: fc.nat(1), len: fc.integer({ min: 1, max: 700 }), seed: fc.nat(255) }) },
);

function pattern(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (seed + i * 13) & 0xff);
}

/** How a step runs: `strict` for a driver whose view matches the device's (a valid state). */
export interface StepMode {
  /**
   * Read used buffers back (the mock throws on a used id it did not submit). Off after a
   * mutated restore: the device may then rightly complete what this driver never sent.
   */
  readonly collect: boolean;
}

/** Add a chain on the driver side only (descriptor and avail writes to its own RAM, no BAR access). */
function add(t: DriverMock, queue: number, spec: { readable?: Uint8Array[]; writable?: number[]; indirect?: boolean }): boolean {
  const q = t.queues[queue];
  if (!q) return false;
  const parts = (spec.readable?.length ?? 0) + (spec.writable?.length ?? 0);
  if (parts === 0) return false;
  const indirect = !!spec.indirect && hasFeature(t.features, Feature.VIRTIO_F_RING_INDIRECT_DESC);
  if (q.freeDescriptors < (indirect ? 1 : parts)) return false;
  try {
    q.add({ ...spec, indirect });
  } catch (error) {
    // The mock's own limits (its buffer arena): the device saw nothing.
    if (error instanceof Error && error.message.startsWith('driver mock:')) return false;
    throw error;
  }
  return true;
}

function functionOf(world: LabWorld, owns: (fn: VirtioPciFunction) => boolean): number {
  return world.devices.all.findIndex(owns);
}

/** One step of traffic on `world`. */
export function applyLabStep(world: LabWorld, step: LabStep, mode: StepMode): void {
  const { drivers } = world;
  const driverAt = (fn: number) => drivers[fn % drivers.length]!;
  const queueOf = (t: DriverMock, q: number) => (t.queues.length ? q % t.queues.length : -1);
  switch (step.kind) {
    case 'chain': {
      const t = driverAt(step.fn);
      const q = queueOf(t, step.queue);
      const readable = step.readable.map((len, i) => pattern(len, step.fn * 31 + i));
      if (add(t, q, { readable, writable: [...step.writable], indirect: step.indirect }) && step.kick) t.queues[q]!.kick();
      return;
    }
    case 'kick':
    case 'arm':
    case 'collect': {
      const t = driverAt(step.fn);
      const q = t.queues[queueOf(t, step.queue)];
      if (!q) return;
      if (step.kind === 'kick') q.kick();
      else if (step.kind === 'arm') q.armInterrupt();
      else if (mode.collect && !world.tainted.has(`${step.fn % drivers.length}:${q.index}`)) {
        q.used();
        t.recycleBuffers();
      }
      return;
    }
    case 'isr':
      driverAt(step.fn).readIsr();
      return;
    case 'settle':
      world.settle();
      return;
    case 'reinit': {
      const fn = step.fn % drivers.length;
      bringUp(drivers[fn]!, { stage: 'running', drop: [], queues: 0 });
      for (const key of [...world.tainted]) if (key.startsWith(`${fn}:`)) world.tainted.delete(key);
      return;
    }
    case 'garbage': {
      const fn = step.fn % drivers.length;
      const t = drivers[fn]!;
      const q = t.queues[queueOf(t, step.queue)];
      if (!q) return;
      // Over what the driver wrote for this queue: its descriptors, or (split, odd `at`) avail idx,
      // moved a little ahead (entries the driver never wrote, stale heads) or anywhere.
      if (q instanceof DriverQueue && step.at % 2 === 1) {
        const ahead = step.bytes.length > 1 ? step.bytes[0]! % (q.size + 2) : step.bytes[0]! << 8;
        t.memory.writeU16(q.addr.avail + 2, (t.memory.readU16(q.addr.avail + 2) + ahead) & 0xffff);
      } else {
        const desc = q instanceof DriverQueue || q instanceof PackedDriverQueue ? q.addr.desc : 0x1000;
        t.memory.bytes.set(step.bytes, desc + (step.at % (16 * q.size - step.bytes.length + 1)));
      }
      for (const other of t.queues) if (other) world.tainted.add(`${fn}:${other.index}`);
      q.notify();
      return;
    }
    case 'blk-request': {
      const fn = functionOf(world, (f) => blkDevice.owns(f.device));
      if (fn < 0) return;
      const data = step.sectors * 512;
      const readable = [outhdr(step.type, step.sector), ...(step.type === T.VIRTIO_BLK_T_OUT && data ? [pattern(data, step.seed)] : [])];
      const answer = step.type === T.VIRTIO_BLK_T_IN ? data : step.type === T.VIRTIO_BLK_T_GET_ID ? 20 : 0;
      if (add(drivers[fn]!, 0, { readable, writable: [...(answer ? [answer] : []), 1] })) drivers[fn]!.queues[0]!.kick();
      return;
    }
    case 'blk-writeback': {
      const fn = functionOf(world, (f) => blkDevice.owns(f.device));
      if (fn >= 0) drivers[fn]!.writeConfig(BlkConfigOffset.WRITEBACK, 1, step.value);
      return;
    }
    case 'net-rx':
    case 'console-rx': {
      const owns = step.kind === 'net-rx' ? netDevice.owns : consoleDevice.owns;
      const fn = functionOf(world, (f) => owns(f.device));
      if (fn < 0) return;
      const queue = step.kind === 'net-rx' ? NET_RECEIVEQ : step.queue;
      let added = false;
      for (const size of step.sizes) added = add(drivers[fn]!, queue, { writable: [size] }) || added;
      if (added && step.kick) drivers[fn]!.queues[queue]!.kick();
      return;
    }
    case 'net-frame':
      world.peer.send(ethernet(pattern(step.len - 14, step.seed), 0x0800, GUEST_MAC, PEER_MAC));
      return;
    case 'net-link':
      world.peer.setUp(step.up);
      return;
    case 'console-control': {
      const fn = functionOf(world, (f) => consoleDevice.owns(f.device));
      if (fn >= 0 && add(drivers[fn]!, CONTROL_TRANSMITQ, { readable: [encodeControl(step)] })) drivers[fn]!.queues[CONTROL_TRANSMITQ]!.kick();
      return;
    }
    case 'console-host': {
      const fn = world.devices.all.find((f) => consoleDevice.owns(f.device));
      if (fn && consoleDevice.owns(fn.device)) fn.device.ports[step.port % fn.device.ports.length]!.write(pattern(step.len, step.seed));
      return;
    }
  }
}
