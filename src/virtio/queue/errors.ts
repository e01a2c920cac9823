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

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * The queue-configuration check both layouts make before a queue is built: a ring area of
 * `len` bytes at `addr` must be `align`-aligned (§2.7 table, §2.8.10.1) and inside guest RAM.
 */
export function requireRingArea(index: number, ramSize: number, what: string, addr: number, len: number, align: number): void {
  if (addr % align !== 0) throw new VirtqueueError(index, `${what} at ${hex(addr)} is not ${align}-byte aligned`);
  if (addr + len > ramSize) {
    throw new VirtqueueError(index, `${what} [${hex(addr)}, +${len}) is outside guest RAM (${hex(ramSize)} bytes)`);
  }
}

/**
 * The reason a queue breaks for something unexpected caught in its ring walk (a host memory
 * error despite our checks). A VirtqueueError, already reported, is rethrown as it is.
 */
export function unexpectedReason(error: unknown): string {
  if (error instanceof VirtqueueError) throw error;
  return `unexpected ${error instanceof Error ? error.message : String(error)}`;
}
