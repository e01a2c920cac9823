/**
 * A state file's disk section: the disk image stored sparse. The image is cut into
 * fixed-size blocks; a bitmap says which hold any non-zero byte; those blocks, in disk
 * order, are packed into chunks of `blocksPerChunk` blocks, each chunk one zstd frame. So
 * encoding reads the disk 1 MiB at a time and decoding writes it back one chunk at a time:
 * neither holds the disk, only the compressed data (bounded by SNAPSHOT_LIMITS.diskData).
 *
 * Layout (little-endian; docs/snapshot-format.md):
 *   u32 blockSize  u32 blocksPerChunk  u64 diskSize  u32 storedBlocks  u32 chunkCount
 *   bitmap: ceil(blockCount / 8) bytes, block i is bit (i & 7) of byte (i >> 3)
 *   chunkCount × u32 chunk length
 *   the chunks, back to back
 */
import { SNAPSHOT_LIMITS } from './meta.ts';
import { formatBytes, SnapshotError } from './snapshot-error.ts';
import { DEFAULT_ZSTD_LEVEL, type ZstdCodec } from './zstd.ts';
import { inspectZstdFrame, ZstdFrameError } from './zstd-frame.ts';

/** Where the disk's bytes come from. A BlockBackend is one. */
export interface DiskSource {
  readonly size: number;
  /** Fill `dst` from byte `offset`. */
  read(offset: number, dst: Uint8Array): void | Promise<void>;
}

/** Where a restored disk's bytes go. A BlockBackend of the right size is one. */
export interface DiskSink {
  readonly size: number;
  /** Store `src` at byte `offset`; `src` is ours again once this returns (or resolves). */
  write(offset: number, src: Uint8Array): void | Promise<void>;
  /** Make the sink `size` bytes; without it the sink must already have the disk's size. */
  truncate?(size: number): void | Promise<void>;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const SPARSE_DEFAULTS = {
  /** ext4's 4 KiB blocks group well; 64 KiB keeps the bitmap at 8 KiB for 4 GiB. */
  blockSize: 64 * KiB,
  /** 1 MiB of data per zstd frame. */
  blocksPerChunk: 16,
} as const;

/** Bounds a file's index must respect. */
export const SPARSE_LIMITS = {
  minBlock: 4 * KiB,
  maxBlock: 1 * MiB,
  /** A chunk's decompressed size: what restoring holds at once. */
  maxChunk: 4 * MiB,
} as const;
const { minBlock: MIN_BLOCK, maxBlock: MAX_BLOCK, maxChunk: MAX_CHUNK } = SPARSE_LIMITS;
/** Disk reads while encoding, and zero writes while restoring, go in pieces this size. */
const PIECE = 1 * MiB;
/** The index's fixed fields, blockSize … chunkCount. */
const FIXED = 24;

export interface SparseEncodeOptions {
  blockSize?: number;
  blocksPerChunk?: number;
  level?: number;
  /** Refuse ('too-large') when the section would be longer (default SNAPSHOT_LIMITS.diskData). */
  maxLength?: number;
}

function isZero(bytes: Uint8Array): boolean {
  // Our buffers start at offset 0 and blocks at multiples of 4 KiB: the word view is aligned.
  const words = bytes.length >>> 2;
  const w = new Uint32Array(bytes.buffer, bytes.byteOffset, words);
  for (let i = 0; i < words; i++) if (w[i] !== 0) return false;
  for (let i = words << 2; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function tooLarge(limit: number): never {
  throw new SnapshotError(
    'too-large',
    `the disk's data takes more than ${formatBytes(limit)} even compressed, more than a state file may include: save the state without its disk`,
  );
}

/** One read the encoder needs: fill `dst` from disk byte `offset`. */
export interface DiskRead {
  readonly offset: number;
  readonly dst: Uint8Array;
}

/**
 * The encoder, as steps: it yields each read it needs (1 MiB at a time) and returns the
 * section's pieces (the index, then each chunk). Drivers below do the reads sync or async.
 */
function* encodeSteps(size: number, zstd: ZstdCodec, opts: SparseEncodeOptions): Generator<DiskRead, Uint8Array[], undefined> {
  const blockSize = opts.blockSize ?? SPARSE_DEFAULTS.blockSize;
  const blocksPerChunk = opts.blocksPerChunk ?? SPARSE_DEFAULTS.blocksPerChunk;
  const maxLength = opts.maxLength ?? SNAPSHOT_LIMITS.diskData;
  if (!Number.isSafeInteger(size) || size < 0 || size > SNAPSHOT_LIMITS.diskSize) throw new SnapshotError('too-large', `a disk of ${formatBytes(size)} is over the ${formatBytes(SNAPSHOT_LIMITS.diskSize)} a state file may include`);
  if (!(blockSize >= MIN_BLOCK && blockSize <= MAX_BLOCK && (blockSize & (blockSize - 1)) === 0)) throw new RangeError(`block size ${blockSize}`);
  if (!(Number.isInteger(blocksPerChunk) && blocksPerChunk >= 1 && blocksPerChunk * blockSize <= MAX_CHUNK)) throw new RangeError(`blocks per chunk ${blocksPerChunk}`);

  const blockCount = Math.ceil(size / blockSize);
  const bitmap = new Uint8Array(Math.ceil(blockCount / 8));
  const lengths: number[] = [];
  const chunks: Uint8Array[] = [];
  const pending = new Uint8Array(blockSize * blocksPerChunk);
  let pendingBytes = 0;
  let pendingBlocks = 0;
  let stored = 0;
  let total = 0;
  const indexBytes = FIXED + bitmap.length;
  const emit = () => {
    const frame = zstd.compress(pending.subarray(0, pendingBytes), opts.level ?? DEFAULT_ZSTD_LEVEL);
    total += frame.length + 4;
    if (indexBytes + total > maxLength) tooLarge(maxLength);
    chunks.push(frame);
    lengths.push(frame.length);
    pendingBytes = pendingBlocks = 0;
  };

  const piece = new Uint8Array(Math.max(PIECE, blockSize));
  for (let offset = 0; offset < size; offset += piece.length) {
    const got = piece.subarray(0, Math.min(piece.length, size - offset));
    yield { offset, dst: got };
    for (let at = 0; at < got.length; at += blockSize) {
      const block = got.subarray(at, Math.min(at + blockSize, got.length));
      if (isZero(block)) continue;
      const index = (offset + at) / blockSize;
      bitmap[index >> 3] |= 1 << (index & 7);
      pending.set(block, pendingBytes);
      pendingBytes += block.length;
      stored++;
      if (++pendingBlocks === blocksPerChunk) emit();
    }
  }
  if (pendingBlocks > 0) emit();

  const index = new Uint8Array(indexBytes + 4 * lengths.length);
  const view = new DataView(index.buffer);
  view.setUint32(0, blockSize, true);
  view.setUint32(4, blocksPerChunk, true);
  view.setUint32(8, size % 2 ** 32, true);
  view.setUint32(12, Math.floor(size / 2 ** 32), true);
  view.setUint32(16, stored, true);
  view.setUint32(20, lengths.length, true);
  index.set(bitmap, FIXED);
  lengths.forEach((n, i) => view.setUint32(indexBytes + 4 * i, n, true));
  return [index, ...chunks];
}

/** The disk section for `source`, as consecutive pieces (the index, then each chunk); the source's own errors pass through. */
export async function encodeSparseDisk(source: DiskSource, zstd: ZstdCodec, opts: SparseEncodeOptions = {}): Promise<Uint8Array[]> {
  const steps = encodeSteps(source.size, zstd, opts);
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    await source.read(step.value.offset, step.value.dst);
  }
}

function notAsync(result: void | Promise<void>, what: string): void {
  if (result instanceof Promise) throw new TypeError(`${what} returned a promise: use the async function`);
}

/** encodeSparseDisk for a source that reads synchronously (a BlockBackend). */
export function encodeSparseDiskSync(source: DiskSource, zstd: ZstdCodec, opts: SparseEncodeOptions = {}): Uint8Array[] {
  const steps = encodeSteps(source.size, zstd, opts);
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    notAsync(source.read(step.value.offset, step.value.dst), 'the disk source');
  }
}

/** A validated disk section: views into the file, nothing decompressed yet. */
export interface SparseDisk {
  readonly size: number;
  readonly blockSize: number;
  readonly blocksPerChunk: number;
  readonly storedBlocks: number;
  readonly chunkCount: number;
  /** The whole section (the bitmap and chunk table are read from it in place). */
  readonly section: Uint8Array;
}

function corrupt(detail: string): never {
  throw new SnapshotError('corrupt', `this state file is damaged: its disk section ${detail}`);
}

const tableOffset = (d: { size: number; blockSize: number }) => FIXED + Math.ceil(Math.ceil(d.size / d.blockSize) / 8);

function isStored(section: Uint8Array, i: number): boolean {
  return (section[FIXED + (i >> 3)] & (1 << (i & 7))) !== 0;
}

/** Decompressed bytes of chunk `k`: its blocks, the disk's last one possibly short. */
function chunkContentSize(d: SparseDisk, k: number): number {
  const blocks = Math.min(d.blocksPerChunk, d.storedBlocks - k * d.blocksPerChunk);
  let bytes = blocks * d.blockSize;
  const blockCount = Math.ceil(d.size / d.blockSize);
  const tail = d.size - (blockCount - 1) * d.blockSize;
  // Stored blocks go in disk order, so the last block (if stored) ends the last chunk.
  if (k === d.chunkCount - 1 && tail !== d.blockSize && isStored(d.section, blockCount - 1)) bytes -= d.blockSize - tail;
  return bytes;
}

/**
 * Check a disk section of a disk of `size` bytes: its index, its bitmap against the
 * stored-block count, its chunk table against the section's length, and every chunk's
 * zstd frame against the bytes it must hold. Reads at most the section; allocates nothing
 * in proportion to it. Throws SnapshotError ('corrupt').
 */
export function parseSparseDisk(section: Uint8Array, size: number): SparseDisk {
  if (section.length < FIXED) corrupt('is shorter than its index');
  const view = new DataView(section.buffer, section.byteOffset, section.byteLength);
  const blockSize = view.getUint32(0, true);
  const blocksPerChunk = view.getUint32(4, true);
  const sizeHigh = view.getUint32(12, true);
  const diskSize = view.getUint32(8, true) + sizeHigh * 2 ** 32;
  const storedBlocks = view.getUint32(16, true);
  const chunkCount = view.getUint32(20, true);
  if (!(blockSize >= MIN_BLOCK && blockSize <= MAX_BLOCK && (blockSize & (blockSize - 1)) === 0)) corrupt(`has a block size of ${blockSize}`);
  if (!(blocksPerChunk >= 1 && blocksPerChunk * blockSize <= MAX_CHUNK)) corrupt(`has ${blocksPerChunk} blocks per chunk`);
  if (sizeHigh > 2 ** 20 || diskSize !== size) corrupt(`is for a disk of ${diskSize} bytes, the header says ${size}`);
  const blockCount = Math.ceil(size / blockSize);
  if (storedBlocks > blockCount) corrupt(`stores ${storedBlocks} of ${blockCount} blocks`);
  if (chunkCount !== Math.ceil(storedBlocks / blocksPerChunk)) corrupt(`has ${chunkCount} chunks for ${storedBlocks} blocks`);
  const table = tableOffset({ size, blockSize });
  const dataStart = table + 4 * chunkCount;
  if (dataStart > section.length) corrupt('is shorter than its index');

  let ones = 0;
  for (let i = FIXED; i < table; i++) {
    let b = section[i];
    for (; b; b &= b - 1) ones++;
  }
  const padBits = table - FIXED > 0 ? (blockCount & 7) : 0;
  if (padBits && section[table - 1] >> padBits) corrupt('marks blocks past the end of the disk');
  if (ones !== storedBlocks) corrupt(`marks ${ones} blocks stored, its index says ${storedBlocks}`);

  const disk: SparseDisk = { size, blockSize, blocksPerChunk, storedBlocks, chunkCount, section };
  let at = dataStart;
  for (let k = 0; k < chunkCount; k++) {
    const length = view.getUint32(table + 4 * k, true);
    if (length > section.length - at) corrupt(`has a chunk running past its end`);
    const expected = chunkContentSize(disk, k);
    try {
      const { contentSize } = inspectZstdFrame(section.subarray(at, at + length), expected);
      if (contentSize !== expected) corrupt(`has a chunk of ${contentSize} bytes where ${expected} belong`);
    } catch (e) {
      if (e instanceof ZstdFrameError) corrupt(`has a bad chunk (${e.message})`);
      throw e;
    }
    at += length;
  }
  if (at !== section.length) corrupt(`has ${section.length - at} bytes after its last chunk`);
  return disk;
}

let zeroPiece: Uint8Array | undefined;

/** One write a restore makes: `src` at disk byte `offset`. */
export interface DiskWrite {
  readonly offset: number;
  readonly src: Uint8Array;
}

/**
 * The writes that restore the disk, in disk order: every block, zero ones too (so the sink
 * ends up byte-identical to the disk that was saved), adjacent blocks of one kind merged
 * (zeros in pieces of ≤ 1 MiB). Holds one decompressed chunk (≤ 4 MiB) at a time; a write's
 * `src` is valid until the next step. Throws SnapshotError('corrupt') when a chunk does not
 * decompress.
 */
export function* restoreWrites(disk: SparseDisk, zstd: ZstdCodec): Generator<DiskWrite, void, undefined> {
  zeroPiece ??= new Uint8Array(PIECE);
  const zeros = zeroPiece;
  const view = new DataView(disk.section.buffer, disk.section.byteOffset, disk.section.byteLength);
  const table = tableOffset(disk);
  let chunkAt = table + 4 * disk.chunkCount;
  let chunkIndex = 0;
  let chunk = zeros; // replaced before its first use (a stored block starts a chunk)
  let inChunk = disk.blocksPerChunk; // stored blocks taken from `chunk`
  let chunkPos = 0;

  // The run of bytes to write next: zeros (src null) or a slice of the current chunk.
  let runOffset = 0;
  let runLength = 0;
  let runSrc: Uint8Array | null = null;
  let runFrom = 0;
  function* flush(): Generator<DiskWrite, void, undefined> {
    if (runSrc) yield { offset: runOffset, src: runSrc.subarray(runFrom, runFrom + runLength) };
    else for (let at = 0; at < runLength; at += PIECE) yield { offset: runOffset + at, src: zeros.subarray(0, Math.min(PIECE, runLength - at)) };
    runLength = 0;
  }

  const blockCount = Math.ceil(disk.size / disk.blockSize);
  for (let i = 0; i < blockCount; i++) {
    const offset = i * disk.blockSize;
    const length = Math.min(disk.blockSize, disk.size - offset);
    if (isStored(disk.section, i)) {
      if (inChunk === disk.blocksPerChunk) {
        if (runLength > 0) yield* flush();
        const frameLength = view.getUint32(table + 4 * chunkIndex, true);
        const expected = chunkContentSize(disk, chunkIndex);
        try {
          chunk = zstd.decompress(disk.section.subarray(chunkAt, chunkAt + frameLength), expected);
        } catch (e) {
          if (e instanceof ZstdFrameError) corrupt(`has a chunk that does not decompress (${e.message})`);
          throw e;
        }
        chunkAt += frameLength;
        chunkIndex++;
        inChunk = 0;
        chunkPos = 0;
      }
      if (runLength > 0 && runSrc !== chunk) yield* flush();
      if (runLength === 0) [runOffset, runSrc, runFrom] = [offset, chunk, chunkPos];
      runLength += length;
      chunkPos += length;
      inChunk++;
    } else {
      if (runLength > 0 && runSrc !== null) yield* flush();
      if (runLength === 0) [runOffset, runSrc] = [offset, null];
      runLength += length;
    }
  }
  if (runLength > 0) yield* flush();
}

function sizeMismatch(sink: DiskSink, disk: SparseDisk): RangeError {
  return new RangeError(`the sink holds ${sink.size} bytes, the disk ${disk.size}`);
}

/**
 * Write the saved disk into `sink` (see restoreWrites). A sink of another size is truncated
 * to the disk's when it can be, else refused (RangeError). The sink's own errors pass through.
 */
export async function restoreSparseDisk(disk: SparseDisk, sink: DiskSink, zstd: ZstdCodec): Promise<void> {
  if (sink.size !== disk.size) {
    if (!sink.truncate) throw sizeMismatch(sink, disk);
    await sink.truncate(disk.size);
  }
  for (const { offset, src } of restoreWrites(disk, zstd)) await sink.write(offset, src);
}

/** restoreSparseDisk for a sink that writes synchronously (a BlockBackend). */
export function restoreSparseDiskSync(disk: SparseDisk, sink: DiskSink, zstd: ZstdCodec): void {
  if (sink.size !== disk.size) {
    if (!sink.truncate) throw sizeMismatch(sink, disk);
    notAsync(sink.truncate(disk.size), 'the disk sink');
  }
  for (const { offset, src } of restoreWrites(disk, zstd)) notAsync(sink.write(offset, src), 'the disk sink');
}
