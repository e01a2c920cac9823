/**
 * When tx chains are served: in passes of bounded work (budget.ts). A kick runs a pass inside
 * the notify write, or later through `defer` (a burst of sends then costs one exit); a pass
 * that spends its budget with chains still pending leaves them to another pass on a later
 * task, with kicks suppressed meanwhile (§2.7.10: the device may ask not to be notified), so
 * one guest burst never holds the worker for long.
 *
 * Like virtio/deferred-kicks.ts, plus the continuation: there, a drain is repeated in the
 * same task while chains remain.
 */
import type { DeviceContext } from '../../virtio/device.ts';
import type { Virtqueue } from '../../virtio/queue/virtqueue.ts';

/** Serve a pass; true when it stopped at its budget with chains left. */
export type TxPass = () => boolean;

export class TxPasses {
  /** Generation of the scheduled pass; 0 when none is. */
  private scheduled = 0;
  private generation = 0;

  /**
   * `defer`: where kicks are served (undefined: inside the notify write). `later`: where a
   * pass over budget continues when kicks are served inline.
   */
  constructor(
    private readonly defer: ((job: () => void) => void) | undefined,
    private readonly later: (job: () => void) => void = queueMicrotask,
  ) {}

  /** A kick: serve now or schedule, once however many kicks arrive meanwhile. */
  kick(ctx: DeviceContext, queue: Virtqueue, pass: TxPass): void {
    if (this.scheduled) return;
    if (this.defer) return this.schedule(ctx, queue, pass, this.defer);
    // A ring violation throws out of here to the transport, which resets the device.
    if (pass()) this.schedule(ctx, queue, pass, this.later);
  }

  /** The device was reset: a scheduled pass must not run, and the next kick starts anew. */
  cancel(): void {
    this.scheduled = 0;
  }

  private schedule(ctx: DeviceContext, queue: Virtqueue, pass: TxPass, defer: (job: () => void) => void): void {
    const generation = ++this.generation;
    this.scheduled = generation;
    queue.disableNotifications();
    defer(() => {
      if (this.scheduled !== generation) return; // cancelled by a reset, maybe rescheduled since
      this.scheduled = 0;
      // After a reset the old context is inert and no longer hands out this queue.
      if (ctx.queue(queue.index) !== queue) return;
      try {
        if (pass()) return this.schedule(ctx, queue, pass, this.defer ?? this.later);
        // Re-enabling reports chains that arrived while kicks were off: another pass, later.
        if (queue.live && queue.enableNotifications()) this.schedule(ctx, queue, pass, this.defer ?? this.later);
      } catch (error) {
        // Outside the BAR handler nobody else catches: report (once) and stop, never throw.
        ctx.fail(error);
      }
    });
  }
}
