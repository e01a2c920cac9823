/**
 * When tx chains are served: in passes of bounded work (budget.ts). A kick runs a pass inside
 * the notify write, or later through `defer` (a burst of sends then costs one exit); a pass
 * that spends its budget with chains still pending leaves them to another pass on a later
 * task, with kicks suppressed meanwhile (§2.7.10: the device may ask not to be notified), so
 * one guest burst never holds the worker for long.
 *
 * Unlike virtio/deferred-kicks.ts (which repeats a drain in the same task while chains
 * remain), a pass over budget hands the rest to `later`.
 */
import type { DeviceContext } from '../../virtio/device.ts';
import { PendingJob, type Scheduler } from '../../virtio/pending-job.ts';
import type { Virtqueue } from '../../virtio/queue/virtqueue.ts';

/** Serve a pass; true when it stopped at its budget with chains left. */
export type TxPass = () => boolean;

export class TxPasses {
  private readonly job = new PendingJob();
  /** A kick was served at once since `defer` last ran: kicks now are deferred. */
  private burst = false;

  /**
   * `defer`: where kicks are served (undefined: inside the notify write). `later`: where a
   * pass that spent its budget continues — in the lab a macrotask, so the emulator runs in
   * between; default `defer`, else a microtask. `firstAtOnce` (with `defer`): the first kick
   * since `defer` last ran is served inside the notify write, so a lone send (a ping) leaves
   * without waiting for the emulator's next timer check; the kicks after it until then are
   * deferred, so a burst costs two exits instead of one.
   */
  constructor(
    private readonly defer: Scheduler | undefined,
    private readonly later: Scheduler = defer ?? queueMicrotask,
    private readonly firstAtOnce = false,
  ) {}

  /** A kick: serve now or schedule, once however many kicks arrive meanwhile. */
  kick(ctx: DeviceContext, queue: Virtqueue, pass: TxPass): void {
    if (this.job.pending) return;
    if (this.defer && (!this.firstAtOnce || this.burst)) return this.schedule(ctx, queue, pass, this.defer);
    if (this.defer) {
      this.burst = true;
      this.defer(() => (this.burst = false));
    }
    // A ring violation throws out of here to the transport, which resets the device.
    if (pass()) this.schedule(ctx, queue, pass, this.later);
  }

  /** A pass is scheduled and has not run yet. */
  get pending(): boolean {
    return this.job.pending;
  }

  /** Run the scheduled pass now, if any (see PendingJob.runNow); returns whether one ran. */
  runNow(): boolean {
    return this.job.runNow();
  }

  /** The device was reset: a scheduled pass must not run, and the next kick starts anew. */
  cancel(): void {
    this.job.cancel();
  }

  private schedule(ctx: DeviceContext, queue: Virtqueue, pass: TxPass, via: Scheduler): void {
    queue.disableNotifications();
    this.job.post(via, () => {
      // After a reset the old context is inert and no longer hands out this queue.
      if (ctx.queue(queue.index) !== queue) return;
      try {
        if (pass()) return this.schedule(ctx, queue, pass, this.later);
        // Re-enabling reports chains that arrived while kicks were off: another pass.
        if (queue.live && queue.enableNotifications()) this.schedule(ctx, queue, pass, this.defer ?? this.later);
      } catch (error) {
        // Outside the BAR handler nobody else catches: report (once) and stop, never throw.
        ctx.fail(error);
      }
    });
  }
}
