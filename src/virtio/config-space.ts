/**
 * A device config space backed by bytes, so devices describe their config as a struct
 * and get every access width (including byte-split accesses) right for free.
 */
import type { AccessWidth } from './bus.ts';

export class ConfigSpace {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;

  /**
   * @param writable which byte offsets the driver may write (most config is read-only);
   * @param onWrite told after a driver write changed bytes [offset, offset+width).
   */
  constructor(
    size: number,
    private readonly writable: (offset: number) => boolean = () => false,
    private readonly onWrite: (offset: number, width: number) => void = () => {},
  ) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
  }

  get size(): number {
    return this.bytes.length;
  }

  read(offset: number, width: AccessWidth): number {
    let value = 0;
    for (let i = width - 1; i >= 0; i--) value = value * 256 + (this.bytes[offset + i] ?? 0);
    return value;
  }

  /** Driver write: only bytes marked writable change. */
  write(offset: number, width: AccessWidth, value: number): void {
    let changed = false;
    for (let i = 0; i < width; i++) {
      const at = offset + i;
      if (at < this.size && this.writable(at)) {
        this.bytes[at] = (value >>> (8 * i)) & 0xff;
        changed = true;
      }
    }
    if (changed) this.onWrite(offset, width);
  }

  // Device-side setters (not subject to `writable`).
  setU8(offset: number, v: number): void {
    this.dv.setUint8(offset, v);
  }
  setU16(offset: number, v: number): void {
    this.dv.setUint16(offset, v, true);
  }
  setU32(offset: number, v: number): void {
    this.dv.setUint32(offset, v >>> 0, true);
  }
  setU64(offset: number, v: bigint): void {
    this.dv.setBigUint64(offset, v, true);
  }
  getU8(offset: number): number {
    return this.dv.getUint8(offset);
  }
  getU16(offset: number): number {
    return this.dv.getUint16(offset, true);
  }
  getU32(offset: number): number {
    return this.dv.getUint32(offset, true);
  }
}
