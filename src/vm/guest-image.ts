/**
 * The guest image: public/guest/manifest.json names the BIOS, kernel and initramfs with
 * their sizes and sha256. Both the worker (fetch) and the Node runner (fs) load it through
 * here, so a missing or corrupted file gets the same clear error everywhere.
 */
import type { GuestFileCache } from './guest-image-cache.ts';
import type { LoadProgress, VmErrorKind } from './protocol.ts';

export type GuestFileRole = 'bios' | 'vgabios' | 'kernel' | 'initrd';

export interface GuestFileEntry {
  role: GuestFileRole;
  file: string;
  sha256: string;
  size: number;
  source: { package: string; version: string };
}

export interface GuestManifest {
  cmdline: string;
  memoryMiB: number;
  files: GuestFileEntry[];
  /** ext4 templates for new disks (src/disks/ext4-template.ts parses them). */
  diskTemplates?: unknown;
}

export interface GuestImage {
  manifest: GuestManifest;
  bios: Uint8Array;
  vgabios?: Uint8Array;
  kernel: Uint8Array;
  initrd: Uint8Array;
}

/** A loading failure the page can explain. */
export class GuestImageError extends Error {
  constructor(
    readonly kind: Extract<VmErrorKind, 'image-missing' | 'image-checksum'>,
    message: string,
  ) {
    super(message);
    this.name = 'GuestImageError';
  }
}

/** Fetches one file of the image by name; reports bytes as they arrive. */
export type FileFetcher = (name: string, onProgress: (loaded: number, total: number) => void) => Promise<Uint8Array>;

export function parseManifest(json: unknown): GuestManifest {
  const m = json as Partial<GuestManifest> | null;
  if (!m || typeof m.cmdline !== 'string' || !Array.isArray(m.files) || typeof m.memoryMiB !== 'number') {
    throw new GuestImageError('image-missing', 'guest/manifest.json is not a guest image manifest');
  }
  for (const role of ['bios', 'kernel', 'initrd'] as const) {
    if (!m.files.some((f) => f.role === role)) {
      throw new GuestImageError('image-missing', `guest/manifest.json names no ${role} file`);
    }
  }
  return m as GuestManifest;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function verified(entry: GuestFileEntry, bytes: Uint8Array): Promise<GuestImageError | undefined> {
  if (bytes.length !== entry.size) {
    return new GuestImageError('image-checksum', `guest file ${entry.file}: ${bytes.length} bytes, manifest says ${entry.size}`);
  }
  const sum = await sha256Hex(bytes);
  if (sum !== entry.sha256) {
    return new GuestImageError(
      'image-checksum',
      `guest file ${entry.file} fails its checksum (sha256 ${sum.slice(0, 12)}…, manifest says ${entry.sha256.slice(0, 12)}…)`,
    );
  }
  return undefined;
}

/** The cache's copy if it still matches the manifest; a damaged copy is dropped. */
async function fromCache(cache: GuestFileCache, entry: GuestFileEntry): Promise<Uint8Array | undefined> {
  const bytes = await cache.get(entry).catch(() => undefined);
  if (!bytes) return undefined;
  if (!(await verified(entry, bytes))) return bytes;
  await cache.delete(entry).catch(() => undefined);
  return undefined;
}

export interface LoadOptions {
  /** Where verified files are kept between visits (the browser's Cache Storage). */
  cache?: GuestFileCache;
}

/**
 * Loads and verifies every file the manifest names: from the cache when it holds a copy with
 * the manifest's sha256, else through `fetchFile` (and then into the cache).
 */
export async function loadGuestImage(
  manifest: GuestManifest,
  fetchFile: FileFetcher,
  onProgress: (p: LoadProgress) => void = () => {},
  { cache }: LoadOptions = {},
): Promise<GuestImage> {
  const total = manifest.files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  const loaded = await Promise.all(
    manifest.files.map(async (entry) => {
      const cached = cache && (await fromCache(cache, entry));
      if (cached) {
        done += cached.length;
        onProgress({ file: entry.file, loaded: done, total });
        return { entry, bytes: cached };
      }
      let mine = 0;
      const bytes = await fetchFile(entry.file, (n) => {
        done += n - mine;
        mine = n;
        onProgress({ file: entry.file, loaded: done, total });
      });
      done += bytes.length - mine;
      const error = await verified(entry, bytes);
      if (error) throw error;
      await cache?.put(entry, bytes).catch(() => undefined);
      return { entry, bytes };
    }),
  );
  onProgress({ file: 'verifying', loaded: total, total });
  await cache?.retainOnly(manifest.files).catch(() => undefined);
  const byRole = (role: GuestFileRole) => loaded.find((l) => l.entry.role === role)?.bytes;
  return {
    manifest,
    bios: byRole('bios')!,
    vgabios: byRole('vgabios'),
    kernel: byRole('kernel')!,
    initrd: byRole('initrd')!,
  };
}
