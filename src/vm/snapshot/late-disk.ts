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

/** The manifest with the flag appended to its command line (once). */
export function withLateDisk(manifest: GuestManifest): GuestManifest {
  const words = manifest.cmdline.split(/\s+/);
  return words.includes(LATE_DISK_FLAG) ? manifest : { ...manifest, cmdline: `${manifest.cmdline} ${LATE_DISK_FLAG}` };
}
