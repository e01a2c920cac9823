/**
 * Frames that arrived while the guest had no rx buffer posted. Bounded in frames and bytes:
 * a guest that stops reading must not make the host hold the relay's whole stream.
 */
export class FrameBacklog {
  private frames: Uint8Array[] = [];
  private head = 0;
  private byteCount = 0;

  constructor(
    readonly maxFrames: number,
    readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.frames.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** False (and nothing queued) if the frame would exceed either bound. */
  push(frame: Uint8Array): boolean {
    if (this.length + 1 > this.maxFrames || this.byteCount + frame.length > this.maxBytes) return false;
    this.frames.push(frame);
    this.byteCount += frame.length;
    return true;
  }

  peek(): Uint8Array | undefined {
    return this.frames[this.head];
  }

  /** The frame `i` places behind the oldest (0: the oldest), if that many wait. */
  at(i: number): Uint8Array | undefined {
    return i < 0 ? undefined : this.frames[this.head + i];
  }

  shift(): Uint8Array | undefined {
    if (this.head >= this.frames.length) return undefined;
    const frame = this.frames[this.head++];
    this.byteCount -= frame.length;
    // Compact now and then instead of Array.shift() per frame (O(n) each).
    if (this.head > 64 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    return frame;
  }

  /** The frames waiting, oldest first (a snapshot saves them). */
  waiting(): Uint8Array[] {
    return this.frames.slice(this.head);
  }

  clear(): void {
    this.frames = [];
    this.head = 0;
    this.byteCount = 0;
  }
}
