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

  get pending(): boolean {
    return this.scheduled !== 0;
  }

  /** Schedule `job` through `via` unless one is pending; returns whether it did. */
  post(via: Scheduler, job: () => void): boolean {
    if (this.scheduled) return false;
    const generation = ++this.generation;
    this.scheduled = generation;
    via(() => {
      if (this.scheduled !== generation) return; // cancelled, maybe rescheduled since
      this.scheduled = 0;
      job();
    });
    return true;
  }

  /** The pending job, if any, will not run; the next post() schedules anew. */
  cancel(): void {
    this.scheduled = 0;
  }
}
