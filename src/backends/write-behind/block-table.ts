/**
 * Block number → slot, for the write-behind cache: two levels of Int32Array pages created on
 * first use, so a lookup is two array reads (a Map costs several times that, 256 times per
 * 1 MiB write). Memory: 16 KiB per 4096 blocks (16 MiB of disk) that ever held a cached block,
 * plus one reference per 16 MiB of disk.
 */
const PAGE_SHIFT = 12;
const PAGE_BLOCKS = 1 << PAGE_SHIFT;
const MASK = PAGE_BLOCKS - 1;

export class BlockTable {
  private readonly pages: (Int32Array | undefined)[];
  /** Blocks with a slot. */
  size = 0;

  constructor(blocks: number) {
    this.pages = new Array<Int32Array | undefined>(Math.ceil(blocks / PAGE_BLOCKS)).fill(undefined);
  }

  /** The block's slot, or -1. */
  get(block: number): number {
    const page = this.pages[block >>> PAGE_SHIFT];
    return page === undefined ? -1 : page[block & MASK]!;
  }

  set(block: number, slot: number): void {
    let page = this.pages[block >>> PAGE_SHIFT];
    if (page === undefined) page = this.pages[block >>> PAGE_SHIFT] = new Int32Array(PAGE_BLOCKS).fill(-1);
    if (page[block & MASK] === -1) this.size++;
    page[block & MASK] = slot;
  }

  delete(block: number): void {
    const page = this.pages[block >>> PAGE_SHIFT];
    if (page === undefined || page[block & MASK] === -1) return;
    page[block & MASK] = -1;
    this.size--;
  }

  /** Calls visit(block, slot) for every block in [first, last] that has a slot. */
  forEachIn(first: number, last: number, visit: (block: number, slot: number) => void): void {
    for (let p = first >>> PAGE_SHIFT; p <= last >>> PAGE_SHIFT; p++) {
      const page = this.pages[p];
      if (page === undefined) continue;
      const from = Math.max(first, p * PAGE_BLOCKS);
      const to = Math.min(last, p * PAGE_BLOCKS + MASK);
      for (let b = from; b <= to; b++) {
        const slot = page[b & MASK]!;
        if (slot !== -1) visit(b, slot);
      }
    }
  }
}
