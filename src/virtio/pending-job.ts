/**
 * At most one scheduled job, dropped if cancelled before it runs: the bookkeeping behind a
 * device's deferred kicks and its passes of bounded work. A reset cancels, so a job scheduled
 * by the earlier activation never touches the new one; however often a job is asked for
 * while one is pending, it runs once.
 */
export type Scheduler = (job: () => void) => void;

export class PendingJob {
  /** Generation of the scheduled job; 0 when none is. */
  private scheduled = 0;
  private generation = 0;
  /** The scheduled job itself, so runNow() can run it ahead of its scheduler. */
  private job: (() => void) | undefined;

  get pending(): boolean {
    return this.scheduled !== 0;
  }

  /** Schedule `job` through `via` unless one is pending; returns whether it did. */
  post(via: Scheduler, job: () => void): boolean {
    if (this.scheduled) return false;
    const generation = ++this.generation;
    this.scheduled = generation;
    this.job = job;
    via(() => {
      if (this.scheduled !== generation) return; // cancelled or run early, maybe rescheduled since
      this.scheduled = 0;
      this.job = undefined;
      job();
    });
    return true;
  }

  /**
   * Run the pending job now instead of when its scheduler gets to it (quiescing for a
   * snapshot: the emulator is stopped and nothing may complete later). Returns whether one ran;
   * the scheduler's call then does nothing.
   */
  runNow(): boolean {
    const job = this.job;
    if (!this.scheduled || !job) return false;
    this.scheduled = 0;
    this.job = undefined;
    job();
    return true;
  }

  /** The pending job, if any, will not run; the next post() schedules anew. */
  cancel(): void {
    this.scheduled = 0;
    this.job = undefined;
  }
}
