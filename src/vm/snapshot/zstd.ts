/**
 * zstd for snapshots: compression at a chosen level and decompression bounded by the
 * caller's limit, over @bokuweb/zstd-wasm. The package is loaded differently in Node
 * (zstd-node.ts) and in a page or worker (zstd-browser.ts); both hand their module to
 * `boundedZstd`, so the checks here are the same everywhere.
 *
 * Why the frame is read first: the package's decompress() allocates whatever the frame
 * header's Frame_Content_Size says (RFC 8878 §3.1.1.1.4), so an unchecked 4 GiB claim would
 * be a 4 GiB allocation.
 */
import { inspectZstdFrame, ZstdFrameError } from './zstd-frame.ts';

/** What we use of @bokuweb/zstd-wasm (both of its entries export these). */
export interface ZstdWasmModule {
  compress(buf: Uint8Array, level?: number): Uint8Array;
  decompress(buf: Uint8Array): Uint8Array;
}

/** zstd's default level: 7.1 MiB for the lab's 24 MiB v86 state (docs/design.md). */
export const DEFAULT_ZSTD_LEVEL = 3;
/** Levels above 19 ("ultra") need far more memory in the wasm heap. */
const MAX_LEVEL = 19;

/**
 * At least ZSTD_compressBound(n): the largest frame zstd writes for n bytes (incompressible
 * content is stored raw, plus headers; libzstd: n + n/256 + up to 64 bytes under 128 KiB).
 */
export function zstdCompressBound(n: number): number {
  return n + Math.floor(n / 256) + 64 * 1024;
}

export interface ZstdCodec {
  /** One zstd frame holding `src`, with its content size in the header. */
  compress(src: Uint8Array, level?: number): Uint8Array;
  /**
   * The content of `frame`, which must be exactly one zstd frame declaring a content size of
   * at most `maxContentSize` bytes; nothing is allocated before that is checked. Throws
   * ZstdFrameError ('truncated', 'corrupt', 'too-large').
   */
  decompress(frame: Uint8Array, maxContentSize: number): Uint8Array;
}

/** Bytes decompressed in this process (tests and the fuzz campaign measure work with it). */
export const zstdWork = { decompressed: 0, largest: 0 };

export function boundedZstd(lib: ZstdWasmModule): ZstdCodec {
  return {
    compress(src, level = DEFAULT_ZSTD_LEVEL) {
      if (!Number.isInteger(level) || level < 1 || level > MAX_LEVEL) throw new RangeError(`zstd level ${level}: 1 to ${MAX_LEVEL}`);
      return lib.compress(src, level);
    },
    decompress(frame, maxContentSize) {
      const { contentSize } = inspectZstdFrame(frame, maxContentSize);
      let out: Uint8Array;
      try {
        out = lib.decompress(frame);
      } catch (e) {
        throw new ZstdFrameError('corrupt', `zstd frame does not decompress (${e instanceof Error ? e.message : String(e)})`);
      }
      zstdWork.decompressed += out.length;
      zstdWork.largest = Math.max(zstdWork.largest, out.length);
      if (out.length !== contentSize) {
        throw new ZstdFrameError('corrupt', `zstd frame decompressed to ${out.length} bytes, its header says ${contentSize}`);
      }
      return out;
    },
  };
}
