// public/guest/manifest.json is the truth about the guest image: every file it names must be
// there with that size and sha256, nothing unlisted may sit next to it, and the roles the
// VM needs must be present. (Rebuild with guest/build.sh.)
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dir = fileURLToPath(new URL('../public/guest/', import.meta.url));

interface Entry {
  role: string;
  file: string;
  sha256: string;
  size: number;
  source: { package: string; version: string };
  contents?: { package: string; version?: string }[];
}
interface Manifest {
  cmdline: string;
  memoryMiB: number;
  files: Entry[];
}

const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;

describe('public/guest/manifest.json', () => {
  it('has a kernel command line with the serial console and a memory size', () => {
    expect(manifest.cmdline).toMatch(/(^| )console=ttyS0( |$)/);
    expect(manifest.cmdline).toMatch(/(^| )tsc=reliable( |$)/);
    expect(Number.isInteger(manifest.memoryMiB)).toBe(true);
    expect(manifest.memoryMiB).toBeGreaterThanOrEqual(64);
  });

  it('names a bios, a kernel and an initrd, once each', () => {
    for (const role of ['bios', 'kernel', 'initrd']) {
      expect(manifest.files.filter((f) => f.role === role), role).toHaveLength(1);
    }
    const known = new Set(['bios', 'vgabios', 'kernel', 'initrd']);
    for (const f of manifest.files) expect(known.has(f.role), f.role).toBe(true);
    const names = manifest.files.map((f) => f.file);
    expect(new Set(names).size).toBe(names.length);
  });

  it('records where every file came from', () => {
    for (const f of manifest.files) {
      expect(f.source.package, f.file).toMatch(/\S/);
      expect(f.source.version, f.file).toMatch(/\S/);
    }
    const initrd = manifest.files.find((f) => f.role === 'initrd');
    const pkgs = (initrd?.contents ?? []).map((c) => c.package);
    for (const p of ['busybox', 'fio', 'e2fsprogs']) expect(pkgs, p).toContain(p);
  });

  for (const f of manifest.files) {
    it(`${f.file} (${f.role}) exists with the listed size and sha256`, () => {
      // Plain names only: the manifest must not point outside public/guest.
      expect(f.file).toBe(path.basename(f.file));
      const p = path.join(dir, f.file);
      expect(statSync(p).size).toBe(f.size);
      const sum = createHash('sha256').update(readFileSync(p)).digest('hex');
      expect(sum).toBe(f.sha256);
    });
  }

  it('lists every file in public/guest', () => {
    const listed = new Set(['manifest.json', ...manifest.files.map((f) => f.file)]);
    const unlisted = readdirSync(dir).filter((name) => !listed.has(name));
    expect(unlisted).toEqual([]);
  });

  it('has an uncompressed newc cpio as its initrd', () => {
    const initrd = manifest.files.find((f) => f.role === 'initrd')!;
    const magic = readFileSync(path.join(dir, initrd.file)).subarray(0, 6).toString('latin1');
    expect(magic).toBe('070701');
  });
});
