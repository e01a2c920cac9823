/**
 * What the lab does in the guest right after a VM state was restored, as shell command lines
 * for run(). A restored guest wakes up believing it is the moment it was saved, in the tab
 * that saved it:
 *
 * - its NIC has the saved MAC and lease, but every tab must have its own MAC (two tabs
 *   restored from one state would otherwise share an address in a relay room): the address
 *   changes (Linux's virtio_net takes a new address while up) and DHCP starts over for it;
 * - its entropy pool is the saved one, identical in every tab restored from the state:
 *   bytes from the virtio-rng are mixed in (written to /dev/urandom: mixed, not credited);
 * - its wall clock is the save's: set from the host's;
 * - a boot state was saved before any disk was read or mounted: the disk attached now is
 *   mounted now (a state saved by hand carries its disk, mounted, and skips this).
 */
import { MOUNT_DISK_COMMAND } from './late-disk.ts';

export interface AfterRestore {
  /** The tab's MAC for eth0 ("02:…"), when the VM has a NIC. */
  mac?: string;
  /** Mount the attached disk (a boot state, with a disk attached). */
  attachDisk: boolean;
  /** Host wall clock, ms since the epoch (default Date.now()). */
  now?: number;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Where /init's udhcpc writes its pid. */
const DHCP_PID = '/run/net/udhcpc.pid';
/** The guest's udhcpc, started as /init starts it (the lease lands in /run/net/eth0). */
const DHCP = `udhcpc -f -i eth0 -s /usr/share/udhcpc/default.script -x hostname:virtio-lab -p ${DHCP_PID} >/run/net/udhcpc.log 2>&1 </dev/null &`;

export interface AfterRestoreSteps {
  /** Mounts the disk a boot state left for later; `ready` waits for it. Absent without one. */
  mount?: string;
  /** Clock, entropy, MAC and DHCP: a line that starts them in the background and returns. */
  background: string;
}

/**
 * Only the disk mount holds `ready` back. The rest is started after it, by a second run()
 * once the mount has ended: started any earlier, it would compete with the mount for the
 * guest's CPU (a restored guest runs its first instructions through v86's interpreter, each
 * process costs tens of ms), and no command needs the new lease at once (a cold boot does
 * not wait for DHCP either).
 */
export function afterRestoreSteps(opts: AfterRestore): AfterRestoreSteps {
  const steps: string[] = [];
  const seconds = Math.floor((opts.now ?? Date.now()) / 1000);
  if (opts.mac !== undefined) {
    const mac = opts.mac.toLowerCase();
    // The MAC goes into a shell line: only the exact form passes.
    if (!MAC.test(mac)) throw new Error(`not a MAC address: ${JSON.stringify(opts.mac)}`);
    steps.push(
      // First: the lease takes the longest. The old udhcpc by its pid file (builtins; killall
      // would start a program that reads all of /proc). The new one starts with its script's
      // deconfig: the old address and lease file go then.
      `if [ -e /sys/class/net/eth0 ]; then read -r p < ${DHCP_PID} && kill "$p"; ip link set dev eth0 address ${mac}; ${DHCP} fi`,
    );
  }
  steps.push(`date -u -s @${seconds} >/dev/null`);
  steps.push('dd if=/dev/hwrng of=/dev/urandom bs=64 count=1 2>/dev/null');
  const background = `{ ${steps.join('; ')}; } </dev/null >/dev/null 2>&1 &`;
  return opts.attachDisk ? { mount: MOUNT_DISK_COMMAND, background } : { background };
}
