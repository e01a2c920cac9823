/**
 * A device config space backed by bytes, so devices describe their config as a struct
 * and get every access width (including byte-split accesses) right for free.
 */
import type { AccessWidth } from './bus.ts';

export class ConfigSpace {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private deviceChangeListener: (() => void) | undefined;
  /** Inside a driver write: what the device sets there is part of that write, not a change of its own. */
  private inDriverWrite = false;

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
    if (!changed) return;
    this.inDriverWrite = true;
    try {
      this.onWrite(offset, width);
    } finally {
      this.inDriverWrite = false;
    }
  }

  /**
   * Be told whenever a device-side setter changes a byte (the transport: config_generation
   * and the config-change interrupt, §4.1.4.3.1, §4.1.5.4), at any time, even before the driver
   * is done. One listener; a later call replaces it.
   */
  onDeviceChange(listener: (() => void) | undefined): void {
    this.deviceChangeListener = listener;
  }

  // Device-side setters (not subject to `writable`); each reports a change of the bytes.
  setU8(offset: number, v: number): void {
    const before = this.dv.getUint8(offset);
    this.dv.setUint8(offset, v);
    this.changedFrom(before !== this.dv.getUint8(offset));
  }
  setU16(offset: number, v: number): void {
    const before = this.dv.getUint16(offset, true);
    this.dv.setUint16(offset, v, true);
    this.changedFrom(before !== this.dv.getUint16(offset, true));
  }
  setU32(offset: number, v: number): void {
    const before = this.dv.getUint32(offset, true);
    this.dv.setUint32(offset, v >>> 0, true);
    this.changedFrom(before !== this.dv.getUint32(offset, true));
  }
  setU64(offset: number, v: bigint): void {
    const before = this.dv.getBigUint64(offset, true);
    this.dv.setBigUint64(offset, v, true);
    this.changedFrom(before !== this.dv.getBigUint64(offset, true));
  }

  private changedFrom(changed: boolean): void {
    if (changed && !this.inDriverWrite) this.deviceChangeListener?.();
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
