/**
 * A read through a block cache: cached blocks from the slab, each run of uncached ones from
 * the medium in one call (write-back-cache.ts, write-behind/write-behind-cache.ts).
 */
import type { BlockBackend } from './block-backend.ts';

/**
 * Fill `dst` with the disk's bytes from `offset`. `slotOf(block)` names the slot holding
 * block `block` (of `blockSize` bytes at slot × blockSize in `slab`), or -1.
 */
export function readThroughCache(
  offset: number,
  dst: Uint8Array,
  blockSize: number,
  slotOf: (block: number) => number,
  slab: Uint8Array | undefined,
  medium: BlockBackend,
): void {
  const end = offset + dst.length;
  let runStart = offset;
  for (let at = offset; at < end; ) {
    const block = Math.floor(at / blockSize);
    const next = Math.min(end, (block + 1) * blockSize);
    const slot = slotOf(block);
    if (slot !== -1) {
      if (runStart < at) medium.read(runStart, dst.subarray(runStart - offset, at - offset));
      const from = slot * blockSize + (at - block * blockSize);
      dst.set(slab!.subarray(from, from + (next - at)), at - offset);
      runStart = next;
    }
    at = next;
  }
  if (runStart < end) medium.read(runStart, dst.subarray(runStart - offset));
}
