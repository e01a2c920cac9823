/** Frames a synthetic guest waits for: each wait takes the first matching frame after it, or null after its timeout. */
import type { DecodedFrame } from '../../src/wire/index.ts';

interface Waiter {
  pred: (d: DecodedFrame) => boolean;
  resolve: (d: DecodedFrame | null) => void;
  timer: NodeJS.Timeout;
}

export class FrameWaiters {
  private readonly waiters: Waiter[] = [];

  get size(): number {
    return this.waiters.length;
  }

  /** The next frame matching `pred` (register before sending what provokes it), or null after `ms`. */
  next(pred: (d: DecodedFrame) => boolean, ms: number): Promise<DecodedFrame | null> {
    return new Promise((resolve) => {
      const w: Waiter = {
        pred,
        resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          resolve(null);
        }, ms),
      };
      this.waiters.push(w);
    });
  }

  /** Hands `d` to the oldest waiter it matches, if any. */
  settle(d: DecodedFrame): void {
    const i = this.waiters.findIndex((w) => w.pred(d));
    if (i < 0) return;
    const [w] = this.waiters.splice(i, 1);
    clearTimeout(w!.timer);
    w!.resolve(d);
  }
}
