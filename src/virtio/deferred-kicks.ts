/**
 * Serving a queue's kicks later instead of inside the notify write (e.g. at the end of the
 * emulator's time slice). While a drain is scheduled the driver is asked not to kick, so a
 * guest that keeps queueing fills the ring and one kick + one interrupt covers the batch.
 * Shared by every device that defers (blk requests, console ports).
 */
import type { DeviceContext } from './device.ts';
import { PendingJob, type Scheduler } from './pending-job.ts';
import type { Virtqueue } from './queue/virtqueue.ts';

export class DeferredKicks {
  private readonly job = new PendingJob();

  constructor(private readonly defer: Scheduler) {}

  /** Drain `queue` soon (once, however many kicks arrive meanwhile). */
  schedule(ctx: DeviceContext, queue: Virtqueue, drain: () => void): void {
    if (this.job.pending) return;
    queue.disableNotifications();
    this.job.post(this.defer, () => {
      // After a reset the old context is inert and no longer hands out this queue.
      if (ctx.queue(queue.index) !== queue) return;
      try {
        // Re-enabling reports chains that arrived while kicks were off: serve those too.
        do drain();
        while (queue.live && ctx.queue(queue.index) === queue && queue.enableNotifications());
      } catch (error) {
        // Outside the BAR handler nobody else catches: report (once) and stop, never throw.
        ctx.fail(error);
      }
    });
  }

  /** A drain is scheduled and has not run yet. */
  get pending(): boolean {
    return this.job.pending;
  }

  /** Run the scheduled drain now, if any (see PendingJob.runNow); returns whether one ran. */
  runNow(): boolean {
    return this.job.runNow();
  }

  /** The device was reset: a scheduled drain must not run, and the next kick schedules anew. */
  cancel(): void {
    this.job.cancel();
  }
}
