/** Disk naming rules and errors, shared by the page's disk store and the worker's backends. */

/** OPFS folder holding the lab's disk images, one raw file per disk. */
export const DISKS_DIR = 'disks';

/** The name is the disk's virtio-blk serial (GET_ID has 20 bytes), so it stays short ASCII. */
export const DISK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$/;

export type DiskErrorKind = 'disk-in-use' | 'disk-missing' | 'disk-invalid' | 'storage-full';

export class DiskError extends Error {
  constructor(
    readonly kind: DiskErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'DiskError';
  }
}

/** "mem:SIZE_MiB" names a scratch disk in the worker's memory, not a file in OPFS. */
export const MEMORY_DISK = /^mem:(\d{1,5})$/;
export const MEMORY_DISK_MAX_MIB = 2048;

/** The size in bytes of a "mem:N" disk, or undefined when `name` is an OPFS disk's name. */
export function memoryDiskBytes(name: string): number | undefined {
  if (!name.startsWith('mem:')) return undefined;
  const mib = Number(MEMORY_DISK.exec(name)?.[1] ?? NaN);
  if (!(mib >= 1 && mib <= MEMORY_DISK_MAX_MIB)) {
    throw new DiskError('disk-invalid', `"${name}": a memory disk is mem:<MiB>, 1 to ${MEMORY_DISK_MAX_MIB} MiB`);
  }
  return mib * 1024 * 1024;
}

export function validateDiskName(name: string): void {
  if (!DISK_NAME.test(name)) {
    throw new DiskError(
      'disk-invalid',
      `"${name}" is not a disk name: 1–20 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}
