/**
 * The Internet checksum (RFC 1071), the one implementation in the lab: the NIC completes and
 * verifies checksums with it on every frame (VIRTIO_NET_F_CSUM, GUEST_CSUM, TSO), the
 * relay's gateway checks and fills them, the builders here fill them.
 *
 * Hot path: plain loops over a byte range, no allocation, no closures, no subarray.
 * A "sum" is an unfolded 32-bit accumulation; fold it with foldSum, complement it with
 * checksumOf. Data with a correct checksum in it folds to 0xffff (sumVerifies).
 */

/** Below this many bytes the plain byte loop wins over setting up the word view. */
const WORD_SUM_MIN_BYTES = 128;
/** 32-bit words summed (two 16-bit lanes each) before a fold: 16 384 × 2 × 0xffff < 2^31. */
const WORD_SUM_CHUNK = 16_384;
/** The word loop reads little-endian lanes; on a big-endian host the byte loop does it all. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * 32-bit accumulation of big-endian 16-bit words of bytes[start, end) (odd tail padded).
 * Long ranges are summed four bytes at a time through an aligned Uint32Array (3× the byte
 * loop on a 64 KiB frame, measured): ones' complement addition is byte-order independent
 * (RFC 1071 §2(B)), so the little-endian lanes are summed and the folded result swapped
 * back, or not swapped when the aligned words start on the odd byte of a checksum word.
 */
export function onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  if (end - start < WORD_SUM_MIN_BYTES || !LITTLE_ENDIAN) return onesSumBytes(bytes, start, end, sum);
  // Keeps the result under 2^32 (foldSum's >>> range) however many calls chain their sums.
  if (sum > 0x7fffffff) sum = (sum & 0xffff) + (sum >>> 16);
  let i = start;
  // Head: single bytes until the address is 4-aligned; an even offset from start is a high byte.
  for (; (bytes.byteOffset + i) & 3; i++) sum += (i - start) & 1 ? bytes[i] : bytes[i] << 8;
  const count = (end - i) >>> 2;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + i, count);
  let lanes = 0;
  for (let k = 0; k < count; ) {
    const stop = Math.min(count, k + WORD_SUM_CHUNK);
    let acc = 0;
    for (; k < stop; k++) {
      const w = words[k];
      acc += (w & 0xffff) + (w >>> 16);
    }
    lanes = foldSum(lanes + acc);
  }
  // Lanes aligned with checksum words hold them byte-swapped; offset by one byte they do not.
  sum += (i - start) & 1 ? lanes : ((lanes & 0xff) << 8) | (lanes >>> 8);
  i += count * 4;
  for (; i < end; i++) sum += (i - start) & 1 ? bytes[i] : bytes[i] << 8;
  return sum;
}

/** onesSum one word at a time: short ranges, and the reference the word loop is tested against. */
export function onesSumBytes(bytes: Uint8Array, start: number, end: number, sum = 0): number {
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
