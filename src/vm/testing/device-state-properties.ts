/**
 * The device-state parser's fuzz campaign (`npm run fuzz -- --only device-state`), shared
 * with the unit tests. A VM state file carries every virtio function's state as JSON
 * (saveLabDevices) beside guest RAM, both user-controlled; restoreLabDevices must take a
 * valid one back exactly and refuse anything else cleanly. Valid states come from a lab of
 * every registered device (lab-world.ts) after random driver traffic, on split and packed
 * rings; the mutated ones from state-mutations.ts.
 *
 *  - round trip: a valid state, through JSON, restores into a fresh set of functions, which
 *    save exactly that state again and keep serving the driver;
 *  - mutated: restoring a mutated state (or a valid one over rewritten RAM) either throws a
 *    FunctionStateError, with every function left fresh (same saved state, RAM and line
 *    untouched, and the valid state still restores into it), or succeeds; then the set keeps
 *    working against the driver (kicks, ISR reads, host events: no exception, a guest error
 *    only as DEVICE_NEEDS_RESET) and what it saves restores again to the same state.
 * Both hold every restore to bounded work: under WORK_MS_BOUND, and guest RAM bytes within
 * one kick's ring walk per queue (the restore re-reads at most every in-flight chain once).
 * No other exception, also none hidden as the cause of a FunctionStateError.
 */
import fc from 'fast-check';
import { registeredDevices } from '../../devices/registry.ts';
import { maxRingBytesPerKick } from '../../virtio/budget.ts';
import { VirtqueueError } from '../../virtio/queue/errors.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { FunctionStateError } from '../../virtio/state/state-reader.ts';
import { bump, checkInvariants, fail, maskNumbers, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { assertWithinBudget, worstCases, WORK_MS_BOUND, type Work } from '../../virtio/testing/work-meter.ts';
import { restoreLabDevices, saveLabDevices, type LabDevicesState } from '../lab-devices-state.ts';
import { applyLabStep, bringUpArb, createLab, labStepArb, quiesceLabSync, rebuildLab, type BringUp, type LabStep, type LabWorld } from './lab-world.ts';
import { mutateRam, mutateState, mutationArb, ramTargets, type Mutation } from './state-mutations.ts';

export interface TrafficCase {
  readonly ring: RingLayout;
  readonly setup: readonly BringUp[];
  /** Before the snapshot (a valid state at a random point of it). */
  readonly before: readonly LabStep[];
  /** After the restore. */
  readonly after: readonly LabStep[];
}

export const trafficCaseArb: fc.Arbitrary<TrafficCase> = fc.record({
  ring: fc.constantFrom<RingLayout>('split', 'packed'),
  setup: fc.array(bringUpArb, { minLength: registeredDevices.length, maxLength: registeredDevices.length }),
  before: fc.array(labStepArb, { maxLength: 40 }),
  after: fc.array(labStepArb, { maxLength: 12 }),
});

const STRICT = { collect: true };
/** After a mutated restore the driver's view may differ from the device's: no used reads. */
const LOOSE = { collect: false };

/** What every driver must see after any step (invariants.ts), and no queue broken by surprise. */
function checkLab(world: LabWorld, where: string): void {
  for (const t of world.drivers) {
    try {
      checkInvariants(t);
    } catch (error) {
      fail(`${t.fn.name} ${where}: ${(error as Error).message}`);
    }
    // "unexpected …" is how the engines name an exception they did not raise themselves.
    const odd = t.errors.find((reason) => /unexpected |TypeError|RangeError|is not a function|Cannot read/.test(reason));
    if (odd) fail(`${t.fn.name} ${where}: an error that is a host bug, not the guest's: ${odd}`);
  }
}

/** The traffic before the snapshot, quiesced, and the valid state it saves (through JSON). */
function validState(c: TrafficCase): { world: LabWorld; text: string } {
  const world = createLab(c.ring, c.setup);
  c.before.forEach((step, i) => {
    applyLabStep(world, step, STRICT);
    checkLab(world, `after step ${i} (${step.kind})`);
  });
  quiesceLabSync(world);
  return { world, text: JSON.stringify(saveLabDevices(world.devices)) };
}

/**
 * A bug dressed as a refusal: an exception other than the parser's and the ring walk's,
 * kept as the cause of the FunctionStateError that reports it.
 */
function hiddenBug(error: unknown): unknown {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (!(e instanceof FunctionStateError || e instanceof VirtqueueError)) return e;
  }
  return undefined;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : String(error);
}

/**
 * The most guest RAM a restore of `world`'s functions may touch: per queue, one kick's ring
 * walk at its largest size (budget.ts), since a restore re-reads each chain in flight once,
 * and a queue holds at most `size` chains.
 */
function restoreRamBudget(world: LabWorld): number {
  return world.devices.all.reduce((sum, fn) => sum + fn.device.queueMaxSizes.reduce((n, size) => n + maxRingBytesPerKick(size, world.ring), 0), 0);
}

interface Restored {
  /** The FunctionStateError, or undefined when the state was taken. */
  refused?: FunctionStateError;
  work: Work;
}

/** restoreLabDevices(world, state) measured; fails on any exception but a clean FunctionStateError. */
function restoreMeasured(world: LabWorld, state: unknown, where: string, chars: number): Restored {
  const memories = world.drivers.map((t) => t.memory);
  const accesses = memories.reduce((n, m) => n + m.work.accesses, 0);
  const bytes = memories.reduce((n, m) => n + m.work.bytes, 0);
  let refused: FunctionStateError | undefined;
  const t0 = performance.now();
  try {
    restoreLabDevices(world.devices, state as LabDevicesState);
  } catch (error) {
    if (!(error instanceof FunctionStateError)) fail(`restoreLabDevices threw ${describeError(error)}`);
    const bug = hiddenBug(error);
    if (bug) fail(`restoreLabDevices refused with "${error.message}", caused by ${describeError(bug)}`);
    refused = error;
  }
  const work: Work = {
    accesses: memories.reduce((n, m) => n + m.work.accesses, 0) - accesses,
    bytes: memories.reduce((n, m) => n + m.work.bytes, 0) - bytes,
    ms: performance.now() - t0,
    extra: {},
  };
  const budgets = { bytes: restoreRamBudget(world), ms: WORK_MS_BOUND };
  worstCases.note('device-state: restore ms', work.ms, where, budgets.ms);
  worstCases.note('device-state: restore guest RAM bytes', work.bytes, where, budgets.bytes);
  worstCases.note('device-state: restore guest RAM accesses', work.accesses, where);
  worstCases.note('device-state: state JSON chars', chars, where);
  assertWithinBudget(`device-state restore (${where})`, work, budgets);
  for (const t of world.drivers) {
    const r = t.memory.rejected[0];
    if (r) fail(`${t.fn.name}: the restore reached outside RAM: ${r.op} [0x${r.addr.toString(16)}, +${r.len})`);
  }
  return { refused, work };
}

function saveText(world: LabWorld): string {
  return JSON.stringify(saveLabDevices(world.devices));
}

/** Restore `text` into `world`'s (fresh) functions: it must be taken and saved back unchanged. */
function restoreInto(world: LabWorld, text: string, what: string): LabWorld {
  const { refused } = restoreMeasured(world, JSON.parse(text), what, text.length);
  if (refused) fail(`${what} was refused: ${refused.message}`);
  const again = saveText(world);
  if (again !== text) fail(`${what}: the restored functions save another state:\n${text}\n${again}`);
  return world;
}

/** restoreInto a fresh set built for `old`, its drivers moved on over copies of their RAM. */
function restoreExactly(old: LabWorld, text: string, what: string): LabWorld {
  return restoreInto(rebuildLab(old), text, what);
}

/** What a valid state holds beyond the power-on state, for the campaign's coverage report. */
function stateFeatures(state: LabDevicesState): string[] {
  const out: string[] = [];
  for (const f of state.functions) {
    out.push(`${f.name}: status 0x${f.status.toString(16)}`);
    for (const q of f.queues) {
      if (q.engine?.broken) out.push(`${f.name}: a broken queue`);
      else if (q.engine?.inFlight.length) out.push(`${f.name}: ${q.engine.layout} chains in flight`);
    }
    const device = f.device as Record<string, unknown> | null;
    const nonEmpty = (key: string) => Array.isArray(device?.[key]) && (device[key] as unknown[]).length > 0;
    if (nonEmpty('rxHeld')) out.push(`${f.name}: rx chains held`);
    if (nonEmpty('rxBacklog')) out.push(`${f.name}: rx backlog`);
    if (nonEmpty('controlPending')) out.push(`${f.name}: control messages pending`);
    if (device?.deviceReady === true) out.push(`${f.name}: DEVICE_READY`);
    const ports = Array.isArray(device?.ports) ? (device.ports as Array<{ guestOpen: boolean; backlog: string }>) : [];
    if (ports.some((p) => p.guestOpen)) out.push(`${f.name}: a port open`);
    if (ports.some((p) => p.backlog !== '')) out.push(`${f.name}: port backlog`);
  }
  return out;
}

export function roundTripProperty(coverage: Map<string, number>): fc.IProperty<[TrafficCase]> {
  return fc.property(trafficCaseArb, (c) => {
    const { world, text } = validState(c);
    for (const what of stateFeatures(JSON.parse(text) as LabDevicesState)) bump(coverage, what);
    const restored = restoreExactly(world, text, 'a valid state');
    // The driver's view matches the restored device's: it goes on strictly.
    c.after.forEach((step, i) => {
      applyLabStep(restored, step, STRICT);
      checkLab(restored, `after restore, step ${i} (${step.kind})`);
    });
  });
}

/** Every function exactly as it was: saved state, RAM (`ram`, byte for byte) and line. */
function requireUntouched(world: LabWorld, saved: readonly string[], ram: readonly Uint8Array[], why: string): void {
  world.devices.all.forEach((fn, i) => {
    const now = JSON.stringify(fn.saveState());
    if (now !== saved[i]) fail(`${fn.name} changed although the restore was refused (${why}):\n${saved[i]}\n${now}`);
    const t = world.drivers[i]!;
    if (Buffer.compare(t.memory.bytes, ram[i]!) !== 0) fail(`${fn.name}: guest RAM changed although the restore was refused (${why})`);
    if (t.irq.level || fn.isrStatus !== 0) fail(`${fn.name}: interrupt raised although the restore was refused (${why})`);
  });
}

export interface MutationCase {
  readonly traffic: TrafficCase;
  readonly mutations: readonly Mutation[];
}

export const mutationCaseArb: fc.Arbitrary<MutationCase> = fc.record({
  traffic: trafficCaseArb,
  mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
});

export function mutationProperty(coverage: Map<string, number>): fc.IProperty<[MutationCase]> {
  return fc.property(mutationCaseArb, (c) => checkMutationCase(c, coverage));
}

/** One case of mutationProperty (fails by throwing). */
export function checkMutationCase({ traffic, mutations }: MutationCase, coverage: Map<string, number>): void {
  const { world, text } = validState(traffic);
  const valid = JSON.parse(text) as unknown;
  const mutatedText = JSON.stringify(mutateState(valid, mutations));
  const where = mutations.map((m) => m.kind).join(' + ');

  const fresh = rebuildLab(world);
  const targets = ramTargets(valid);
  const ramMutated = mutations.some((m) => m.kind === 'ram');
  for (const m of mutations) if (m.kind === 'ram') mutateRam(targets, fresh.drivers.map((t) => t.memory), m);
  const saved = fresh.devices.all.map((fn) => JSON.stringify(fn.saveState()));
  const ram = fresh.drivers.map((t) => t.memory.bytes.slice());

  const { refused } = restoreMeasured(fresh, JSON.parse(mutatedText), where, mutatedText.length);
  bump(coverage, `${where} → ${refused ? `refused: ${maskNumbers(refused.message).slice(0, 90)}` : mutatedText === text ? 'taken (unchanged)' : 'taken'}`);

  if (refused) {
    requireUntouched(fresh, saved, ram, refused.message);
    // Still fresh: the valid state goes in (over RAM as it was saved).
    if (!ramMutated) restoreInto(fresh, text, 'the valid state after a refused one');
    return;
  }

  checkLab(fresh, 'right after the restore');
  // What was taken saves and restores again to the same state.
  quiesceLabSync(fresh);
  const taken = saveText(fresh);
  const again = restoreExactly(fresh, taken, 'a taken state, saved again');
  // The device may now complete chains this driver never sent: nothing but no exception and the invariants.
  traffic.after.forEach((step, i) => {
    applyLabStep(again, step, LOOSE);
    checkLab(again, `after a mutated restore, step ${i} (${step.kind})`);
  });
  for (const t of again.drivers) for (const q of t.queues) q?.notify();
  again.settle();
  checkLab(again, 'after the last kicks');
  quiesceLabSync(again);
  saveLabDevices(again.devices);
}

/** The campaign. */
export function deviceStateProperties(): NamedProperty[] {
  const roundTrip = new Map<string, number>();
  const mutated = new Map<string, number>();
  return [
    { name: 'device-state: valid states round trip through JSON and keep working', property: roundTripProperty(roundTrip), coverage: roundTrip },
    { name: 'device-state: mutated states → FunctionStateError and untouched, or a working restore', property: mutationProperty(mutated), coverage: mutated },
  ];
}
