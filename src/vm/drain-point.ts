/**
 * When deferred device work (a queue's kicks, see DeferredKicks) runs: at whichever comes
 * first of v86 checking its timers — between slices and at every HLT, i.e. just before the
 * guest would wait for an interrupt — and a microtask after the current slice.
 *
 * Why the HLT: in a browser, a halted v86 is woken through a round trip to its scheduler's
 * helper worker. Work served after the guest halted costs that round trip per request; served
 * at the HLT, the interrupt is pending before the guest waits and it never sleeps. (IDE
 * completes inside the port write and never pays it either.) Batching is unchanged: kicks
 * stay suppressed until the guest stops to wait.
 */
import { macrotask } from './macrotask.ts';

/** Jobs run together at a timer check, or else once by a fallback scheduled for the first of them. */
class JobBatch {
  private jobs: Array<() => void> = [];
  private fallbackQueued = false;

  constructor(private readonly fallback: (run: () => void) => void) {}

  add(job: () => void, onFallback: (ran: number) => void): void {
    this.jobs.push(job);
    if (this.fallbackQueued) return;
    this.fallbackQueued = true;
    this.fallback(() => {
      this.fallbackQueued = false;
      onFallback(this.run());
    });
  }

  /** Runs the jobs queued so far (a job queued meanwhile waits for the next run); how many ran. */
  run(): number {
    const jobs = this.jobs;
    this.jobs = [];
    // Each job contains its own errors (DeferredKicks reports them to its device).
    for (const job of jobs) job();
    return jobs.length;
  }

  get length(): number {
    return this.jobs.length;
  }
}

export class DrainPoint {
  // Wrapped: a browser's queueMicrotask throws when called as another object's method.
  private readonly deferred = new JobBatch((run) => queueMicrotask(run));
  private readonly held = new JobBatch((run) => macrotask(run));
  /** Jobs run at a timer check vs in the microtask, for benchmarks and tests. */
  readonly counts = { atTimerCheck: 0, atMicrotask: 0 };

  /** Schedules `job` (DeferredKicks' `defer`). */
  readonly defer = (job: () => void): void => {
    this.deferred.add(job, (ran) => (this.counts.atMicrotask += ran));
  };

  /**
   * Schedules `job` for whichever comes first of the next timer check and a macrotask, never
   * in this task: work that waits while the guest cannot look (frames that merge meanwhile).
   * A busy emulator reaches its timer check first; an idle one (halted) gets the job after
   * the tasks already queued (the page's other frames), so nothing waits for a sleeping CPU.
   */
  readonly hold = (job: () => void): void => {
    this.held.add(job, () => {});
  };

  /** The emulator's timer check: run whatever is scheduled, now. */
  readonly atTimerCheck = (): void => {
    this.held.run();
    if (this.deferred.length > 0) this.counts.atTimerCheck += this.deferred.run();
  };
}
