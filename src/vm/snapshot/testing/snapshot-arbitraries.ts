/**
 * Random state-file contents (fast-check) for the unit tests and the fuzz campaign: meta of
 * every shape the format allows, v86-state-like bytes (zero runs, noise, repeats), device
 * JSON, and sparse disks of any size (not only multiples of the block size).
 */
import fc from 'fast-check';
import { DISK_NAME } from '../../../disks/disk-names.ts';
import type { SnapshotParts } from '../format.ts';
import { SNAPSHOT_LIMITS } from '../meta.ts';
import type { DiskSource } from '../sparse-disk.ts';

const KiB = 1024;

/** A disk in memory, read through a sync or an async `read`. */
export class MemoryDiskSource implements DiskSource {
  reads = 0;
  largestRead = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly async = false,
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  read(offset: number, dst: Uint8Array): void | Promise<void> {
    if (offset < 0 || offset + dst.length > this.bytes.length) throw new RangeError(`read [${offset}, +${dst.length}) outside ${this.bytes.length}`);
    this.reads++;
    this.largestRead = Math.max(this.largestRead, dst.length);
    dst.set(this.bytes.subarray(offset, offset + dst.length));
    return this.async ? Promise.resolve() : undefined;
  }
}

export interface DiskCase {
  bytes: Uint8Array;
  blockSize: number;
  blocksPerChunk: number;
  async: boolean;
}

/** Pieces written over zeros: random bytes, runs of one byte, or one byte alone. */
const extentArb = fc.record({
  at: fc.nat(),
  fill: fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 9 * KiB }),
    fc.record({ byte: fc.integer({ min: 1, max: 255 }), length: fc.integer({ min: 1, max: 200 * KiB }) }).map(({ byte, length }) => new Uint8Array(length).fill(byte)),
    fc.integer({ min: 1, max: 255 }).map((b) => Uint8Array.of(b)),
  ),
});

/** A disk of at most `maxBytes`; `async`: some read through promises (async encoders only). */
export function diskCaseArb(maxBytes: number, allowAsync = true): fc.Arbitrary<DiskCase> {
  return fc
    .record({
      size: fc.oneof(
        fc.integer({ min: 0, max: maxBytes / 512 }).map((n) => n * 512),
        fc.integer({ min: 0, max: maxBytes }),
      ),
      blockSize: fc.constantFrom(4 * KiB, 8 * KiB, 64 * KiB),
      blocksPerChunk: fc.integer({ min: 1, max: 8 }),
      extents: fc.array(extentArb, { maxLength: 6 }),
      lastByte: fc.boolean(),
      async: allowAsync ? fc.boolean() : fc.constant(false),
    })
    .map(({ size, blockSize, blocksPerChunk, extents, lastByte, async }) => {
      const bytes = new Uint8Array(size);
      if (size > 0) {
        for (const { at, fill } of extents) bytes.set(fill.subarray(0, size - (at % size)), at % size);
        // A stored last block, which may be shorter than the others.
        if (lastByte) bytes[size - 1] = 0xee;
      }
      return { bytes, blockSize, blocksPerChunk, async };
    });
}

/** Bytes shaped like v86's state: zero runs (unused RAM), noise (code, data), repeats. */
export function v86StateArb(maxSegments = 8): fc.Arbitrary<Uint8Array> {
  const segment = fc.oneof(
    fc.integer({ min: 1, max: 16 * KiB }).map((n) => new Uint8Array(n)),
    fc.uint8Array({ minLength: 1, maxLength: 2 * KiB }),
    fc.record({ pattern: fc.uint8Array({ minLength: 1, maxLength: 16 }), times: fc.integer({ min: 1, max: 512 }) }).map(({ pattern, times }) => {
      const out = new Uint8Array(pattern.length * times);
      for (let i = 0; i < times; i++) out.set(pattern, i * pattern.length);
      return out;
    }),
  );
  return fc.array(segment, { maxLength: maxSegments }).map((segments) => {
    const out = new Uint8Array(segments.reduce((n, s) => n + s.length, 0));
    let at = 0;
    for (const s of segments) {
      out.set(s, at);
      at += s.length;
    }
    return out;
  });
}

export const sha256Arb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(''));

const nameArb = fc
  .string({ minLength: 1, maxLength: 40, unit: 'grapheme' })
  .filter((s) => s.length <= SNAPSHOT_LIMITS.name && /^[^\p{Cc}\p{Cs}]+$/u.test(s));

export interface SnapshotCase {
  parts: SnapshotParts;
  disk?: DiskCase;
  level: number;
}

/** A whole state to encode; the disk (when any) at most `maxDiskBytes`, `allowAsync` as diskCaseArb. */
export function snapshotCaseArb(maxDiskBytes = 2 * 1024 * KiB, allowAsync = true): fc.Arbitrary<SnapshotCase> {
  return fc
    .record({
      kind: fc.constantFrom('boot' as const, 'saved' as const),
      name: nameArb,
      createdAt: fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
      imageSha256: sha256Arb,
      memoryMiB: fc.integer({ min: 1, max: SNAPSHOT_LIMITS.memoryMiB }),
      ring: fc.constantFrom('split' as const, 'packed' as const),
      functions: fc.array(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,31}$/), { maxLength: SNAPSHOT_LIMITS.functions }),
      v86State: v86StateArb(),
      deviceState: fc.jsonValue({ maxDepth: 4 }),
      disk: fc.option(fc.record({ name: fc.stringMatching(DISK_NAME), include: fc.boolean(), disk: diskCaseArb(maxDiskBytes, allowAsync) }), { nil: undefined }),
      level: fc.integer({ min: 1, max: 5 }),
    })
    .map(({ disk, level, ...rest }) => ({
      parts: { ...rest, ...(disk ? { disk: { name: disk.name, include: disk.include, source: new MemoryDiskSource(disk.disk.bytes, disk.disk.async) } } : {}) },
      ...(disk ? { disk: disk.disk } : {}),
      level,
    }));
}

/** The encoder options a case asks for. */
export function encodeOptionsOf(c: SnapshotCase) {
  return { level: c.level, ...(c.disk ? { disk: { blockSize: c.disk.blockSize, blocksPerChunk: c.disk.blocksPerChunk, level: c.level } } : {}) };
}
