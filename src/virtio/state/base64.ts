/**
 * Bytes in a JSON state as base64 (a third more than the bytes, against hex's double), with
 * btoa/atob, which both the browser worker and Node have.
 */

/** Characters of base64 for `bytes` bytes (with padding). */
export function base64Length(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  // Pieces, so String.fromCharCode never gets more arguments than the engine allows.
  for (let at = 0; at < bytes.length; at += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  }
  return btoa(binary);
}

/** The bytes, or undefined when `text` is not canonical padded base64. */
export function base64ToBytes(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    return undefined;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
