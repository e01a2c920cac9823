/**
 * A read-only disk over a File/Blob, read with FileReaderSync (dedicated workers). Used to
 * boot a disk read-only while another tab holds it readwrite: OPFS still lets us take a
 * File snapshot then. If the other tab changes the file, the snapshot stops being readable
 * and reads fail as I/O errors — never as wrong data.
 */
import { BlockBackendError, type BlockBackend } from './block-backend.ts';

export class BlobBlockBackend implements BlockBackend {
  readonly readOnly = true;
  readonly coalesceRequests = true;
  readonly size: number;
  private readonly reader = new FileReaderSync();

  constructor(
    private readonly blob: Blob,
    private readonly label: string,
  ) {
    this.size = blob.size - (blob.size % 512);
  }

  read(offset: number, dst: Uint8Array): void {
    if (offset < 0 || offset + dst.length > this.size) {
      throw new BlockBackendError('range', `[${offset}, +${dst.length}) is outside the ${this.size}-byte disk`);
    }
    try {
      dst.set(new Uint8Array(this.reader.readAsArrayBuffer(this.blob.slice(offset, offset + dst.length))));
    } catch (e) {
      throw new BlockBackendError('io', `${this.label}: the snapshot is no longer readable (${(e as Error).name})`);
    }
  }

  private refuse(): never {
    throw new BlockBackendError('read-only', `${this.label} is a read-only snapshot`);
  }

  write(): void {
    this.refuse();
  }
  discard(): void {
    this.refuse();
  }
  writeZeroes(): void {
    this.refuse();
  }
  flush(): void {}
  close(): void {}
}
