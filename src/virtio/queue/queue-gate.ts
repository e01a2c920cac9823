/**
 * The freeze/step gate's rules, the same for both ring layouts (see QueueGate). Called once
 * per pop()/pending(), never per descriptor; plain functions V8 inlines.
 */
import type { QueueGate } from './virtqueue.ts';

/** Whether pop() may hand out a chain: no gate, not frozen, or a step credit left. */
export function gateOpen(gate: QueueGate | undefined): boolean {
  return !(gate?.frozen && gate.credits <= 0);
}

/** pending() as the gate lets the device see it: at most the credits left while frozen. */
export function gatedPending(gate: QueueGate | undefined, pending: number): number {
  return gate?.frozen ? Math.min(pending, gate.credits) : pending;
}

/** A chain was popped: while frozen it used up one credit. */
export function spendGateCredit(gate: QueueGate | undefined): void {
  if (gate?.frozen) gate.credits--;
}
