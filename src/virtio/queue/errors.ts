/**
 * A guest broke the virtqueue contract (bad index, address, length or chain shape).
 * The message is the decoded reason ("queue 0: descriptor 7: next 300 ≥ queue size 256");
 * the queue that raised it is broken from then on.
 */
export class VirtqueueError extends Error {
  constructor(
    readonly queueIndex: number,
    readonly reason: string,
  ) {
    super(`queue ${queueIndex}: ${reason}`);
    this.name = 'VirtqueueError';
  }
}
