/**
 * Node-side helpers for booting the guest with its disk attached late, used by the
 * integration tests and the snapshot spike: a guest directory whose manifest carries the
 * flag, and a disk image file made from the image's ext4 template (as the page's disk store
 * makes one).
 */
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parseDiskTemplates, templateExtents, templateFor } from '../../disks/ext4-template.ts';
import type { GuestManifest } from '../guest-image.ts';
import { withLateDisk } from './late-disk.ts';

const MiB = 1024 * 1024;

function readManifest(guestDir: string): GuestManifest {
  return JSON.parse(readFileSync(path.join(guestDir, 'manifest.json'), 'utf8')) as GuestManifest;
}

/** Makes `dir` a guest directory: `from`'s files (symlinked) and manifest, with the late-disk flag. */
export function lateDiskGuestDir(from: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const manifest = readManifest(from);
  for (const f of manifest.files) symlinkSync(path.join(from, f.file), path.join(dir, f.file));
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(withLateDisk(manifest)));
  return dir;
}

/** Writes a new, formatted disk image of `sizeMiB` from the guest image's ext4 template. */
export async function templateDiskFile(guestDir: string, file: string, sizeMiB: number): Promise<void> {
  const template = templateFor(parseDiskTemplates(readManifest(guestDir).diskTemplates), sizeMiB * MiB);
  if (!template) throw new Error(`the guest image in ${guestDir} has no ${sizeMiB} MiB disk template`);
  const extents = await templateExtents(template);
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, sizeMiB * MiB);
    for (const { offset, bytes } of extents) writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}
