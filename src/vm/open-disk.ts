/**
 * Opens the disk a browser VM boots with. Readwrite takes OPFS's exclusive handle; a
 * read-only attach shares a read-only handle with other readers, or — when another tab holds
 * the disk readwrite — reads a File snapshot instead, so a second tab can still look.
 */
import type { BlockBackend } from '../backends/block-backend.ts';
import { BlobBlockBackend } from '../backends/blob-block-backend.ts';
import { MemoryBlockBackend } from '../backends/memory-block-backend.ts';
import { OpfsBlockBackend } from '../backends/opfs-block-backend.ts';
import { ReadCache } from '../backends/read-cache.ts';
import { WriteBackCache } from '../backends/write-back-cache.ts';
import { openWriteBehind } from '../backends/write-behind/open-write-behind.ts';
import { DISKS_DIR, DiskError, memoryDiskBytes } from '../disks/disk-names.ts';
import type { AttachedDisk, DiskAttachment } from './protocol.ts';

/** A restarted VM's predecessor may still be letting go of the handle: retry briefly. */
const IN_USE_RETRIES = 8;
const RETRY_MS = 250;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Readwrite: writes complete from a cache and a writer worker takes them to OPFS (write-behind),
 * or — where the browser cannot — a synchronous write-back cache in this worker does.
 */
async function openReadWrite(name: string): Promise<BlockBackend> {
  const behind = await openWriteBehind(name);
  // Reads of held chunks cost a memory copy, not an OPFS call on the emulator's thread.
  return new ReadCache(behind ?? new WriteBackCache(await OpfsBlockBackend.open(name)));
}

async function openWithRetry(name: string, readOnly: boolean): Promise<BlockBackend> {
  for (let attempt = 0; ; attempt++) {
    try {
      return readOnly ? await OpfsBlockBackend.open(name, { readOnly }) : await openReadWrite(name);
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
    // Writes complete from a worker-side cache (virtio-blk's write-back mode); the writer sends
    // them to OPFS within 25 ms, and FLUSH, a snapshot and close() wait until they are durable.
    const backend = await openWithRetry(want.name, want.readOnly);
    return { backend, disk: { ...want, size: backend.size, snapshot: false } };
  } catch (e) {
    if (!(want.readOnly && e instanceof DiskError && e.kind === 'disk-in-use')) throw e;
  }
  const root = await navigator.storage.getDirectory();
  const file = await (await (await root.getDirectoryHandle(DISKS_DIR)).getFileHandle(want.name)).getFile();
  const backend = new BlobBlockBackend(file, `disk "${want.name}"`);
  return { backend, disk: { ...want, size: backend.size, snapshot: true } };
}
