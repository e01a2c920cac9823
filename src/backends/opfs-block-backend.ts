/**
 * A disk image in the Origin Private File System, through a FileSystemSyncAccessHandle
 * (dedicated workers only). The handle is OPFS's lock: a second readwrite open anywhere in
 * the origin fails with NoModificationAllowedError, which we turn into DiskInUseError, so a
 * second tab can never write under the first one.
 */
import { BlockBackendError, writeZeroesInChunks, type BlockBackend } from './block-backend.ts';
import { DISKS_DIR, DiskError, validateDiskName } from '../disks/disk-names.ts';

/** The parts of FileSystemSyncAccessHandle we use (typed here: lib.dom lags behind). */
interface SyncAccessHandle {
  read(buffer: Uint8Array, options: { at: number }): number;
  write(buffer: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  getSize(): number;
  flush(): void;
  close(): void;
}

/**
 * 'readwrite-unsafe' lets several handles on one file coexist (the VM worker reads and the
 * write-behind writer writes): OPFS no longer keeps other tabs out, a Web Lock does
 * (write-behind/open-write-behind.ts).
 */
type SyncHandleMode = 'readwrite' | 'read-only' | 'readwrite-unsafe';

function asBackendError(e: unknown, what: string): BlockBackendError {
  const err = e as DOMException;
  if (err?.name === 'QuotaExceededError') return new BlockBackendError('quota', `${what}: storage full (${err.message})`);
  return new BlockBackendError('io', `${what}: ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`);
}

export class OpfsBlockBackend implements BlockBackend {
  readonly size: number;
  readonly coalesceRequests = true;
  /** Host ms inside SyncAccessHandle read/write/flush calls (two clock reads per call: ~0.1 µs). */
  mediumMs = 0;

  private constructor(
    private readonly handle: SyncAccessHandle,
    readonly readOnly: boolean,
    readonly name: string,
  ) {
    this.size = handle.getSize();
  }

  /** Opens disk `name` (in /disks of the origin's OPFS). */
  static async open(name: string, opts: { readOnly?: boolean; shared?: boolean } = {}): Promise<OpfsBlockBackend> {
    validateDiskName(name);
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle(DISKS_DIR, { create: true });
    let file: FileSystemFileHandle;
    try {
      file = await dir.getFileHandle(name);
    } catch {
      throw new DiskError('disk-missing', `there is no disk named "${name}"`);
    }
    const mode: SyncHandleMode = opts.readOnly ? 'read-only' : opts.shared ? 'readwrite-unsafe' : 'readwrite';
    let handle: SyncAccessHandle;
    try {
      const open = file.createSyncAccessHandle as unknown as (o: { mode: SyncHandleMode }) => Promise<SyncAccessHandle>;
      handle = await open.call(file, { mode });
    } catch (e) {
      if ((e as DOMException).name === 'NoModificationAllowedError') {
        throw new DiskError('disk-in-use', `disk "${name}" is in use by another tab`);
      }
      throw e;
    }
    const backend = new OpfsBlockBackend(handle, !!opts.readOnly, name);
    if (backend.size % 512 !== 0 || backend.size === 0) {
      handle.close();
      throw new DiskError('disk-invalid', `disk "${name}" is ${backend.size} bytes, not a non-zero multiple of 512`);
    }
    return backend;
  }

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockBackendError('range', `[${offset}, +${length}) is outside the ${this.size}-byte disk`);
    }
  }

  read(offset: number, dst: Uint8Array): void {
    this.check(offset, dst.length);
    let n: number;
    const t0 = performance.now();
    try {
      n = this.handle.read(dst, { at: offset });
    } catch (e) {
      throw asBackendError(e, `read at ${offset}`);
    } finally {
      this.mediumMs += performance.now() - t0;
    }
    if (n < dst.length) dst.fill(0, n); // never expose stale bytes of a guest buffer
  }

  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new BlockBackendError('read-only', `disk "${this.name}" is attached read-only`);
    this.check(offset, src.length);
    let n: number;
    const t0 = performance.now();
    try {
      n = this.handle.write(src, { at: offset });
    } catch (e) {
      throw asBackendError(e, `write at ${offset}`);
    } finally {
      this.mediumMs += performance.now() - t0;
    }
    if (n !== src.length) throw new BlockBackendError('quota', `write at ${offset}: only ${n} of ${src.length} bytes stored (storage full?)`);
  }

  flush(): void {
    if (this.readOnly) return;
    const t0 = performance.now();
    try {
      this.handle.flush();
    } catch (e) {
      throw asBackendError(e, 'flush');
    } finally {
      this.mediumMs += performance.now() - t0;
    }
  }

  discard(offset: number, length: number): void {
    // OPFS has no hole punching; discarded sectors read back as zeroes in our backends.
    this.writeZeroes(offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    if (this.readOnly) throw new BlockBackendError('read-only', `disk "${this.name}" is attached read-only`);
    this.check(offset, length);
    writeZeroesInChunks((at, zeroes) => this.write(at, zeroes), offset, length);
  }

  close(): void {
    try {
      this.handle.flush();
    } catch {
      /* read-only or already closed */
    }
    this.handle.close();
  }
}
