/**
 * The kernel command-line flag that makes the guest's /init leave /dev/vda alone (not read,
 * not mounted) until `virtio-lab-disk attach`: a state saved at the prompt of such a boot
 * holds no filesystem state or cached block of any disk, so it may be restored with another
 * disk attached. The flag has a dot, so the kernel ignores it and /init reads /proc/cmdline.
 */
import type { GuestManifest } from '../guest-image.ts';

export const LATE_DISK_FLAG = 'virtio_lab.disk=late';

/** The in-guest command that does what /init does for /dev/vda by default (format if blank, mount). */
export const ATTACH_DISK_COMMAND = 'virtio-lab-disk attach';

/**
 * What the lab runs: a plain mount first (one process: the disk is almost always an ext4
 * made from a template), the whole attach (its checks, formatting a blank disk, read-only
 * and journal cases, its messages) only when that fails. Each process costs tens of ms in
 * the emulator, and this runs before `ready` on every restore.
 */
export const MOUNT_DISK_COMMAND = `mount -t ext4 /dev/vda /mnt/disk 2>/dev/null || ${ATTACH_DISK_COMMAND}`;

/** The manifest with the flag appended to its command line (once). */
export function withLateDisk(manifest: GuestManifest): GuestManifest {
  const words = manifest.cmdline.split(/\s+/);
  return words.includes(LATE_DISK_FLAG) ? manifest : { ...manifest, cmdline: `${manifest.cmdline} ${LATE_DISK_FLAG}` };
}
