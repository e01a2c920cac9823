/**
 * Fresh byte ranges for frames, carved from shared buffers instead of one ArrayBuffer each.
 *
 * Why: a typed array over 64 bytes gets its own off-heap ArrayBuffer, and V8 counts those
 * as external memory, which schedules garbage collections. In the VM's worker during an
 * upload, `new Uint8Array(frameLength)` for each tx frame measured 30–80 µs on average
 * (with the collections it brought on), more than the rest of the NIC's tx path together.
 *
 * A range stays valid for as long as anyone holds it (it is never handed out twice): a slab
 * lives until the last frame cut from it is dropped, so a holder of one frame keeps at most
 * one slab alive. Whoever takes a range must never use `.buffer` as the frame: it is the slab.
 *
 * Fresh memory has a cost of its own: in a Chromium worker on the bench machine, the first
 * write to newly allocated bytes cost ~5 µs per KiB (page faults), against ~0.02 µs per KiB
 * to copy into bytes written before. When every holder is known to be done with the ranges
 * (they copied what they keep), rewind() hands the same slab out again.
 */
export class ByteSlab {
  private slab = new Uint8Array(0);
  private at = 0;

  /**
   * @param slabBytes the size of each shared buffer
   * @param ownBytes ranges longer than this get a buffer of their own (a few per slab would
   *   gain little and pin more)
   */
  constructor(
    private readonly slabBytes = 256 * 1024,
    private readonly ownBytes = slabBytes / 4,
  ) {}

  /** `length` bytes nobody else holds: zeroed, unless rewind() gave them back for reuse. */
  take(length: number): Uint8Array {
    if (length > this.ownBytes) return new Uint8Array(length);
    if (this.at + length > this.slab.length) {
      this.slab = new Uint8Array(this.slabBytes);
      this.at = 0;
    }
    const out = this.slab.subarray(this.at, this.at + length);
    // 8-aligned starts keep the checksum's word loop on its fast path.
    this.at = (this.at + length + 7) & ~7;
    return out;
  }

  /** Every range taken so far is dead: the next ones reuse the current slab from its start. */
  rewind(): void {
    this.at = 0;
  }
}
