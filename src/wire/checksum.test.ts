import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checksumOf, foldSum, internetChecksum, onesSum, onesSumBytes, pseudoHeaderSum, sumVerifies, verifyTransportChecksum } from './checksum.ts';

/** The 16-bit big-endian words of `b` (odd tail padded with a zero byte), as BigInts. */
function words(b: Uint8Array): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(BigInt(b[i] * 256 + (b[i + 1] ?? 0)));
  return out;
}

describe('internet checksum', () => {
  it('matches the RFC 1071 example', () => {
    // RFC 1071 section 3: 0001 f203 f4f5 f6f7 → sum ddf2, checksum 220d
    const data = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(foldSum(onesSum(data, 0, data.length))).toBe(0xddf2);
    expect(internetChecksum(data)).toBe(0x220d);
  });

  it('handles odd lengths', () => {
    expect(internetChecksum(new Uint8Array([0xff]))).toBe(0x00ff);
  });

  it('is the word sum modulo 65535 (RFC 1071 2(B)), for any data, odd lengths and large sums', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70000, size: 'max' }), (data) => {
        const total = words(data).reduce((a, w) => a + w, 0n);
        const folded = foldSum(onesSum(data, 0, data.length));
        // Ones' complement has two zeros: a nonzero total folds to 1..0xffff, never 0.
        expect(folded).toBe(total === 0n ? 0 : Number((total - 1n) % 0xffffn) + 1);
      }),
      { numRuns: 60 },
    );
  });

  it('data with its checksum in it verifies; any flipped bit breaks that', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 1600 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (data, at, bit) => {
        data[0] = data[1] = 0;
        const c = checksumOf(onesSum(data, 0, data.length));
        data[0] = c >>> 8;
        data[1] = c & 0xff;
        expect(sumVerifies(data, 0, data.length)).toBe(true);
        data[at % data.length] ^= 1 << bit;
        expect(sumVerifies(data, 0, data.length)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('sums over a range equal the sum over the subarray', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.nat(), fc.nat(0xffff), (data, a, b, initial) => {
        const start = a % (data.length + 1);
        const end = start + (b % (data.length - start + 1));
        expect(foldSum(onesSum(data, start, end, initial))).toBe(foldSum(onesSum(data.subarray(start, end), 0, end - start, initial)));
      }),
    );
  });

  it('pseudo-header sum is the sum of the 12-byte pseudo-header', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(255), fc.nat(0xffff), (src, dst, protocol, length) => {
        const ph = Uint8Array.of(src >>> 24, src >>> 16, src >>> 8, src, dst >>> 24, dst >>> 16, dst >>> 8, dst, 0, protocol, length >>> 8, length);
        expect(foldSum(pseudoHeaderSum(src, dst, protocol, length))).toBe(foldSum(onesSum(ph, 0, 12)));
      }),
    );
  });

  it('verifyTransportChecksum covers the addresses', () => {
    const seg = new Uint8Array(9).fill(3);
    seg[6] = seg[7] = 0;
    const c = internetChecksum(seg, pseudoHeaderSum(1, 2, 17, seg.length));
    seg[6] = c >>> 8;
    seg[7] = c & 0xff;
    expect(verifyTransportChecksum(1, 2, 17, seg)).toBe(true);
    expect(verifyTransportChecksum(1, 3, 17, seg)).toBe(false);
    expect(verifyTransportChecksum(1, 2, 6, seg)).toBe(false);
  });
});

describe('onesSum word loop', () => {
  it('folds to what the byte loop does, at any alignment, length, start parity and initial sum', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000, size: 'max' }), fc.nat(7), fc.nat(), fc.nat(), fc.nat(0x7fffffff), (data, shift, a, b, initial) => {
        // A view at every byte offset of its buffer, so the aligned words start anywhere.
        const buf = new Uint8Array(data.length + 8);
        const view = buf.subarray(shift, shift + data.length);
        view.set(data);
        const start = a % (data.length + 1);
        const end = start + (b % (data.length - start + 1));
        expect(foldSum(onesSum(view, start, end, initial))).toBe(foldSum(onesSumBytes(view, start, end, initial)));
      }),
      { numRuns: 500 },
    );
  });

  it('sums all-0xff frames past the chunk size without overflowing', () => {
    const data = new Uint8Array(70_001).fill(0xff);
    expect(foldSum(onesSum(data, 1, data.length, 0xffffffff >>> 1))).toBe(foldSum(onesSumBytes(data, 1, data.length, 0xffffffff >>> 1)));
    expect(foldSum(onesSum(data, 0, 65_536))).toBe(0xffff);
  });

  it('chained sums stay in range', () => {
    const data = new Uint8Array(4096).fill(0xfe);
    let fast = 0;
    let slow = 0;
    for (let k = 0; k < 3000; k++) {
      fast = onesSum(data, k & 3, data.length, fast);
      slow = onesSumBytes(data, k & 3, data.length, slow);
    }
    expect(fast).toBeLessThan(2 ** 32);
    expect(foldSum(fast)).toBe(foldSum(slow));
  });
});
