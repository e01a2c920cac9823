// New disks arrive formatted: the manifest's ext4 templates, written into a zero-filled image
// by the same code the disk store runs, must give a filesystem that e2fsck passes, with its
// own UUID; a damaged or oversized template must be refused before anything is written.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c } from './crc32c.ts';
import { parseDiskTemplates, templateExtents, templateFor, TemplateError, uuidBytes, type DiskTemplate } from './ext4-template.ts';
import { DEFAULT_DISK } from './disk-store.ts';

const MiB = 1024 * 1024;
const manifestPath = process.env.VIRTIO_LAB_MANIFEST ?? fileURLToPath(new URL('../../public/guest/manifest.json', import.meta.url));
const templates = parseDiskTemplates((JSON.parse(readFileSync(manifestPath, 'utf8')) as { diskTemplates?: unknown }).diskTemplates);

function tool(name: string): string {
  for (const dir of ['/sbin', '/usr/sbin', ...(process.env.PATH ?? '').split(':')]) {
    if (spawnSync('test', ['-x', path.join(dir, name)]).status === 0) return path.join(dir, name);
  }
  throw new Error(`${name} (e2fsprogs) is not installed`);
}

async function writeImage(t: DiskTemplate, file: string, uuid?: string): Promise<void> {
  const identity = uuid ? { uuid: uuidBytes(uuid), hashSeed: uuidBytes(crypto.randomUUID()) } : undefined;
  const extents = await templateExtents(t, identity);
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, t.sizeMiB * MiB);
    for (const { offset, bytes } of extents) writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

function superblockUuid(file: string): string {
  const out = spawnSync(tool('dumpe2fs'), ['-h', file], { encoding: 'utf8' }).stdout;
  return /^Filesystem UUID:\s+(\S+)/m.exec(out)?.[1] ?? '';
}

describe('ext4 disk templates', () => {
  it('computes CRC-32C (the check value)', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it("has one for the default disk's size", () => {
    expect(templateFor(templates, DEFAULT_DISK.sizeMiB * MiB)?.sizeMiB).toBe(DEFAULT_DISK.sizeMiB);
  });

  // 128 MiB: 1 KiB blocks (mke2fs.conf "small"); 1024 MiB: 4 KiB blocks, many groups.
  for (const sizeMiB of [DEFAULT_DISK.sizeMiB, 1024]) {
    it(`${sizeMiB} MiB: e2fsck -fn passes on the written image, which has its own UUID`, async () => {
      const t = templateFor(templates, sizeMiB * MiB)!;
      expect(t).toBeDefined();
      const dir = mkdtempSync(path.join(os.tmpdir(), 'vl-tpl-'));
      try {
        const a = path.join(dir, 'a.img');
        const b = path.join(dir, 'b.img');
        const uuid = crypto.randomUUID();
        await writeImage(t, a, uuid);
        await writeImage(t, b);
        for (const img of [a, b]) {
          const fsck = spawnSync(tool('e2fsck'), ['-fn', img], { encoding: 'utf8' });
          expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
        }
        expect(superblockUuid(a)).toBe(uuid);
        expect(superblockUuid(b)).not.toBe(t.uuid);
        expect(superblockUuid(b)).not.toBe(uuid);
        // The backup superblocks carry the new UUID too (e2fsck -b would otherwise restore the old one).
        const backup = spawnSync(tool('dumpe2fs'), ['-h', '-o', `superblock=${sizeMiB < 512 ? 8193 : 32768}`, '-o', `blocksize=${sizeMiB < 512 ? 1024 : 4096}`, a], { encoding: 'utf8' });
        expect(/^Filesystem UUID:\s+(\S+)/m.exec(backup.stdout)?.[1]).toBe(uuid);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('refuses a template whose bytes fail the sha256', async () => {
    const t = templates[0];
    await expect(templateExtents({ ...t, sha256: '0'.repeat(64) })).rejects.toThrow(TemplateError);
  });

  it('refuses data that inflates to more, or fewer, bytes than the runs hold', async () => {
    const t = templates[0];
    const fewer = { ...t, runs: [...t.runs, { first: t.sizeMiB * 1024 - 1, count: 1 }] };
    await expect(templateExtents(fewer)).rejects.toThrow(/inflates to/);
    const more = { ...t, runs: t.runs.slice(0, -1) };
    await expect(templateExtents(more)).rejects.toThrow(/inflates to/);
    await expect(templateExtents({ ...t, deflateRaw: 'not base64!' })).rejects.toThrow(TemplateError);
    await expect(templateExtents({ ...t, deflateRaw: btoa('garbage, not deflate') })).rejects.toThrow(TemplateError);
  });

  it('refuses runs outside the disk, out of order, or too many bytes', () => {
    const base = { sizeMiB: 1, uuid: '5669c7e1-0000-4000-8000-000000000001', sha256: '0'.repeat(64), deflateRaw: '' };
    expect(() => parseDiskTemplates([{ ...base, runs: '0+1025' }])).toThrow(/outside the disk/);
    expect(() => parseDiskTemplates([{ ...base, runs: '4+1 2+1' }])).toThrow(/out of order/);
    expect(() => parseDiskTemplates([{ ...base, runs: '1+1 1+1' }])).toThrow(/out of order/);
    expect(() => parseDiskTemplates([{ ...base, runs: '0+-1' }])).toThrow(/bad run/);
    expect(() => parseDiskTemplates([{ ...base, sizeMiB: 64, runs: '0+32768' }])).toThrow(/more than/);
    expect(() => parseDiskTemplates([{ ...base, uuid: 'x' }])).toThrow(/malformed/);
    expect(parseDiskTemplates(undefined)).toEqual([]);
  });
});
