/**
 * The guest image's files kept by the browser between visits (Cache Storage), keyed by the
 * manifest's sha256: a return visit with the same image reads them locally and downloads
 * nothing but the manifest; a rebuilt image changes the hashes, so its files are fetched
 * and the old ones dropped. Best effort: a cache that fails (no Cache Storage, quota) only
 * costs a download.
 */
import type { GuestFileEntry } from './guest-image.ts';

export interface GuestFileCache {
  /** The bytes stored for this entry (name + sha256), if any; not yet verified. */
  get(entry: GuestFileEntry): Promise<Uint8Array | undefined>;
  /** Stores bytes that matched the entry's sha256. */
  put(entry: GuestFileEntry, bytes: Uint8Array): Promise<void>;
  delete(entry: GuestFileEntry): Promise<void>;
  /** Drops everything not named by these entries (files of older images). */
  retainOnly(entries: readonly GuestFileEntry[]): Promise<void>;
}

export const GUEST_CACHE_NAME = 'virtio-lab-guest-image';

/**
 * A GuestFileCache on Cache Storage (`caches`, in windows and workers). Keys are the file's
 * URL with `?sha256=` appended: content-addressed, so an entry can never be stale.
 */
export function cacheStorageGuestFiles(storage: CacheStorage, baseUrl: string, cacheName = GUEST_CACHE_NAME): GuestFileCache {
  const key = (e: GuestFileEntry) => {
    const url = new URL(e.file, baseUrl);
    url.search = `sha256=${e.sha256}`;
    return url.href;
  };
  const open = () => storage.open(cacheName);
  return {
    async get(entry) {
      const res = await (await open()).match(key(entry));
      return res ? new Uint8Array(await res.arrayBuffer()) : undefined;
    },
    async put(entry, bytes) {
      const body = new Blob([bytes as Uint8Array<ArrayBuffer>]);
      await (await open()).put(key(entry), new Response(body, { headers: { 'content-type': 'application/octet-stream' } }));
    },
    async delete(entry) {
      await (await open()).delete(key(entry));
    },
    async retainOnly(entries) {
      const keep = new Set(entries.map(key));
      const cache = await open();
      for (const req of await cache.keys()) {
        if (!keep.has(req.url)) await cache.delete(req);
      }
    },
  };
}

/** Cache Storage where this context has it (a secure context), else none. */
export function browserGuestFileCache(baseUrl: string): GuestFileCache | undefined {
  return typeof caches === 'undefined' ? undefined : cacheStorageGuestFiles(caches, baseUrl);
}
