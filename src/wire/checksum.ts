/**
 * The Internet checksum (RFC 1071), the one implementation in the lab: the NIC completes and
 * verifies checksums with it on every frame (VIRTIO_NET_F_CSUM, GUEST_CSUM, TSO), the
 * relay's gateway checks and fills them, the builders here fill them.
 *
 * Hot path: plain loops over a byte range, no allocation, no closures, no subarray.
 * A "sum" is an unfolded 32-bit accumulation; fold it with foldSum, complement it with
 * checksumOf. Data with a correct checksum in it folds to 0xffff (sumVerifies).
 */

/** 32-bit accumulation of big-endian 16-bit words of bytes[start, end) (odd tail padded). */
export function onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) {
    sum += (bytes[i] << 8) | bytes[i + 1];
    // Fold early so the accumulator never leaves the exact-integer range.
    if (sum > 0x7fffffff) sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (i < end) sum += bytes[i] << 8;
  return sum;
}

/** Fold a sum to 16 bits (ones' complement addition), not inverted. */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field value for data summing to `sum`. */
export function checksumOf(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/**
 * Whether bytes[start, end), checksum field included, plus `initial` sum correctly. For
 * parsers; per-frame NIC code writes foldSum(onesSum(…)) === 0xffff (faster, measured).
 */
export function sumVerifies(bytes: Uint8Array, start: number, end: number, initial = 0): boolean {
  return foldSum(onesSum(bytes, start, end, initial)) === 0xffff;
}

/** The checksum of all of `data`, with `initial` as a partial sum (e.g. a pseudo-header). */
export function internetChecksum(data: Uint8Array, initial = 0): number {
  return checksumOf(onesSum(data, 0, data.length, initial));
}

/**
 * Sum of the TCP/UDP IPv4 pseudo-header (RFC 793 / RFC 768): addresses, protocol and the
 * L4 length. Unfolded (at most ~6 × 0xffff), ready to be onesSum's `sum`.
 */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/** True if a TCP/UDP segment (header + payload, checksum field included) sums correctly. */
export function verifyTransportChecksum(src: number, dst: number, protocol: number, segment: Uint8Array): boolean {
  return sumVerifies(segment, 0, segment.length, pseudoHeaderSum(src, dst, protocol, segment.length));
}
