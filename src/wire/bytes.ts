/**
 * Big-endian field access on byte arrays, for the parsers and builders of this folder.
 * Reads return 0 past the end (missing bytes are undefined, `| 0`-ed away): callers check
 * lengths first, so this only keeps a bug from turning into NaN.
 */

export function readU16(b: Uint8Array, offset: number): number {
  return (b[offset] << 8) | b[offset + 1];
}

export function readU32(b: Uint8Array, offset = 0): number {
  return ((b[offset] << 24) | (b[offset + 1] << 16) | (b[offset + 2] << 8) | b[offset + 3]) >>> 0;
}

export function writeU16(b: Uint8Array, offset: number, value: number): void {
  b[offset] = value >>> 8;
  b[offset + 1] = value & 0xff;
}

export function writeU32(b: Uint8Array, offset: number, value: number): void {
  b[offset] = value >>> 24;
  b[offset + 1] = (value >>> 16) & 0xff;
  b[offset + 2] = (value >>> 8) & 0xff;
  b[offset + 3] = value & 0xff;
}

/** A 32-bit number as 4 big-endian bytes (DHCP option values, DNS A records). */
export function u32Bytes(n: number): Uint8Array {
  const b = new Uint8Array(4);
  writeU32(b, 0, n >>> 0);
  return b;
}
