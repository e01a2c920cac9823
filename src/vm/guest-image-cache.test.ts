// A return visit must download no guest file: loadGuestImage with the Cache Storage adapter
// over an in-memory stand-in for the browser's CacheStorage (the only mock here).
import { describe, expect, it } from 'vitest';
import { cacheStorageGuestFiles, GUEST_CACHE_NAME } from './guest-image-cache.ts';
import { GuestImageError, loadGuestImage, sha256Hex, type GuestFileEntry, type GuestManifest } from './guest-image.ts';

const BASE = 'https://lab.test/guest/';

/** CacheStorage semantics the adapter relies on: match/put/delete/keys by URL. */
class MemoryCache {
  readonly entries = new Map<string, Uint8Array>();
  failPut = false;
  async match(url: string): Promise<Response | undefined> {
    const b = this.entries.get(url);
    return b ? new Response(b.slice() as Uint8Array<ArrayBuffer>) : undefined;
  }
  async put(url: string, res: Response): Promise<void> {
    if (this.failPut) throw new DOMException('quota', 'QuotaExceededError');
    this.entries.set(url, new Uint8Array(await res.arrayBuffer()));
  }
  async delete(req: string | Request): Promise<boolean> {
    return this.entries.delete(typeof req === 'string' ? req : req.url);
  }
  async keys(): Promise<Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
}

function memoryStorage(cache = new MemoryCache()): { storage: CacheStorage; cache: MemoryCache; opened: string[] } {
  const opened: string[] = [];
  const storage = { open: async (name: string) => (opened.push(name), cache) } as unknown as CacheStorage;
  return { storage, cache, opened };
}

async function image(files: Record<string, string>): Promise<{ manifest: GuestManifest; bytes: Map<string, Uint8Array> }> {
  const bytes = new Map<string, Uint8Array>();
  const entries: GuestFileEntry[] = [];
  const roles = { 'bios.bin': 'bios', bzImage: 'kernel', 'initrd.cpio': 'initrd' } as const;
  for (const [file, text] of Object.entries(files)) {
    const b = new TextEncoder().encode(text);
    bytes.set(file, b);
    entries.push({ role: roles[file as keyof typeof roles], file, sha256: await sha256Hex(b), size: b.length, source: { package: 'p', version: '1' } });
  }
  return { manifest: { cmdline: 'console=ttyS0', memoryMiB: 128, files: entries }, bytes };
}

/** A network that counts what it served; `tamper` serves wrong bytes for that file. */
function network(bytes: Map<string, Uint8Array>, tamper?: string) {
  const fetched: string[] = [];
  const fetchFile = async (name: string) => {
    fetched.push(name);
    const b = bytes.get(name)!;
    return name === tamper ? new TextEncoder().encode('X'.repeat(b.length)) : b;
  };
  return { fetched, fetchFile };
}

const v1 = { 'bios.bin': 'seabios', bzImage: 'kernel one', 'initrd.cpio': 'initrd one' };

describe('guest image cache (Cache Storage, keyed by sha256)', () => {
  it('a return visit downloads nothing and gets the same bytes', async () => {
    const { manifest, bytes } = await image(v1);
    const { storage, cache, opened } = memoryStorage();
    const first = network(bytes);
    await loadGuestImage(manifest, first.fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) });
    expect(first.fetched.sort()).toEqual(['bios.bin', 'bzImage', 'initrd.cpio']);
    expect([...cache.entries.keys()]).toContain(`${BASE}bzImage?sha256=${manifest.files[1].sha256}`);
    expect(new Set(opened)).toEqual(new Set([GUEST_CACHE_NAME]));

    const again = network(bytes);
    const img = await loadGuestImage(manifest, again.fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) });
    expect(again.fetched).toEqual([]);
    expect(new TextDecoder().decode(img.kernel)).toBe('kernel one');
    expect(new TextDecoder().decode(img.initrd)).toBe('initrd one');
  });

  it('a damaged cached file is dropped and downloaded again', async () => {
    const { manifest, bytes } = await image(v1);
    const { storage, cache } = memoryStorage();
    await loadGuestImage(manifest, network(bytes).fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) });
    const key = `${BASE}initrd.cpio?sha256=${manifest.files[2].sha256}`;
    cache.entries.set(key, new TextEncoder().encode('initrd 0ne'));
    const net = network(bytes);
    const img = await loadGuestImage(manifest, net.fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) });
    expect(net.fetched).toEqual(['initrd.cpio']);
    expect(new TextDecoder().decode(img.initrd)).toBe('initrd one');
    expect(new TextDecoder().decode(cache.entries.get(key))).toBe('initrd one');
  });

  it('a rebuilt image fetches only what changed and drops the old files', async () => {
    const old = await image(v1);
    const { storage, cache } = memoryStorage();
    await loadGuestImage(old.manifest, network(old.bytes).fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) });
    const next = await image({ ...v1, 'initrd.cpio': 'initrd two' });
    const net = network(next.bytes);
    await loadGuestImage(next.manifest, net.fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) });
    expect(net.fetched).toEqual(['initrd.cpio']);
    const keys = [...cache.entries.keys()];
    expect(keys).toHaveLength(3);
    expect(keys).not.toContain(`${BASE}initrd.cpio?sha256=${old.manifest.files[2].sha256}`);
  });

  it('never caches bytes that fail the checksum', async () => {
    const { manifest, bytes } = await image(v1);
    const { storage, cache } = memoryStorage();
    const err = await loadGuestImage(manifest, network(bytes, 'bzImage').fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect((err as GuestImageError).kind).toBe('image-checksum');
    expect([...cache.entries.keys()].some((k) => k.includes('bzImage'))).toBe(false);
  });

  it('a cache that cannot store (quota) costs a download, not the boot', async () => {
    const { manifest, bytes } = await image(v1);
    const { storage, cache } = memoryStorage();
    cache.failPut = true;
    const net = network(bytes);
    const img = await loadGuestImage(manifest, net.fetchFile, undefined, { cache: cacheStorageGuestFiles(storage, BASE) });
    expect(new TextDecoder().decode(img.bios)).toBe('seabios');
    expect(net.fetched).toHaveLength(3);
  });
});
