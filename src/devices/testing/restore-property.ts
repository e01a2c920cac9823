/**
 * The snapshot property every device runs (on split and packed rings): random traffic, and at
 * a random point quiesce, save the function's state (through JSON), build the device anew
 * over a copy of guest RAM, restore, and go on with the same traffic. Everything the driver
 * and the host observe — used buffers and their bytes, ISR reads and the line's level, what
 * reached the host (frames, port data, the disk) — must be exactly what a run without the
 * snapshot observes (that run quiesces at the same point: quiescing is the device serving
 * its deferred work early, which it may do at any time).
 *
 * Also checked at the snapshot: the restored function saves the very state it was restored
 * from, and the old guest RAM is poisoned, so nothing can keep using it unnoticed.
 */
import fc from 'fast-check';
import { Feature, featureBit } from '../../virtio/constants.ts';
import type { VirtioPciFunction } from '../../virtio/pci/virtio-pci-function.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import type { DriverMock, DriverRing } from '../../virtio/testing/driver-mock.ts';
import { checkInvariants, fail } from '../../virtio/testing/invariants.ts';

/** What every world has: the driver and its queues (in the negotiated layout). */
export interface RestoreWorld {
  readonly driver: DriverMock;
}

/** Steps every device's traffic mixes in. */
export type CommonStep =
  | { readonly kind: 'kick'; readonly queue: number }
  | { readonly kind: 'collect'; readonly queue: number }
  | { readonly kind: 'arm'; readonly queue: number }
  | { readonly kind: 'isr' }
  | { readonly kind: 'settle' };

export interface RestoreSubject<World extends RestoreWorld, Step> {
  readonly name: string;
  readonly queues: number;
  /** Feature bits a case may leave out (besides EVENT_IDX and INDIRECT_DESC, always optional). */
  readonly optionalFeatures?: readonly number[];
  readonly steps: fc.Arbitrary<Step>;
  /** A fresh machine brought up to DRIVER_OK without `drop` features; `log` collects what is observed. */
  create(ring: RingLayout, drop: bigint, log: string[]): World;
  /**
   * The same device built anew for a restore of `old` (same options; host-side state such as
   * the disk, the link or the random source carried over), with its function, not connected yet.
   */
  rebuild(old: World, log: string[]): { world: World; fn: VirtioPciFunction };
  /** One device-specific step. */
  step(world: World, step: Step, log: string[]): void;
  /** Run deferred work the way the end of the emulator's slice would. */
  settle(world: World): void;
  /** After the last step: log what the host holds (e.g. the disk's bytes). */
  finish?(world: World, log: string[]): void;
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Steps on the driver's queues, ISR and deferred work, for any device with `queues` queues. */
export function commonSteps(queues: number): fc.Arbitrary<CommonStep> {
  const queue = fc.integer({ min: 0, max: queues - 1 });
  return fc.oneof(
    queue.map((q) => ({ kind: 'kick' as const, queue: q })),
    queue.map((q) => ({ kind: 'collect' as const, queue: q })),
    queue.map((q) => ({ kind: 'arm' as const, queue: q })),
    fc.constant({ kind: 'isr' as const }),
    fc.constant({ kind: 'settle' as const }),
  );
}

function collect(driver: DriverMock, queue: DriverRing, log: string[]): void {
  for (const u of queue.used()) log.push(`q${queue.index} used ${u.head} len ${u.len} ${hex(u.data)}`);
  driver.recycleBuffers();
}

function commonStep<World extends RestoreWorld>(subject: RestoreSubject<World, unknown>, world: World, step: CommonStep, log: string[]): void {
  const { driver } = world;
  switch (step.kind) {
    case 'kick':
      driver.queues[step.queue]?.kick();
      return;
    case 'collect': {
      const q = driver.queues[step.queue];
      if (q) collect(driver, q, log);
      return;
    }
    case 'arm':
      driver.queues[step.queue]?.armInterrupt();
      return;
    case 'isr':
      log.push(`irq ${driver.irq.level} isr ${driver.readIsr()}`);
      return;
    case 'settle':
      subject.settle(world);
      return;
  }
}

/** Snapshot `old` and restore it into a new device over a copy of its RAM; the same driver goes on. */
function snapshot<World extends RestoreWorld, Step>(subject: RestoreSubject<World, Step>, old: World, log: string[]): World {
  const saved = old.driver.fn.saveState();
  const text = JSON.stringify(saved);
  const memory = new ArrayMemory(old.driver.memory.size);
  memory.bytes.set(old.driver.memory.bytes);
  old.driver.memory.bytes.fill(0xdb);
  const { world, fn } = subject.rebuild(old, log);
  if (world.driver !== old.driver) fail('rebuild must keep the driver');
  old.driver.continueOn(fn, memory);
  fn.restoreState(JSON.parse(text));
  const again = JSON.stringify(fn.saveState());
  if (again !== text) fail(`the restored function saves another state:\n${text}\n${again}`);
  return world;
}

async function run<World extends RestoreWorld, Step>(
  subject: RestoreSubject<World, Step | CommonStep>,
  ring: RingLayout,
  drop: bigint,
  steps: ReadonlyArray<Step | CommonStep>,
  snapshotAt: number,
  restore: boolean,
): Promise<string[]> {
  const log: string[] = [];
  let world = subject.create(ring, drop, log);
  for (let i = 0; i <= steps.length; i++) {
    if (i === snapshotAt) {
      await world.driver.fn.quiesce();
      if (restore) world = snapshot(subject, world, log);
      checkInvariants(world.driver);
    }
    if (i === steps.length) break;
    const step = steps[i]!;
    const kind = (step as { kind?: unknown }).kind;
    if (kind === 'kick' || kind === 'collect' || kind === 'arm' || kind === 'isr' || kind === 'settle') commonStep(subject, world, step as CommonStep, log);
    else subject.step(world, step as Step, log);
    checkInvariants(world.driver);
  }
  // Whatever is still in flight: serve it and look at it.
  subject.settle(world);
  for (const q of world.driver.queues) if (q) q.notify();
  subject.settle(world);
  for (const q of world.driver.queues) if (q) collect(world.driver, q, log);
  log.push(`irq ${world.driver.irq.level} isr ${world.driver.readIsr()} status ${world.driver.fn.deviceStatus}`);
  subject.finish?.(world, log);
  return log;
}

/** The property for `subject` on `ring`. */
export function restoreProperty<World extends RestoreWorld, Step>(subject: RestoreSubject<World, Step | CommonStep>, ring: RingLayout, maxSteps = 40) {
  const optional = [Feature.VIRTIO_F_RING_EVENT_IDX, Feature.VIRTIO_F_RING_INDIRECT_DESC, ...(subject.optionalFeatures ?? [])];
  const dropArb = fc.subarray(optional).map((bits) => bits.reduce((mask, bit) => mask | featureBit(bit), 0n));
  const stepsArb = fc.array(fc.oneof({ weight: 3, arbitrary: subject.steps }, { weight: 2, arbitrary: commonSteps(subject.queues) }), { maxLength: maxSteps, size: 'max' });
  return fc.asyncProperty(dropArb, stepsArb, fc.nat(), async (drop, steps, at) => {
    const snapshotAt = at % (steps.length + 1);
    const plain = await run(subject, ring, drop, steps, snapshotAt, false);
    const restored = await run(subject, ring, drop, steps, snapshotAt, true);
    const differ = plain.findIndex((line, i) => line !== restored[i]);
    if (differ >= 0 || plain.length !== restored.length) {
      const i = differ >= 0 ? differ : Math.min(plain.length, restored.length);
      fail(`after a snapshot at step ${snapshotAt}, observation ${i} differs:\n  without: ${plain[i]}\n  with:    ${restored[i]}`);
    }
  });
}
