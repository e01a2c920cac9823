/**
 * Request and byte rates for the inspector's charts, from counters the snapshots carry:
 * one sample a second (at most a minute kept), rates as differences between samples.
 */
import type { FunctionSnapshot } from '../../virtio/inspect/types.ts';

const SAMPLE_MS = 1000;
const KEEP = 60;

interface Sample {
  t: number;
  requests: number;
  bytes: number;
}

export interface Rates {
  /** Oldest first, one value per second. */
  requestsPerSecond: number[];
  bytesPerSecond: number[];
}

export class RateHistory {
  private readonly samples: Sample[] = [];
  /** Bytes of chains popped so far (from 'pop' events, which carry the chain's length). */
  private bytes = 0;

  /** Feed every snapshot of one function (its events are the new ones only). */
  add(now: number, fn: FunctionSnapshot): void {
    for (const e of fn.events) if (e.kind === 'pop' && e.len !== undefined) this.bytes += e.len;
    const requests = fn.queues.reduce((n, q) => n + q.counters.requests, 0);
    const last = this.samples[this.samples.length - 1];
    if (last && now - last.t < SAMPLE_MS) return;
    this.samples.push({ t: now, requests, bytes: this.bytes });
    if (this.samples.length > KEEP + 1) this.samples.shift();
  }

  rates(): Rates {
    const out: Rates = { requestsPerSecond: [], bytesPerSecond: [] };
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1];
      const b = this.samples[i];
      const dt = (b.t - a.t) / 1000;
      // A reset restarts the queue's counters: never draw a negative rate.
      out.requestsPerSecond.push(Math.max(0, (b.requests - a.requests) / dt));
      out.bytesPerSecond.push(Math.max(0, (b.bytes - a.bytes) / dt));
    }
    return out;
  }
}
