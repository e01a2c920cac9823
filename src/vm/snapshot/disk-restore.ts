/**
 * Puts a saved state's disk back: every block of the file's disk section written into the
 * OPFS disk of the same name (created if this browser has none, resized to the saved size),
 * through the exclusive handle, so a disk another tab uses is refused, not overwritten.
 */
import { DISKS_DIR, DiskError, validateDiskName } from '../../disks/disk-names.ts';
import { restoreSparseDisk, type SparseDisk } from './sparse-disk.ts';
import type { ZstdCodec } from './zstd.ts';

interface SyncAccessHandle {
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

export async function restoreOpfsDisk(name: string, disk: SparseDisk, zstd: ZstdCodec): Promise<void> {
  validateDiskName(name);
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle(DISKS_DIR, { create: true });
  const file = await dir.getFileHandle(name, { create: true });
  let handle: SyncAccessHandle;
  try {
    handle = await (file.createSyncAccessHandle as unknown as () => Promise<SyncAccessHandle>).call(file);
  } catch (e) {
    if ((e as DOMException).name === 'NoModificationAllowedError') {
      throw new DiskError('disk-in-use', `disk "${name}" is in use by another tab: the state's disk cannot be put back`);
    }
    throw e;
  }
  try {
    let size = handle.getSize();
    await restoreSparseDisk(
      disk,
      {
        get size() {
          return size;
        },
        write: (offset, src) => {
          handle.write(src, { at: offset });
        },
        truncate: (n) => {
          handle.truncate(n);
          size = n;
        },
      },
      zstd,
    );
    handle.flush();
  } finally {
    handle.close();
  }
}
