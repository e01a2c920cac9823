/**
 * Reads a Zstandard frame's structure without decompressing it (RFC 8878 §3.1.1): its
 * header, Frame_Content_Size and the chain of block headers, so a caller can refuse a frame
 * before anything is allocated for its content. We accept exactly one zstd frame that
 * fills the buffer, declares its content size, and uses no dictionary: what our own
 * compressor writes. Skippable frames and concatenated frames are refused.
 */

/** Zstandard frame magic 0xFD2FB528, little-endian (§3.1.1). */
export const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames: 0x184D2A50..0x184D2A5F (§3.1.2). */
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** Block_Maximum_Size is at most 128 KiB (§3.1.1.2.4). */
const BLOCK_SIZE_MAX = 128 * 1024;

export type ZstdFrameErrorKind =
  /** The buffer ends inside the frame. */
  | 'truncated'
  /** Not a frame we accept (bad magic, reserved bits, no content size, trailing bytes …). */
  | 'corrupt'
  /** Frame_Content_Size is over the caller's limit. */
  | 'too-large';

export class ZstdFrameError extends Error {
  constructor(
    readonly kind: ZstdFrameErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ZstdFrameError';
  }
}

export interface ZstdFrameInfo {
  /** Frame_Content_Size: the exact size of the decompressed content. */
  readonly contentSize: number;
  /** Bytes of magic + frame header. */
  readonly headerSize: number;
  readonly blocks: number;
  readonly hasChecksum: boolean;
}

/** Frame_Content_Size field bytes by FCS_Flag (§3.1.1.1.1.1); flag 0 means 1 byte if Single_Segment. */
const FCS_FIELD_SIZE = [0, 2, 4, 8] as const;

/**
 * Validate that `frame` is one whole zstd frame whose content is at most `maxContentSize`
 * bytes, walking every block header (at most frame.length / 3 of them, so the walk is
 * bounded by the input). Throws ZstdFrameError.
 */
export function inspectZstdFrame(frame: Uint8Array, maxContentSize: number): ZstdFrameInfo {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const need = (at: number, n: number, what: string) => {
    if (at + n > frame.length) throw new ZstdFrameError('truncated', `zstd frame ends inside its ${what} (${frame.length} bytes)`);
  };
  need(0, 4, 'magic number');
  const magic = view.getUint32(0, true);
  if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) throw new ZstdFrameError('corrupt', 'a skippable zstd frame where a zstd frame was expected');
  if (magic !== ZSTD_MAGIC) throw new ZstdFrameError('corrupt', `not a zstd frame (magic 0x${magic.toString(16).padStart(8, '0')})`);

  need(4, 1, 'frame header');
  const fhd = frame[4];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd & 0x20) !== 0;
  const hasChecksum = (fhd & 0x04) !== 0;
  if (fhd & 0x08) throw new ZstdFrameError('corrupt', 'zstd frame header has its reserved bit set');
  if (fhd & 0x03) throw new ZstdFrameError('corrupt', 'zstd frame needs a dictionary');
  // Window_Descriptor (unless Single_Segment), no Dictionary_ID, Frame_Content_Size.
  let at = 5;
  let windowSize = 0;
  if (!singleSegment) {
    need(at, 1, 'window descriptor');
    const wd = frame[at++];
    const windowLog = 10 + (wd >> 3);
    const base = 2 ** windowLog;
    windowSize = base + (base / 8) * (wd & 7);
  }

  const fcsSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : FCS_FIELD_SIZE[fcsFlag];
  if (fcsSize === 0) throw new ZstdFrameError('corrupt', 'zstd frame does not declare its content size');
  need(at, fcsSize, 'content size');
  let contentSize: number;
  switch (fcsSize) {
    case 1:
      contentSize = frame[at];
      break;
    case 2:
      contentSize = view.getUint16(at, true) + 256;
      break;
    case 4:
      contentSize = view.getUint32(at, true);
      break;
    default:
      // 8 bytes: any high word makes it ≥ 4 GiB; exact when it fits a double's 53 bits.
      contentSize = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
  }
  at += fcsSize;
  if (contentSize > maxContentSize) {
    throw new ZstdFrameError('too-large', `zstd frame holds ${contentSize} bytes, over the limit of ${maxContentSize}`);
  }
  if (singleSegment) windowSize = contentSize;
  const headerSize = at;

  // Blocks (§3.1.1.2): a 3-byte header, then Block_Size bytes (Raw, Compressed) or 1 (RLE).
  const blockMax = Math.min(windowSize, BLOCK_SIZE_MAX);
  let exact = 0;
  let compressedBlocks = 0;
  let blocks = 0;
  for (let last = false; !last; blocks++) {
    need(at, 3, 'block header');
    const bh = frame[at] | (frame[at + 1] << 8) | (frame[at + 2] << 16);
    at += 3;
    last = (bh & 1) !== 0;
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) throw new ZstdFrameError('corrupt', 'zstd block of the reserved type');
    if (size > blockMax) throw new ZstdFrameError('corrupt', `zstd block of ${size} bytes, over the frame's ${blockMax}-byte maximum`);
    const stored = type === 1 ? 1 : size;
    need(at, stored, 'block');
    at += stored;
    if (type === 2) compressedBlocks++;
    else exact += size;
  }
  if (hasChecksum) {
    need(at, 4, 'content checksum');
    at += 4;
  }
  if (at !== frame.length) throw new ZstdFrameError('corrupt', `${frame.length - at} bytes after the zstd frame (one frame expected)`);
  // Raw and RLE blocks regenerate exactly their size, compressed ones at most blockMax.
  if (exact > contentSize || exact + compressedBlocks * blockMax < contentSize) {
    throw new ZstdFrameError('corrupt', `zstd frame's blocks cannot make the ${contentSize} bytes it declares`);
  }
  return { contentSize, headerSize, blocks, hasChecksum };
}
