import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backendErrorKind } from './testing.ts';
import { FileBlockBackend, blockErrorKind } from './file-block-backend.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-fbb-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function image(size: number, fill = 0): string {
  const p = path.join(dir, `disk-${size}.img`);
  fs.writeFileSync(p, new Uint8Array(size).fill(fill));
  return p;
}

const kindOf = backendErrorKind;

describe('FileBlockBackend', () => {
  it('reads and writes the file in place, zeroes ranges, flushes, closes', () => {
    const p = image(8192, 0xaa);
    const b = FileBlockBackend.open(p);
    expect(b.size).toBe(8192);
    expect(b.readOnly).toBe(false);
    b.write(1000, Uint8Array.of(1, 2, 3));
    const dst = new Uint8Array(5);
    b.read(999, dst);
    expect([...dst]).toEqual([0xaa, 1, 2, 3, 0xaa]);
    b.writeZeroes(1001, 1);
    b.discard(4096, 4096);
    b.flush();
    b.close();
    b.close(); // idempotent
    const bytes = fs.readFileSync(p);
    expect([...bytes.subarray(999, 1004)]).toEqual([0xaa, 1, 0, 3, 0xaa]);
    expect(bytes.subarray(4096).every((x) => x === 0)).toBe(true);
    expect(kindOf(() => b.read(0, new Uint8Array(1)))).toBe('io');
  });

  it('zeroes a range larger than its 1 MiB chunk', () => {
    const p = image(3 << 20, 0xff);
    const b = FileBlockBackend.open(p);
    b.writeZeroes(512, (3 << 20) - 1024);
    b.close();
    const bytes = fs.readFileSync(p);
    expect(bytes[511]).toBe(0xff);
    expect(bytes.subarray(512, (3 << 20) - 512).every((x) => x === 0)).toBe(true);
    expect(bytes[(3 << 20) - 512]).toBe(0xff);
  });

  it('refuses sizes that are not a non-zero multiple of 512, with a clear message', () => {
    expect(() => FileBlockBackend.open(image(1000))).toThrow(/1000 bytes: a disk image must be a non-zero multiple of 512/);
    expect(() => FileBlockBackend.open(image(0))).toThrow(/multiple of 512/);
    expect(() => FileBlockBackend.open(path.join(dir, 'missing.img'))).toThrow(/ENOENT/);
  });

  it('read-only opens O_RDONLY and refuses writes; out-of-range is a range error', () => {
    const p = image(4096, 7);
    fs.chmodSync(p, 0o444);
    const b = FileBlockBackend.open(p, { readOnly: true });
    expect(b.readOnly).toBe(true);
    const dst = new Uint8Array(2);
    b.read(4094, dst);
    expect([...dst]).toEqual([7, 7]);
    expect(kindOf(() => b.write(0, Uint8Array.of(1)))).toBe('read-only');
    expect(kindOf(() => b.writeZeroes(0, 512))).toBe('read-only');
    expect(kindOf(() => b.read(4095, new Uint8Array(2)))).toBe('range');
    b.flush(); // nothing to do, no error
    b.close();
  });

  it('maps Node errors: ENOSPC/EDQUOT → quota, EROFS/EBADF-on-write → read-only, others → io', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(blockErrorKind(err('ENOSPC'), 'write')).toBe('quota');
    expect(blockErrorKind(err('EDQUOT'), 'flush')).toBe('quota');
    expect(blockErrorKind(err('EROFS'), 'write')).toBe('read-only');
    expect(blockErrorKind(err('EBADF'), 'write')).toBe('read-only');
    expect(blockErrorKind(err('EBADF'), 'read')).toBe('io');
    expect(blockErrorKind(err('EIO'), 'read')).toBe('io');
    expect(blockErrorKind(new Error('plain'), 'read')).toBe('io');
  });

  it('a real ENOSPC from the OS becomes quota (when /dev/full exists)', () => {
    if (!fs.existsSync('/dev/full')) return;
    // /dev/full is not a regular file, so go through a backend over a file and swap its fd.
    const b = FileBlockBackend.open(image(4096));
    const full = fs.openSync('/dev/full', 'w');
    (b as unknown as { fd: number }).fd = full;
    expect(kindOf(() => b.write(0, new Uint8Array(512)))).toBe('quota');
    b.close();
  });
});
