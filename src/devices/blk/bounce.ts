/**
 * One reusable buffer to move a multi-piece request in a single backend call. A 1 MiB
 * request from Linux arrives as ~256 scattered 4 KiB guest pages; 256 SyncAccessHandle
 * writes cost 30–80× one 1 MiB write in Chromium 156, while gathering into this buffer is
 * one memcpy (and no allocation: a fresh buffer per request costs more than the copy).
 */
export const BOUNCE_MAX_BYTES = 4 << 20;

export class BounceBuffer {
  private buf = new Uint8Array(0);

  constructor(readonly maxBytes = BOUNCE_MAX_BYTES) {}

  /** `len` bytes of scratch, or undefined over the cap (the caller then goes piece by piece). */
  take(len: number): Uint8Array | undefined {
    if (len > this.maxBytes) return undefined;
    if (this.buf.length < len) this.buf = new Uint8Array(Math.min(this.maxBytes, Math.max(len, this.buf.length * 2, 64 << 10)));
    return this.buf.subarray(0, len);
  }
}
