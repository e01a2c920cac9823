/**
 * Opens the disk a browser VM boots with. Readwrite takes OPFS's exclusive handle; a
 * read-only attach shares a read-only handle with other readers, or — when another tab holds
 * the disk readwrite — reads a File snapshot instead, so a second tab can still look.
 */
import type { BlockBackend } from '../backends/block-backend.ts';
import { BlobBlockBackend } from '../backends/blob-block-backend.ts';
import { MemoryBlockBackend } from '../backends/memory-block-backend.ts';
import { OpfsBlockBackend } from '../backends/opfs-block-backend.ts';
import { WriteBackCache } from '../backends/write-back-cache.ts';
import { DISKS_DIR, DiskError, memoryDiskBytes } from '../disks/disk-names.ts';
import type { AttachedDisk, DiskAttachment } from './protocol.ts';

/** A restarted VM's predecessor may still be letting go of the handle: retry briefly. */
const IN_USE_RETRIES = 8;
const RETRY_MS = 250;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function openWithRetry(name: string, readOnly: boolean): Promise<OpfsBlockBackend> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await OpfsBlockBackend.open(name, { readOnly });
    } catch (e) {
      if (!(e instanceof DiskError && e.kind === 'disk-in-use') || attempt >= IN_USE_RETRIES) throw e;
      await sleep(RETRY_MS);
    }
  }
}

export async function openDisk(want: DiskAttachment): Promise<{ backend: BlockBackend; disk: AttachedDisk }> {
  const memoryBytes = memoryDiskBytes(want.name);
  if (memoryBytes !== undefined) {
    const backend = new MemoryBlockBackend(memoryBytes, { readOnly: want.readOnly });
    return { backend, disk: { ...want, size: backend.size, snapshot: false } };
  }
  try {
    const opfs = await openWithRetry(want.name, want.readOnly);
    // Small writes complete from a worker-side cache (virtio-blk's write-back mode); FLUSH,
    // a 1 s timer, a full 16 MiB cache, a snapshot and close() take them to OPFS.
    const backend = want.readOnly ? opfs : new WriteBackCache(opfs);
    return { backend, disk: { ...want, size: backend.size, snapshot: false } };
  } catch (e) {
    if (!(want.readOnly && e instanceof DiskError && e.kind === 'disk-in-use')) throw e;
  }
  const root = await navigator.storage.getDirectory();
  const file = await (await (await root.getDirectoryHandle(DISKS_DIR)).getFileHandle(want.name)).getFile();
  const backend = new BlobBlockBackend(file, `disk "${want.name}"`);
  return { backend, disk: { ...want, size: backend.size, snapshot: true } };
}
