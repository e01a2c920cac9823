/**
 * The lab's disks as the page sees them: raw image files in OPFS /disks. Listing, creating,
 * deleting, uploading and downloading happen here on the page's thread; the VM worker opens
 * the one it boots with (src/backends/opfs-block-backend.ts).
 */
import { DISKS_DIR, DiskError, validateDiskName } from './disk-names.ts';
import { parseDiskTemplates, templateExtents, templateFor, type DiskTemplate, type TemplateExtent } from './ext4-template.ts';

export interface DiskInfo {
  name: string;
  /** Capacity: the image file's size in bytes. */
  size: number;
  lastModified: number;
}

export interface StorageUsage {
  usage: number;
  quota: number;
}

const MiB = 1024 * 1024;
const UPLOAD_CHUNK = 8 * MiB;
export const DEFAULT_DISK = { name: 'lab', sizeMiB: 128 } as const;

function storageFull(e: unknown): boolean {
  return (e as DOMException)?.name === 'QuotaExceededError';
}

async function disksDir(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(DISKS_DIR, { create: true });
}

export async function listDisks(): Promise<DiskInfo[]> {
  const dir = await disksDir();
  const out: DiskInfo[] = [];
  // The async iterator is not in every lib.dom yet.
  for await (const [name, handle] of (dir as unknown as AsyncIterable<[string, FileSystemHandle]>)) {
    if (handle.kind !== 'file') continue;
    const file = await (handle as FileSystemFileHandle).getFile();
    out.push({ name, size: file.size, lastModified: file.lastModified });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export async function storageUsage(): Promise<StorageUsage> {
  const e = await navigator.storage.estimate();
  return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
}

async function exists(dir: FileSystemDirectoryHandle, name: string): Promise<boolean> {
  try {
    await dir.getFileHandle(name);
    return true;
  } catch {
    return false;
  }
}

/** The ext4 templates new disks are formatted with: the guest image manifest's "diskTemplates". */
export type TemplateSource = () => Promise<DiskTemplate[]>;

export const manifestTemplates: TemplateSource = async () => {
  const res = await fetch(new URL('guest/manifest.json', document.baseURI));
  if (!res.ok) throw new Error(`guest/manifest.json: HTTP ${res.status}`);
  return parseDiskTemplates(((await res.json()) as { diskTemplates?: unknown }).diskTemplates);
};

/** The formatted blocks for a new disk of this size, or none (blank: the guest formats it). */
async function formatFor(sizeBytes: number, templates: TemplateSource): Promise<TemplateExtent[]> {
  try {
    const template = templateFor(await templates(), sizeBytes);
    return template ? await templateExtents(template) : [];
  } catch (e) {
    console.warn(`new disk left blank: ${(e as Error).message}`);
    return [];
  }
}

/**
 * Creates a disk: zero-filled, and already formatted ext4 (own UUID) when the guest image has
 * a template of that size; otherwise blank, and the guest formats it at its first attach.
 */
export async function createDisk(name: string, sizeBytes: number, templates: TemplateSource = manifestTemplates): Promise<void> {
  validateDiskName(name);
  if (!Number.isInteger(sizeBytes) || sizeBytes < MiB || sizeBytes % 512 !== 0) {
    throw new DiskError('disk-invalid', 'a disk must be at least 1 MiB and a multiple of 512 bytes');
  }
  const dir = await disksDir();
  if (await exists(dir, name)) throw new DiskError('disk-invalid', `a disk named "${name}" already exists`);
  const extents = await formatFor(sizeBytes, templates);
  const handle = await dir.getFileHandle(name, { create: true });
  try {
    const w = await handle.createWritable();
    await w.truncate(sizeBytes);
    for (const { offset, bytes } of extents) {
      await w.write({ type: 'write', position: offset, data: bytes as Uint8Array<ArrayBuffer> });
    }
    await w.close();
  } catch (e) {
    await dir.removeEntry(name).catch(() => undefined);
    if (storageFull(e)) throw new DiskError('storage-full', `not enough storage for a ${Math.round(sizeBytes / MiB)} MiB disk`);
    throw e;
  }
}

export async function deleteDisk(name: string): Promise<void> {
  const dir = await disksDir();
  try {
    await dir.removeEntry(name);
  } catch (e) {
    if ((e as DOMException).name === 'NoModificationAllowedError') {
      throw new DiskError('disk-in-use', `disk "${name}" is in use (by this VM or another tab); stop it first`);
    }
    throw e;
  }
}

/** Stores a raw image file as disk `name`. */
export async function uploadDisk(name: string, file: Blob, onProgress: (done: number, total: number) => void = () => {}): Promise<void> {
  validateDiskName(name);
  if (file.size === 0 || file.size % 512 !== 0) {
    throw new DiskError('disk-invalid', `the file is ${file.size} bytes: a raw disk image must be a non-zero multiple of 512 bytes`);
  }
  const dir = await disksDir();
  if (await exists(dir, name)) throw new DiskError('disk-invalid', `a disk named "${name}" already exists`);
  const handle = await dir.getFileHandle(name, { create: true });
  let w: FileSystemWritableFileStream | undefined;
  try {
    w = await handle.createWritable();
    for (let at = 0; at < file.size; at += UPLOAD_CHUNK) {
      await w.write({ type: 'write', position: at, data: file.slice(at, at + UPLOAD_CHUNK) });
      onProgress(Math.min(at + UPLOAD_CHUNK, file.size), file.size);
    }
    await w.close();
  } catch (e) {
    await w?.abort().catch(() => undefined);
    await dir.removeEntry(name).catch(() => undefined);
    if (storageFull(e)) throw new DiskError('storage-full', 'storage full: the image does not fit in this browser\'s quota');
    throw e;
  }
}

/** The disk's current bytes (works while a VM has it open: OPFS still hands out File snapshots). */
export async function diskFile(name: string): Promise<File> {
  const dir = await disksDir();
  try {
    return await (await dir.getFileHandle(name)).getFile();
  } catch {
    throw new DiskError('disk-missing', `there is no disk named "${name}"`);
  }
}

/** Saves the disk as `<name>.img` through the browser's download. */
export async function downloadDisk(name: string): Promise<void> {
  const file = await diskFile(name);
  const url = URL.createObjectURL(file);
  const a = document.createElement('a');
  a.href = url;
  a.download = `${name}.img`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The disk a fresh lab boots with: created on first visit. */
export async function ensureDefaultDisk(): Promise<void> {
  const dir = await disksDir();
  if (!(await exists(dir, DEFAULT_DISK.name))) await createDisk(DEFAULT_DISK.name, DEFAULT_DISK.sizeMiB * MiB);
}
