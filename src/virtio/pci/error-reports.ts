/**
 * Error reports a guest cannot use to flood the page or the logs. A guest in a loop (a bad
 * register write, or reset + the same bad bring-up) makes the same kind of error again and
 * again: reasons are grouped by kind (numbers masked), and listeners hear the 1st, 2nd, 4th,
 * 8th … error of each kind, the later ones with their count.
 *
 * Budget: for N errors of one kind, at most 1 + ⌊log2 N⌋ reports; at most MAX_KINDS kinds are
 * told apart, later kinds share one bucket, so N errors of any mix cost at most
 * `maxReportsFor(N)` reports. Work per error is constant: the reason is cut to
 * MAX_REASON_LENGTH characters before masking, and the table never grows past MAX_KINDS + 1.
 */

export const MAX_KINDS = 32;
export const MAX_REASON_LENGTH = 200;
const OTHER_KINDS = '(other kinds)';

/** A reason with its numbers masked: "queue 3: size 6 …" and "queue 0: size 9 …" are one kind. */
export function errorKind(reason: string): string {
  return reason.slice(0, MAX_REASON_LENGTH).replace(/0x[0-9a-f_]+|\d+/gi, 'N');
}

/** The most reports `errors` errors can cause, whatever their kinds. */
export function maxReportsFor(errors: number): number {
  if (errors <= 0) return 0;
  return (MAX_KINDS + 1) * (1 + Math.floor(Math.log2(errors)));
}

export class ErrorCoalescer {
  private readonly counts = new Map<string, number>();
  /** Errors counted but not passed on. */
  suppressed = 0;

  /** The text to report for this error now, or undefined to stay quiet (it is counted). */
  admit(reason: string): string | undefined {
    let kind = errorKind(reason);
    if (!this.counts.has(kind) && this.counts.size >= MAX_KINDS) kind = OTHER_KINDS;
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    if ((n & (n - 1)) !== 0 || n > 2 ** 30) {
      this.suppressed++;
      return undefined;
    }
    const text = reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}…` : reason;
    return n === 1 ? text : `${text} (${n} errors of this kind so far)`;
  }
}
