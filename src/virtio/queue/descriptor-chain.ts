/**
 * What the device sees of one request: the guest buffers of a descriptor chain, already
 * validated (inside RAM, driver-readable ones first), plus cursors to move bytes in and out.
 */
import type { GuestMemory } from '../bus.ts';

/** A guest-physical buffer, known to lie inside guest RAM. */
export interface Region {
  readonly addr: number;
  readonly len: number;
}

export interface DescriptorChain {
  /** Descriptor index the driver put in the avail ring; echo it in pushUsed. */
  readonly headIndex: number;
  /** Driver-readable (device reads) buffers, in chain order. Zero-length ones are dropped. */
  readonly readable: readonly Region[];
  /** Driver-writable (device writes) buffers, in chain order. */
  readonly writable: readonly Region[];
  readonly readableLength: number;
  readonly writableLength: number;
  /** Whether the chain went through an indirect table (for the inspector). */
  readonly indirect: boolean;
}

/**
 * Sequential access across a list of regions, as if they were one buffer.
 * Short reads/writes are not errors here: the device decides what a short buffer means.
 */
export class RegionCursor {
  private regionIndex = 0;
  private offsetInRegion = 0;
  private consumed = 0;
  readonly length: number;

  constructor(
    private readonly memory: GuestMemory,
    private readonly regions: readonly Region[],
  ) {
    this.length = regions.reduce((sum, r) => sum + r.len, 0);
  }

  /** Bytes consumed so far (read, written or skipped). */
  get position(): number {
    return this.consumed;
  }

  get remaining(): number {
    return this.length - this.consumed;
  }

  /** Move up to `len` bytes forward, calling `visit` for each contiguous guest piece. */
  private advance(len: number, visit: (addr: number, len: number, done: number) => void): number {
    let done = 0;
    while (done < len && this.regionIndex < this.regions.length) {
      const region = this.regions[this.regionIndex];
      const n = Math.min(len - done, region.len - this.offsetInRegion);
      if (n > 0) visit(region.addr + this.offsetInRegion, n, done);
      done += n;
      this.offsetInRegion += n;
      if (this.offsetInRegion >= region.len) {
        this.regionIndex++;
        this.offsetInRegion = 0;
      }
    }
    this.consumed += done;
    return done;
  }

  /** Copy up to `len` bytes out of guest memory (shorter if the regions run out). */
  read(len: number): Uint8Array {
    const out = new Uint8Array(Math.max(0, Math.min(len, this.remaining)));
    this.readInto(out);
    return out;
  }

  /** Copy the next bytes of guest memory into `out` (all of it, or up to the end); returns how many. */
  readInto(out: Uint8Array): number {
    return this.advance(Math.min(out.length, this.remaining), (addr, n, done) => out.set(this.memory.view(addr, n), done));
  }

  /** Copy bytes into guest memory; returns how many fitted. Reports each piece via `written`. */
  write(bytes: Uint8Array): number {
    return this.advance(bytes.length, (addr, n, done) => {
      this.memory.view(addr, n).set(bytes.subarray(done, done + n));
      this.memory.written(addr, n);
    });
  }

  /**
   * Hand out live guest views of the next `len` bytes, e.g. to let a backend write
   * straight into guest RAM. Calls `written` for each piece after `fill` returns.
   */
  fill(len: number, fill: (view: Uint8Array) => void): number {
    return this.advance(len, (addr, n) => {
      fill(this.memory.view(addr, n));
      this.memory.written(addr, n);
    });
  }

  skip(len: number): number {
    return this.advance(len, () => {});
  }
}

/** All (or the first `maxLen`) driver-readable bytes of a chain, concatenated. */
export function gatherReadable(
  memory: GuestMemory,
  chain: DescriptorChain,
  maxLen = chain.readableLength,
): Uint8Array {
  return new RegionCursor(memory, chain.readable).read(maxLen);
}

/**
 * Scatter `bytes` into a chain's writable buffers starting `offset` bytes in.
 * Returns how many bytes were written (fewer if the buffers are too small).
 */
export function scatterWritable(
  memory: GuestMemory,
  chain: DescriptorChain,
  bytes: Uint8Array,
  offset = 0,
): number {
  const cursor = new RegionCursor(memory, chain.writable);
  cursor.skip(offset);
  return cursor.write(bytes);
}
