/** Why a state file was refused; every parser path in src/vm/snapshot throws only this. */

export type SnapshotErrorKind =
  /** The file ends before the end its header announces (an interrupted download or copy). */
  | 'truncated'
  /** A checksum, length or field is wrong: the bytes were damaged or not written by us. */
  | 'corrupt'
  /** Written in a format version this lab cannot read (a newer lab saved it). */
  | 'version'
  /** Saved from another guest image than the one this lab runs. */
  | 'foreign-image'
  /** Over one of the format's bounds (file, v86 state, device state, disk data). */
  | 'too-large'
  /** Not a virtio-lab state file at all (wrong magic). */
  | 'not-a-snapshot';

export class SnapshotError extends Error {
  constructor(
    readonly kind: SnapshotErrorKind,
    /** A sentence for the user. */
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** "12.3 MiB" / "4.00 GiB" / "980 bytes", for messages. */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} bytes`;
}
