/**
 * How much host work one guest action (a kick, a frame, a register write) caused, for the
 * fuzz campaigns' "bounded work" properties: each property measures the action, compares it
 * with the written budget (README, Reliability) and fails when over; every measurement also
 * feeds `worstCases`, which `npm run fuzz` prints at the end, so a run says how close the
 * worst case it found came to the budget.
 */
import type { ArrayMemory } from './array-memory.ts';

/** Host work of one action. `extra` holds device counters (frames emitted, chains popped …). */
export interface Work {
  /** GuestMemory calls. */
  accesses: number;
  /** Bytes those calls covered. */
  bytes: number;
  /** Wall time of the action, ms (noisy: only its budget is generous, see `WORK_MS_BOUND`). */
  ms: number;
  extra: Record<string, number>;
}

/**
 * Wall-time bound on one action in a fuzz case, far above the budget's cost on any
 * machine (a budgeted kick takes well under 50 ms) and far below a frozen worker: it catches
 * a missing cap (seconds, or never), not a slow machine.
 */
export const WORK_MS_BOUND = 1000;

/** Run `action` and return what it cost on `memory`; `extra()` is read after it. */
export function measure(memory: ArrayMemory, action: () => void, extra: () => Record<string, number> = () => ({})): Work {
  const accesses = memory.work.accesses;
  const bytes = memory.work.bytes;
  const t0 = performance.now();
  action();
  const ms = performance.now() - t0;
  return { accesses: memory.work.accesses - accesses, bytes: memory.work.bytes - bytes, ms, extra: extra() };
}

export interface WorstCase {
  /** Largest value seen for this metric. */
  value: number;
  /** Its budget, when the property states one. */
  budget: number | undefined;
  /** The property and case it came from. */
  where: string;
}

/** The largest value seen per "campaign metric", over the whole process. */
export class WorstCases {
  private readonly worst = new Map<string, WorstCase>();

  /** Note `value` for `metric` (e.g. "ring: bytes per kick"); keeps the largest. */
  note(metric: string, value: number, where: string, budget?: number): void {
    const seen = this.worst.get(metric);
    if (!seen || value > seen.value) this.worst.set(metric, { value, budget, where });
  }

  /** Note every field of a Work under `prefix`, with budgets where given. */
  noteWork(prefix: string, work: Work, where: string, budgets: Partial<Record<string, number>> = {}): void {
    this.note(`${prefix} accesses`, work.accesses, where, budgets.accesses);
    this.note(`${prefix} bytes`, work.bytes, where, budgets.bytes);
    this.note(`${prefix} ms`, work.ms, where, budgets.ms ?? WORK_MS_BOUND);
    for (const [key, value] of Object.entries(work.extra)) this.note(`${prefix} ${key}`, value, where, budgets[key]);
  }

  entries(): Array<[string, WorstCase]> {
    return [...this.worst.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  clear(): void {
    this.worst.clear();
  }
}

/** Shared by every property in the process; `npm run fuzz` prints it. */
export const worstCases = new WorstCases();

/** Fail (throw) when `work` is over any of `budgets`; names the metric, its value and budget. */
export function assertWithinBudget(what: string, work: Work, budgets: Partial<Record<string, number>>): void {
  const values: Record<string, number> = { accesses: work.accesses, bytes: work.bytes, ms: work.ms, ...work.extra };
  if (budgets.ms === undefined && work.ms > WORK_MS_BOUND) {
    throw new Error(`${what}: took ${work.ms.toFixed(1)} ms (bound ${WORK_MS_BOUND} ms)`);
  }
  for (const [metric, budget] of Object.entries(budgets)) {
    if (budget === undefined) continue;
    const value = values[metric] ?? 0;
    if (value > budget) throw new Error(`${what}: ${metric} ${value} over its budget ${budget}`);
  }
}
