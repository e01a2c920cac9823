import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { SnapshotError } from './snapshot-error.ts';
import {
  encodeSparseDisk,
  encodeSparseDiskSync,
  parseSparseDisk,
  restoreSparseDisk,
  restoreSparseDiskSync,
  restoreWrites,
  SPARSE_DEFAULTS,
  type DiskSink,
  type DiskSource,
} from './sparse-disk.ts';
import { diskCaseArb, MemoryDiskSource } from './testing/snapshot-arbitraries.ts';
import { concatPieces } from './format.ts';
import { zstdWork } from './zstd.ts';
import { loadZstd } from './zstd-node.ts';

const zstd = await loadZstd();
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function kindOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof SnapshotError) return e.kind;
    throw e;
  }
  return 'none';
}

/** A sink that records its writes into a buffer (async when asked). */
class RecordingSink implements DiskSink {
  writes: Array<[number, number]> = [];
  truncatedTo: number | undefined;
  bytes: Uint8Array;
  constructor(
    size: number,
    readonly async = false,
    withTruncate = false,
  ) {
    this.bytes = new Uint8Array(size).fill(0xff);
    if (withTruncate) {
      this.truncate = (n: number) => {
        this.truncatedTo = n;
        this.bytes = new Uint8Array(n).fill(0xff);
      };
    }
  }
  truncate?: (n: number) => void;
  get size(): number {
    return this.bytes.length;
  }
  write(offset: number, src: Uint8Array): void | Promise<void> {
    this.writes.push([offset, src.length]);
    this.bytes.set(src, offset);
    return this.async ? Promise.resolve() : undefined;
  }
}

/** Incompressible bytes (xorshift32). */
function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('sparse disk section', () => {
  it('round-trips random sparse disks of any size, sync and async, writing every byte (zeros too)', async () => {
    await fc.assert(
      fc.asyncProperty(diskCaseArb(2 * MiB), async ({ bytes, blockSize, blocksPerChunk, async }) => {
        const source = new MemoryDiskSource(bytes, async);
        const opts = { blockSize, blocksPerChunk };
        const section = concatPieces(async ? await encodeSparseDisk(source, zstd, opts) : encodeSparseDiskSync(source, zstd, opts));
        expect(source.largestRead).toBeLessThanOrEqual(MiB);
        const disk = parseSparseDisk(section, bytes.length);
        let nonZeroBlocks = 0;
        for (let at = 0; at < bytes.length; at += blockSize) if (bytes.subarray(at, at + blockSize).some((b) => b !== 0)) nonZeroBlocks++;
        expect(disk.storedBlocks).toBe(nonZeroBlocks);
        // The sink starts all 0xff: only writing the zero blocks too makes it equal.
        const sink = new RecordingSink(bytes.length, async);
        if (async) await restoreSparseDisk(disk, sink, zstd);
        else restoreSparseDiskSync(disk, sink, zstd);
        expect(Buffer.compare(sink.bytes, bytes)).toBe(0);
        let covered = 0;
        for (const [offset, length] of sink.writes) {
          expect(offset).toBe(covered);
          covered += length;
        }
        expect(covered).toBe(bytes.length);
      }),
      { numRuns: 60 },
    );
  });

  it('restores into a BlockBackend (the worker hands OPFS and memory disks as sinks and sources)', () => {
    const from = new MemoryBlockBackend(3 * MiB + 512);
    from.bytes.fill(7, 100, 70_000);
    from.bytes[from.bytes.length - 1] = 1;
    const to = new MemoryBlockBackend(from.size);
    to.bytes.fill(0xaa);
    const disk = parseSparseDisk(concatPieces(encodeSparseDiskSync(from, zstd)), from.size);
    expect(disk.storedBlocks).toBe(3); // two 64 KiB blocks at the start, the short last one
    restoreSparseDiskSync(disk, to, zstd);
    expect(Buffer.compare(to.bytes, from.bytes)).toBe(0);
    // Zeros merge: data, ~3 MiB of zeros in 1 MiB pieces, data.
    expect(to.counts.write).toBeLessThanOrEqual(6);
  });

  it('a 4 GiB disk: read 1 MiB at a time, a small section, restored without holding the disk', () => {
    const size = 4 * GiB + 512;
    const marks = new Map<number, number>([
      [0, 1],
      [123 * MiB + 5, 2],
      [3 * GiB, 3],
      [size - 1, 4],
    ]);
    const byteAt = (offset: number) => marks.get(offset) ?? 0;
    let reads = 0;
    let largest = 0;
    const source: DiskSource = {
      size,
      read(offset, dst) {
        reads++;
        largest = Math.max(largest, dst.length);
        dst.fill(0);
        for (const [at, v] of marks) if (at >= offset && at < offset + dst.length) dst[at - offset] = v;
      },
    };
    const section = concatPieces(encodeSparseDiskSync(source, zstd));
    expect(largest).toBe(MiB);
    expect(reads).toBe(Math.ceil(size / MiB));
    expect(section.length).toBeLessThan(16 * KiB); // 8 KiB bitmap + four tiny chunks
    const disk = parseSparseDisk(section, size);
    expect(disk.storedBlocks).toBe(4);

    const largestBefore = zstdWork.largest;
    zstdWork.largest = 0;
    let covered = 0;
    let writes = 0;
    for (const { offset, src } of restoreWrites(disk, zstd)) {
      expect(offset).toBe(covered);
      expect(src.length).toBeLessThanOrEqual(MiB);
      for (const [at, v] of marks) if (at >= offset && at < offset + src.length) expect(src[at - offset]).toBe(v);
      covered += src.length;
      writes++;
    }
    expect(covered).toBe(size);
    expect(writes).toBeLessThan(4200); // ~4096 zero pieces, not 65537 blocks
    expect(zstdWork.largest).toBeLessThanOrEqual(SPARSE_DEFAULTS.blockSize * SPARSE_DEFAULTS.blocksPerChunk);
    zstdWork.largest = Math.max(largestBefore, zstdWork.largest);
  }, 60_000);

  it("refuses ('too-large') a disk whose data is over the limit, without reading all of it", () => {
    const bytes = noise(4 * MiB);
    const source = new MemoryDiskSource(bytes);
    expect(kindOf(() => encodeSparseDiskSync(source, zstd, { maxLength: MiB }))).toBe('too-large');
    expect(source.reads).toBeLessThan(4);
    try {
      encodeSparseDiskSync(new MemoryDiskSource(bytes), zstd, { maxLength: MiB });
    } catch (e) {
      expect((e as Error).message).toMatch(/more than 1\.0 MiB even compressed.*without its disk/);
    }
  });

  it('truncates a sink of another size when it can, refuses it when it cannot', async () => {
    const bytes = new Uint8Array(10 * KiB).fill(5);
    const disk = parseSparseDisk(concatPieces(encodeSparseDiskSync(new MemoryDiskSource(bytes), zstd)), bytes.length);
    const growable = new RecordingSink(512, false, true);
    await restoreSparseDisk(disk, growable, zstd);
    expect(growable.truncatedTo).toBe(bytes.length);
    expect(Buffer.compare(growable.bytes, bytes)).toBe(0);
    await expect(restoreSparseDisk(disk, new RecordingSink(512), zstd)).rejects.toThrow(RangeError);
    expect(() => restoreSparseDiskSync(disk, new RecordingSink(bytes.length, true), zstd)).toThrow(/promise/);
  });

  describe('parseSparseDisk refuses a damaged index', () => {
    const bytes = new Uint8Array(40 * KiB + 512);
    bytes.fill(9, 0, 5000);
    bytes.fill(8, 20 * KiB, 21 * KiB);
    const opts = { blockSize: 4 * KiB, blocksPerChunk: 1 };
    const section = concatPieces(encodeSparseDiskSync(new MemoryDiskSource(bytes), zstd, opts));
    const blockCount = Math.ceil(bytes.length / opts.blockSize); // 11: bitmap of 2 bytes
    const edit = (f: (s: Uint8Array, v: DataView) => void) => {
      const s = section.slice();
      f(s, new DataView(s.buffer));
      return s;
    };

    it('accepts the original', () => {
      expect(parseSparseDisk(section, bytes.length)).toMatchObject({ storedBlocks: 3, chunkCount: 3, blockSize: 4096 });
    });

    const cases: Array<[string, Uint8Array, number?]> = [
      ['a block size that is not a power of two', edit((_, v) => v.setUint32(0, 5000, true))],
      ['a block size under 4 KiB', edit((_, v) => v.setUint32(0, 2048, true))],
      ['chunks over 4 MiB', edit((_, v) => v.setUint32(4, 1025, true))],
      ['another disk size', section, bytes.length + 512],
      ['a disk size ≥ 2^52', edit((_, v) => v.setUint32(12, 2 ** 21, true))],
      ['more stored blocks than the disk has', edit((_, v) => v.setUint32(16, blockCount + 1, true))],
      ['a chunk count that does not fit the blocks', edit((_, v) => v.setUint32(20, 2, true))],
      ['a bitmap bit past the last block', edit((s) => (s[24 + 1] |= 0x80))],
      ['a bitmap that disagrees with storedBlocks', edit((s) => (s[24] |= 0x80))],
      ['a chunk running past the section', edit((_, v) => v.setUint32(26, 0xffffffff, true))],
      ['a chunk holding another size', edit((_, v) => v.setUint32(26, v.getUint32(26, true) - 1, true))],
      ['bytes after the last chunk', Uint8Array.of(...section, 0)],
      ['a section shorter than its index', section.subarray(0, 20)],
    ];
    // Twelve full blocks, the last one stored, claimed to be a disk of eleven: everything else
    // adds up, only the bitmap's bit past the end gives the extra block away.
    const twelve = new Uint8Array(12 * 4 * KiB);
    twelve[0] = 1;
    twelve[twelve.length - 1] = 1;
    const smuggled = concatPieces(encodeSparseDiskSync(new MemoryDiskSource(twelve), zstd, { blockSize: 4 * KiB, blocksPerChunk: 16 }));
    new DataView(smuggled.buffer).setUint32(8, 11 * 4 * KiB, true);
    cases.push(['a stored block past the end of the disk', smuggled, 11 * 4 * KiB]);

    for (const [what, s, size] of cases) {
      it(what, () => {
        expect(kindOf(() => parseSparseDisk(s, size ?? bytes.length))).toBe('corrupt');
      });
    }

    it('a chunk that passes the frame checks but does not decompress: corrupt when restored', () => {
      // Chunk 0 (4 KiB) replaced by a frame declaring 4096 bytes in one compressed block of one garbage byte.
      const first = 24 + 2 + 12;
      const oldLength = new DataView(section.buffer).getUint32(26, true);
      const bh = (1 << 3) | (2 << 1) | 1;
      const garbage = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x60, (4096 - 256) & 0xff, (4096 - 256) >> 8, bh, 0, 0, 0xff);
      const s = Uint8Array.of(...section.subarray(0, first), ...garbage, ...section.subarray(first + oldLength));
      new DataView(s.buffer).setUint32(26, garbage.length, true);
      const disk = parseSparseDisk(s, bytes.length);
      let error: unknown;
      try {
        restoreSparseDiskSync(disk, new RecordingSink(bytes.length), zstd);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SnapshotError);
      expect(error).toMatchObject({ kind: 'corrupt', message: expect.stringContaining('does not decompress') });
    });
  });
});
