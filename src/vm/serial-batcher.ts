/**
 * Collects console bytes and hands them on in batches: v86 emits one event per byte and a
 * postMessage per byte costs more than the byte (unbatched: ~11 KB/s; docs/design.md).
 */
export class SerialBatcher {
  private buf = new Uint8Array(4096);
  private len = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly sink: (bytes: Uint8Array) => void,
    /** How long a byte may wait for company, ms. */
    private readonly delayMs = 4,
  ) {}

  push(byte: number): void {
    if (this.len === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.len++] = byte;
    if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.delayMs);
  }

  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.len === 0) return;
    const out = this.buf.slice(0, this.len);
    this.len = 0;
    this.sink(out);
  }
}
