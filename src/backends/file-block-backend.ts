/**
 * A raw disk image in a host file, for the Node runner and integration tests. Synchronous
 * fs calls on purpose: the device serves a whole kick inside the notify handler.
 */
import fs from 'node:fs';
import { BlockBackendError, writeZeroesInChunks, type BlockBackend, type BlockBackendErrorKind } from './block-backend.ts';

export interface FileBlockBackendOptions {
  /** Open O_RDONLY: the guest sees VIRTIO_BLK_F_RO. */
  readOnly?: boolean;
}

/** A Node fs error → our kinds: out of space is 'quota' (the page says "storage full"). */
export function blockErrorKind(error: unknown, op: 'read' | 'write' | 'flush'): BlockBackendErrorKind {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'quota';
  if (code === 'EROFS' || (code === 'EBADF' && op === 'write')) return 'read-only';
  return 'io';
}

export class FileBlockBackend implements BlockBackend {
  readonly size: number;
  readonly coalesceRequests = true;
  private fd: number | undefined;

  private constructor(
    fd: number,
    size: number,
    readonly readOnly: boolean,
    readonly path: string,
  ) {
    this.fd = fd;
    this.size = size;
  }

  /** Opens an existing image. Its size must be a non-zero multiple of 512 bytes. */
  static open(path: string, opts: FileBlockBackendOptions = {}): FileBlockBackend {
    const readOnly = opts.readOnly ?? false;
    const fd = fs.openSync(path, readOnly ? 'r' : 'r+');
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw new Error(`${path} is not a regular file`);
      if (stat.size === 0 || stat.size % 512 !== 0) {
        throw new Error(
          `${path} is ${stat.size} bytes: a disk image must be a non-zero multiple of 512 bytes ` +
            `(e.g. truncate -s 64M ${path})`,
        );
      }
      return new FileBlockBackend(fd, stat.size, readOnly, path);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  private handle(op: string, offset: number, length: number, write: boolean): number {
    if (this.fd === undefined) throw new BlockBackendError('io', `${op} on closed disk ${this.path}`);
    if (write && this.readOnly) throw new BlockBackendError('read-only', `${this.path} is open read-only`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockBackendError('range', `${op} [${offset}, +${length}) is outside the ${this.size}-byte disk ${this.path}`);
    }
    return this.fd;
  }

  private fail(error: unknown, op: 'read' | 'write' | 'flush', what: string): never {
    if (error instanceof BlockBackendError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new BlockBackendError(blockErrorKind(error, op), `${what} ${this.path}: ${message}`);
  }

  read(offset: number, dst: Uint8Array): void {
    const fd = this.handle('read', offset, dst.length, false);
    try {
      for (let done = 0; done < dst.length; ) {
        const n = fs.readSync(fd, dst, done, dst.length - done, offset + done);
        if (n === 0) throw new Error(`unexpected end of file at ${offset + done}`);
        done += n;
      }
    } catch (error) {
      this.fail(error, 'read', `read [${offset}, +${dst.length})`);
    }
  }

  write(offset: number, src: Uint8Array): void {
    const fd = this.handle('write', offset, src.length, true);
    try {
      for (let done = 0; done < src.length; ) {
        done += fs.writeSync(fd, src, done, src.length - done, offset + done);
      }
    } catch (error) {
      this.fail(error, 'write', `write [${offset}, +${src.length})`);
    }
  }

  flush(): void {
    if (this.readOnly) return;
    const fd = this.handle('flush', 0, 0, false);
    try {
      fs.fdatasyncSync(fd);
    } catch (error) {
      this.fail(error, 'flush', 'fdatasync');
    }
  }

  /** Discarded ranges read back as zeroes, like writeZeroes (Node has no hole punching). */
  discard(offset: number, length: number): void {
    this.writeZeroes(offset, length);
  }

  writeZeroes(offset: number, length: number): void {
    this.handle('writeZeroes', offset, length, true);
    writeZeroesInChunks((at, zeroes) => this.write(at, zeroes), offset, length);
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
  }
}
