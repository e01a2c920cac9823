import { describe, expect, it } from 'vitest';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import {
  concatPieces,
  decodeSnapshot,
  encodeSnapshot,
  encodeSnapshotPieces,
  encodeSnapshotSync,
  PREFIX_BYTES,
  readSnapshotMeta,
  SNAPSHOT_MAGIC,
  type SnapshotParts,
} from './format.ts';
import { SNAPSHOT_LIMITS } from './meta.ts';
import { SnapshotError } from './snapshot-error.ts';
import { restoreSparseDisk } from './sparse-disk.ts';
import { closeFile, openFile, refreshSections, setPath, withU32 } from './testing/file-surgery.ts';
import { zstdWork } from './zstd.ts';
import { loadZstd } from './zstd-node.ts';

const zstd = await loadZstd();
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const IMAGE = 'ab12'.padEnd(64, '0');
const OTHER_IMAGE = 'cd34'.padEnd(64, '7');
const expectImage = { imageSha256: IMAGE, maxBytes: 64 * MiB };

function parts(over: Partial<SnapshotParts> = {}): SnapshotParts {
  const v86State = new Uint8Array(256 * KiB);
  for (let i = 0; i < 40_000; i++) v86State[i] = (i * 31) & 0xff;
  return {
    kind: 'boot',
    name: 'lab boot',
    createdAt: new Date('2025-01-02T03:04:05.678Z'),
    imageSha256: IMAGE,
    memoryMiB: 128,
    ring: 'packed',
    functions: ['virtio-blk', 'virtio-net', 'virtio-rng', 'virtio-console'],
    v86State,
    deviceState: { blk: { queues: [{ size: 256, lastAvail: 17 }] }, net: { mac: '52:54:00:12:34:56' } },
    ...over,
  };
}

function refused(f: () => unknown): SnapshotError {
  try {
    f();
  } catch (e) {
    if (e instanceof SnapshotError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('state file', () => {
  it('decodes what it encodes; the v86 section is the zstd frame restore_state takes', async () => {
    const p = parts();
    const bytes = await encodeSnapshot(p, zstd);
    expect(bytes.subarray(0, 8)).toEqual(SNAPSHOT_MAGIC);
    const d = decodeSnapshot(bytes, expectImage, zstd);
    expect(d.meta).toMatchObject({
      formatVersion: 1,
      kind: 'boot',
      name: 'lab boot',
      createdAt: '2025-01-02T03:04:05.678Z',
      imageSha256: IMAGE,
      memoryMiB: 128,
      ring: 'packed',
      functions: p.functions,
    });
    expect(d.meta.disk).toBeUndefined();
    expect(d.disk).toBeUndefined();
    expect(d.deviceState).toEqual(p.deviceState);
    expect(new DataView(d.v86State.buffer, d.v86State.byteOffset).getUint32(0, true)).toBe(0xfd2fb528);
    expect(Buffer.compare(zstd.decompress(d.v86State, d.meta.sections.v86.contentSize), p.v86State)).toBe(0);
    expect(d.meta.sections.v86.contentSize).toBe(p.v86State.length);
  });

  it('pieces, the async and the sync encoder give the same file', async () => {
    const disk = new MemoryBlockBackend(2 * MiB);
    disk.bytes.fill(1, 5000, 90_000);
    const p = parts({ disk: { name: 'work', source: disk, include: true } });
    const whole = await encodeSnapshot(p, zstd);
    expect(concatPieces(await encodeSnapshotPieces(p, zstd))).toEqual(whole);
    expect(encodeSnapshotSync(p, zstd)).toEqual(whole);
  });

  it('includes the disk: restoring makes the target byte-identical; a disk left out is only named', async () => {
    const disk = new MemoryBlockBackend(8 * MiB + 512);
    disk.bytes.fill(0x5a, 1 * MiB, 1 * MiB + 3000);
    disk.bytes.fill(0x33, 7 * MiB, 8 * MiB);
    const withDisk = decodeSnapshot(await encodeSnapshot(parts({ disk: { name: 'work', source: disk, include: true } }), zstd), expectImage, zstd);
    expect(withDisk.meta.disk).toEqual({ name: 'work', size: disk.size, included: true });
    const target = new MemoryBlockBackend(disk.size);
    target.bytes.fill(0xff);
    await restoreSparseDisk(withDisk.disk!, target, zstd);
    expect(Buffer.compare(target.bytes, disk.bytes)).toBe(0);

    const without = decodeSnapshot(await encodeSnapshot(parts({ disk: { name: 'work', source: disk, include: false } }), zstd), expectImage, zstd);
    expect(without.meta.disk).toEqual({ name: 'work', size: disk.size, included: false });
    expect(without.meta.sections.disk).toBeUndefined();
    expect(without.disk).toBeUndefined();
  });

  it('reads the meta from the header alone (a states list reads no more)', () => {
    const bytes = encodeSnapshotSync(parts(), zstd);
    const headerEnd = PREFIX_BYTES + new DataView(bytes.buffer).getUint32(12, true);
    expect(headerEnd).toBeLessThan(1024);
    expect(readSnapshotMeta(bytes.subarray(0, headerEnd))).toEqual(decodeSnapshot(bytes, expectImage, zstd).meta);
    expect(refused(() => readSnapshotMeta(bytes.subarray(0, headerEnd - 1))).kind).toBe('truncated');
  });

  it("refuses a state from another guest image ('foreign-image'), saying which", () => {
    const e = refused(() => decodeSnapshot(encodeSnapshotSync(parts({ imageSha256: OTHER_IMAGE }), zstd), expectImage, zstd));
    expect(e.kind).toBe('foreign-image');
    expect(e.message).toBe('this state was saved from another guest image (sha256 cd34…); it cannot run on this one (sha256 ab12…)');
  });

  it("refuses a newer format ('version') and says so; version 0 is damage", () => {
    const bytes = encodeSnapshotSync(parts(), zstd);
    const newer = refused(() => decodeSnapshot(withU32(bytes, 8, 2), expectImage, zstd));
    expect(newer.kind).toBe('version');
    expect(newer.message).toContain('newer virtio-lab (format 2)');
    expect(refused(() => readSnapshotMeta(withU32(bytes, 8, 2))).kind).toBe('version');
    expect(refused(() => decodeSnapshot(withU32(bytes, 8, 0), expectImage, zstd)).kind).toBe('corrupt');
  });

  it("refuses what is not a state file ('not-a-snapshot'); a cut-off start is 'truncated'", () => {
    const png = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13);
    for (const bytes of [png, new TextEncoder().encode('{"kind":"boot"}'.repeat(4)), zstd.compress(new Uint8Array(100))]) {
      expect(refused(() => decodeSnapshot(bytes, expectImage, zstd)).kind).toBe('not-a-snapshot');
    }
    expect(refused(() => decodeSnapshot(new Uint8Array(0), expectImage, zstd)).kind).toBe('truncated');
    expect(refused(() => decodeSnapshot(SNAPSHOT_MAGIC.subarray(0, 5), expectImage, zstd)).kind).toBe('truncated');
  });

  it("refuses a file over the caller's limit ('too-large') before reading it", () => {
    const bytes = encodeSnapshotSync(parts(), zstd);
    const e = refused(() => decodeSnapshot(bytes, { imageSha256: IMAGE, maxBytes: bytes.length - 1 }, zstd));
    expect(e.kind).toBe('too-large');
    expect(e.message).toMatch(/^this file is .*; the lab takes state files of at most /);
  });

  describe('a header claiming more than the file holds fails fast, allocating nothing for the claim', () => {
    const small = encodeSnapshotSync(parts({ v86State: new Uint8Array(100), deviceState: {} }), zstd);
    const claims: Array<[string, unknown, string]> = [
      ['sections.v86.length', 4 * GiB, 'too-large'],
      ['sections.v86.contentSize', 4 * GiB, 'too-large'],
      ['sections.devices.contentSize', 2 * MiB, 'too-large'],
      ['sections.devices.length', 900 * KiB, 'truncated'],
      ['sections.v86.length', 2 ** 53 + 2, 'corrupt'],
      ['sections.v86.length', -1, 'corrupt'],
      ['memoryMiB', 4096, 'corrupt'],
    ];
    for (const [path, value, kind] of claims) {
      it(`${path} = ${value} → ${kind}`, () => {
        const file = openFile(small);
        setPath(file.header, path, value);
        const bytes = closeFile(file);
        expect(bytes.length).toBeLessThan(1024);
        const before = zstdWork.decompressed;
        const t0 = performance.now();
        expect(refused(() => decodeSnapshot(bytes, expectImage, zstd)).kind).toBe(kind);
        expect(performance.now() - t0).toBeLessThan(50);
        expect(zstdWork.decompressed).toBe(before);
      });
    }

    it('an included disk of 4 GiB of data in a 1 KiB file', () => {
      const disk = new MemoryBlockBackend(64 * KiB);
      disk.bytes[0] = 1;
      const file = openFile(encodeSnapshotSync(parts({ v86State: new Uint8Array(100), disk: { name: 'd', source: disk, include: true } }), zstd));
      setPath(file.header, 'sections.disk.length', 4 * GiB);
      const e = refused(() => decodeSnapshot(closeFile(file), expectImage, zstd));
      expect(e.kind).toBe('too-large');
      expect(e.message).toContain("the disk's data is 4.00 GiB; a state file may hold at most 1.00 GiB");
    });

    it('a header length of 4 GiB − 1 in the prefix', () => {
      expect(refused(() => decodeSnapshot(withU32(small, 12, 0xffffffff), expectImage, zstd)).kind).toBe('corrupt');
    });
  });

  it('device state that is not JSON is corrupt; JSON nested 400 000 deep is no other exception', () => {
    const deep = new TextEncoder().encode('['.repeat(400_000) + ']'.repeat(400_000));
    for (const raw of [new TextEncoder().encode('{"open": '), Uint8Array.of(0xff, 0xfe), deep]) {
      // A valid zstd frame, lengths and CRCs made right: only the content is wrong.
      const file = openFile(encodeSnapshotSync(parts(), zstd));
      file.sections.devices = zstd.compress(raw);
      file.header.sections.devices.contentSize = raw.length;
      refreshSections(file);
      let result: string;
      try {
        decodeSnapshot(closeFile(file), expectImage, zstd);
        result = 'decoded';
      } catch (e) {
        expect(e).toBeInstanceOf(SnapshotError);
        result = (e as SnapshotError).kind;
      }
      if (raw === deep) expect(['decoded', 'corrupt']).toContain(result);
      else expect(result).toBe('corrupt');
    }
  });

  describe('the encoder refuses what the decoder would refuse', () => {
    it("device state over 1 MiB: 'too-large'", async () => {
      const e = await encodeSnapshot(parts({ deviceState: 'x'.repeat(SNAPSHOT_LIMITS.devicesBytes) }), zstd).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(SnapshotError);
      expect((e as SnapshotError).kind).toBe('too-large');
    });

    it("v86 state over guest RAM + 64 MiB: 'too-large'", async () => {
      const e = await encodeSnapshot(parts({ memoryMiB: 1, v86State: new Uint8Array(65 * MiB + 1) }), zstd).catch((x: unknown) => x);
      expect((e as SnapshotError).kind).toBe('too-large');
    });

    it('invalid meta: RangeError, before any compression', async () => {
      for (const over of [{ imageSha256: 'AB12' }, { name: '' }, { name: 'a\nb' }, { functions: ['Virtio Blk'] }, { memoryMiB: 0 }, { deviceState: undefined }]) {
        const before = zstdWork.decompressed;
        await expect(encodeSnapshot(parts(over as Partial<SnapshotParts>), zstd)).rejects.toThrow(RangeError);
        expect(zstdWork.decompressed).toBe(before);
      }
    });
  });
});

