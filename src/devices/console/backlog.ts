/**
 * Host → guest bytes of one port waiting for the guest's receive buffers. Bounded in bytes:
 * a guest that never reads must not make the host hold an unbounded stream.
 */
export class ByteBacklog {
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes of chunks[head] already taken. */
  private offset = 0;
  private count = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.count;
  }

  /** Queue all of `bytes`, or (if they would not fit) nothing: returns whether they were queued. */
  push(bytes: Uint8Array): boolean {
    if (this.count + bytes.length > this.maxBytes) return false;
    if (bytes.length === 0) return true;
    this.chunks.push(bytes);
    this.count += bytes.length;
    return true;
  }

  /**
   * Hand out up to `max` bytes as views of the queued chunks, in order (`visit` may be called
   * several times); returns how many bytes were taken.
   */
  take(max: number, visit: (piece: Uint8Array) => void): number {
    let taken = 0;
    while (taken < max && this.head < this.chunks.length) {
      const chunk = this.chunks[this.head];
      const n = Math.min(max - taken, chunk.length - this.offset);
      visit(chunk.subarray(this.offset, this.offset + n));
      taken += n;
      this.offset += n;
      if (this.offset === chunk.length) {
        this.head++;
        this.offset = 0;
      }
    }
    this.count -= taken;
    // Compact now and then instead of Array.shift() per chunk (O(n) each).
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return taken;
  }

  /** A copy of the bytes waiting, in order (a snapshot saves them). */
  peekAll(): Uint8Array {
    const out = new Uint8Array(this.count);
    let at = 0;
    for (let i = this.head; i < this.chunks.length; i++) {
      const piece = this.chunks[i].subarray(i === this.head ? this.offset : 0);
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.count = 0;
  }
}
