import { describe, expect, it } from 'vitest';
import { inspectZstdFrame, ZstdFrameError, ZSTD_MAGIC } from './zstd-frame.ts';
import { zstdWork } from './zstd.ts';
import { loadZstd } from './zstd-node.ts';

const zstd = await loadZstd();

/** A frame by hand: magic, the descriptor byte, optional window byte, FCS bytes, then blocks. */
function frame(fhd: number, rest: number[]): Uint8Array {
  const out = new Uint8Array(5 + rest.length);
  new DataView(out.buffer).setUint32(0, ZSTD_MAGIC, true);
  out[4] = fhd;
  out.set(rest, 5);
  return out;
}

/** A 3-byte block header: Last_Block, Block_Type (0 raw, 1 RLE, 2 compressed, 3 reserved), Block_Size. */
function block(last: boolean, type: number, size: number): number[] {
  const v = (size << 3) | (type << 1) | (last ? 1 : 0);
  return [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff];
}

function errorOf(f: () => unknown): ZstdFrameError {
  try {
    f();
  } catch (e) {
    if (e instanceof ZstdFrameError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('inspectZstdFrame', () => {
  it('reads the content size of frames our codec writes, which then decompress to it', () => {
    const random = crypto.getRandomValues(new Uint8Array(60_000));
    const pattern = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 13);
    for (const src of [new Uint8Array(0), Uint8Array.of(9), pattern, random, new Uint8Array(200_000)]) {
      const f = zstd.compress(src);
      expect(inspectZstdFrame(f, src.length).contentSize).toBe(src.length);
      expect(Buffer.compare(zstd.decompress(f, src.length), src)).toBe(0);
    }
  });

  it('agrees with the real decoder on hand-made raw and RLE frames (1- and 2-byte sizes)', () => {
    // Single segment, 1-byte FCS = 5, one raw block of 5 bytes.
    const raw = frame(0x20, [5, ...block(true, 0, 5), 1, 2, 3, 4, 5]);
    expect(inspectZstdFrame(raw, 5)).toMatchObject({ contentSize: 5, blocks: 1, headerSize: 6 });
    expect(zstd.decompress(raw, 5)).toEqual(Uint8Array.of(1, 2, 3, 4, 5));
    // Single segment, 2-byte FCS (value + 256) = 1000, one RLE block of 1000 × 0x41.
    const rle = frame(0x60, [744 & 0xff, 744 >> 8, ...block(true, 1, 1000), 0x41]);
    expect(inspectZstdFrame(rle, 1000).contentSize).toBe(1000);
    expect(zstd.decompress(rle, 1000)).toEqual(new Uint8Array(1000).fill(0x41));
  });

  it('refuses a frame that does not declare its content size (the package would guess a heap for it)', () => {
    // Not single segment, FCS_Flag 0, window descriptor 0 (1 KiB): no Frame_Content_Size.
    const f = frame(0x00, [0x00, ...block(true, 0, 3), 7, 8, 9]);
    expect(errorOf(() => inspectZstdFrame(f, 1 << 20))).toMatchObject({ kind: 'corrupt', message: expect.stringContaining('content size') });
    expect(errorOf(() => zstd.decompress(f, 1 << 20)).kind).toBe('corrupt');
  });

  it('refuses a declared size over the limit before the decoder allocates anything', () => {
    const src = new Uint8Array(4096).fill(3);
    const f = zstd.compress(src);
    const before = zstdWork.decompressed;
    expect(errorOf(() => zstd.decompress(f, 4095)).kind).toBe('too-large');
    expect(zstdWork.decompressed).toBe(before);
    // 8-byte FCS of 1 TiB on a 5-byte body.
    const huge = frame(0xe0, [0, 0, 0, 0, 0, 1, 0, 0, ...block(true, 0, 5), 1, 2, 3, 4, 5]);
    expect(errorOf(() => zstd.decompress(huge, 64 << 20)).kind).toBe('too-large');
    // Within the limit, the blocks still cannot make 1 TiB.
    expect(errorOf(() => inspectZstdFrame(huge, 2 ** 41)).message).toContain('cannot make');
    expect(zstdWork.decompressed).toBe(before);
  });

  it('refuses skippable frames, a second frame, reserved bits and types, dictionaries, oversized blocks', () => {
    const one = frame(0x20, [2, ...block(true, 0, 2), 1, 2]);
    const skippable = Uint8Array.of(0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0);
    const cases: Array<[string, Uint8Array, string]> = [
      ['skippable', skippable, 'skippable'],
      ['two frames', Uint8Array.of(...one, ...one), 'after the zstd frame'],
      ['trailing byte', Uint8Array.of(...one, 0), 'after the zstd frame'],
      ['reserved bit', frame(0x28, [2, ...block(true, 0, 2), 1, 2]), 'reserved bit'],
      ['dictionary', frame(0x21, [1, 2, ...block(true, 0, 2), 1, 2]), 'dictionary'],
      ['reserved block type', frame(0x20, [2, ...block(true, 3, 2), 1, 2]), 'reserved type'],
      ['block over the window', frame(0x20, [2, ...block(true, 0, 3), 1, 2, 3]), 'maximum'],
      ['raw blocks over the size', frame(0x20, [2, ...block(false, 0, 2), 1, 2, ...block(true, 0, 1), 3]), 'cannot make'],
      ['not zstd', Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0), 'not a zstd frame'],
    ];
    for (const [what, bytes, says] of cases) {
      const e = errorOf(() => inspectZstdFrame(bytes, 1 << 20));
      expect(e.kind, what).toBe('corrupt');
      expect(e.message, what).toContain(says);
    }
  });

  it('says truncated at every cut of a frame', () => {
    const f = zstd.compress(Uint8Array.from({ length: 5000 }, (_, i) => i % 251));
    for (let cut = 0; cut < f.length; cut++) {
      expect(errorOf(() => inspectZstdFrame(f.subarray(0, cut), 5000)).kind).toBe('truncated');
    }
  });

  it('checks the compression level', () => {
    expect(() => zstd.compress(new Uint8Array(1), 0)).toThrow(RangeError);
    expect(() => zstd.compress(new Uint8Array(1), 22)).toThrow(RangeError);
  });
});
