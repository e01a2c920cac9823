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
export class DrainPoint {
  private jobs: Array<() => void> = [];
  private microtaskQueued = false;
  /** Jobs run at a timer check vs in the microtask, for benchmarks and tests. */
  readonly counts = { atTimerCheck: 0, atMicrotask: 0 };

  /** Schedules `job` (DeferredKicks' `defer`). */
  readonly defer = (job: () => void): void => {
    this.jobs.push(job);
    if (this.microtaskQueued) return;
    this.microtaskQueued = true;
    queueMicrotask(() => {
      this.microtaskQueued = false;
      this.counts.atMicrotask += this.runJobs();
    });
  };

  private held: Array<() => void> = [];

  /**
   * Schedules `job` for the next timer check only, never in this task: work that should
   * happen just before the guest runs again (frames that merge while it cannot see them).
   */
  readonly hold = (job: () => void): void => {
    this.held.push(job);
  };

  /** The emulator's timer check: run whatever is scheduled, now. */
  readonly atTimerCheck = (): void => {
    if (this.held.length > 0) {
      const held = this.held;
      this.held = [];
      for (const job of held) job();
    }
    if (this.jobs.length > 0) this.counts.atTimerCheck += this.runJobs();
  };

  private runJobs(): number {
    const jobs = this.jobs;
    this.jobs = [];
    // Each job contains its own errors (DeferredKicks reports them to its device).
    for (const job of jobs) job();
    return jobs.length;
  }
}
