/**
 * Loss and round-trip accounting for the relay load generator: every echo request it sends
 * is booked under its (id, seq); a reply settles it once. What is still open when the
 * window closes (after a grace period) is lost; replies nobody asked for are counted apart,
 * so a relay that duplicates or misdelivers frames shows up too.
 */
export interface LedgerSummary {
  sent: number;
  received: number;
  lost: number;
  /** Replies to requests never sent, or already settled. */
  unexpected: number;
  lossPercent: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export class PingLedger {
  private readonly open = new Map<number, number>();
  private readonly rtts: number[] = [];
  private sent = 0;
  private unexpected = 0;
  private lost = 0;

  /** Books a request; `key` must be unique among open ones (e.g. id << 16 | seq). */
  request(key: number, now: number): void {
    this.open.set(key, now);
    this.sent++;
  }

  /** Settles a request; false (and counted) when there was none open under `key`. */
  reply(key: number, now: number): boolean {
    const at = this.open.get(key);
    if (at === undefined) {
      this.unexpected++;
      return false;
    }
    this.open.delete(key);
    this.rtts.push(now - at);
    return true;
  }

  /** Requests sent before `cutoff` that are still open are lost for good. */
  expire(cutoff: number): void {
    for (const [k, at] of this.open) {
      if (at >= cutoff) continue;
      this.open.delete(k);
      this.lost++;
    }
  }

  get pending(): number {
    return this.open.size;
  }

  summary(): LedgerSummary {
    const s = [...this.rtts].sort((a, b) => a - b);
    const received = this.rtts.length;
    return {
      sent: this.sent,
      received,
      lost: this.lost,
      unexpected: this.unexpected,
      lossPercent: this.sent ? (100 * this.lost) / this.sent : 0,
      p50: percentile(s, 50),
      p99: percentile(s, 99),
      max: s.length ? s[s.length - 1] : NaN,
    };
  }
}

/** Why a step fails the load generator's own check, or null: loss over the threshold, or any unexpected reply. */
export function lossVerdict(s: LedgerSummary, maxLossPercent: number): string | null {
  if (s.unexpected > 0) return `${s.unexpected} replies to requests never sent or already answered`;
  if (s.lossPercent > maxLossPercent) return `lost ${s.lost}/${s.sent} (${s.lossPercent.toFixed(2)} %) > ${maxLossPercent} %`;
  return null;
}

/** Whether a step is within capacity: nothing lost, nothing unexpected, p99 within the bound. */
export function withinBound(s: LedgerSummary, p99BoundMs: number): boolean {
  return s.lost === 0 && s.unexpected === 0 && s.sent > 0 && s.p99 <= p99BoundMs;
}
