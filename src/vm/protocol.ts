import type { InspectorSnapshot } from '../virtio/inspect/types.ts';
import type { RingLayout } from '../virtio/queue/virtqueue.ts';

/**
 * The typed messages between the page (main thread) and the VM worker.
 * Both sides import this file; nothing else crosses the boundary.
 */

export type VmState = 'loading' | 'booting' | 'running' | 'stopped' | 'error';

/** Where a fatal error came from, so the page can say something useful. */
export type VmErrorKind =
  | 'image-missing'
  | 'image-checksum'
  | 'unsupported'
  | 'crash'
  /** The chosen disk is open readwrite in another tab (or this one's previous VM). */
  | 'disk-in-use'
  | 'disk-missing'
  | 'disk-invalid';

/** Which disk the VM boots with. */
export interface DiskAttachment {
  name: string;
  readOnly: boolean;
}

/** The disk as the worker actually opened it. */
export interface AttachedDisk extends DiskAttachment {
  size: number;
  /** Read-only from a File snapshot because another tab holds the disk readwrite. */
  snapshot: boolean;
}

export interface LoadProgress {
  /** File being fetched ("bzImage"), or "verifying". */
  file: string;
  loaded: number;
  total: number;
}

/**
 * Where the NIC's traffic goes: 'relay' (frames to a relay room, whose gateway NATs), 'wisp'
 * (the gateway runs in the worker, TCP/UDP leave as wisp streams), 'fetch' (the gateway in the
 * worker, guest HTTP on port 80 becomes fetch()), 'none' (no NIC).
 */
export type NetMode = 'relay' | 'wisp' | 'fetch' | 'none';

/** The NIC a VM gets: a virtio-net function linked to a relay room, or to the worker's own gateway. */
export interface NetAttachment {
  /** Default 'relay'. */
  mode?: NetMode;
  /** ws:// or wss:// URL of the relay room, e.g. ws://127.0.0.1:8080/relay/lab ('' unless relay). */
  relayUrl: string;
  /** ws:// or wss:// URL of the wisp server (wisp mode). */
  wispUrl?: string;
  /** The NIC's MAC, "02:xx:…" (locally administered). */
  mac: string;
  /** Why the page chose this mode when the URL asked for another (shown in the Network panel). */
  note?: string;
  /** Offer VIRTIO_NET_F_GUEST_TSO4 (large receive); default true, `?guest-tso=0` turns it off. */
  guestTso?: boolean;
  /** Send TSO frames whole to a link that takes them (super-segments); default false, `?tx-super=1` turns it on. */
  txSuperSegments?: boolean;
}

/** The NIC as the worker sees it. */
export interface NetStatus extends NetAttachment {
  up: boolean;
  /** The address the guest leased by DHCP (seen in the DHCP ACK), if any yet. */
  ip?: string;
  /** Why the uplink is down or failing: the URL and the error, or "closed by the server". */
  problem?: string;
  /** When down: the next reconnect attempt, in ms from `at`. */
  retryInMs?: number;
  /** Worker clock (Date.now()) when this status was taken. */
  at?: number;
}

/** Counters of one of our PCI functions. */
export interface DeviceStats {
  name: string;
  /** virtio device_status register (DeviceStatus bits). */
  status: number;
  notifies: number;
  interrupts: number;
  errors: number;
  resets: number;
  /** BAR accesses: each would be a VM exit under a hypervisor. */
  barReads: number;
  barWrites: number;
  /** Device-specific figures, e.g. rng's bytesServed. */
  extra: Record<string, number>;
}

/** The ring inspector's controls on one queue (see InspectorService). */
export type InspectorAction = 'freeze' | 'step' | 'resume';

/** How a boot starts (`?boot=cold`, `?state=NAME`, restoreState()). */
export type BootStart =
  /** Restore this profile's boot state if there is one; else boot cold and save it at the prompt. */
  | { kind: 'auto' }
  /** Boot the kernel, save nothing. */
  | { kind: 'cold' }
  /** A saved state: by name (OPFS /states) or its bytes (an uploaded file). */
  | { kind: 'state'; name: string }
  | { kind: 'state-bytes'; bytes: Uint8Array; label: string };

/** A saved state as the page lists it (from its header). */
export interface StateInfo {
  name: string;
  kind: 'boot' | 'saved';
  /** ISO time of the save. */
  createdAt: string;
  /** File size (compressed). */
  bytes: number;
  ring: RingLayout;
  /** The disk it was saved with; `included`: its contents are in the state and come back with it. */
  disk?: { name: string; size: number; included: boolean };
}

/** Page → worker. */
export type ToWorker =
  /** `console: false` boots without the virtio-console (run() then types into the serial console). */
  /** `ring: 'packed'` offers VIRTIO_F_RING_PACKED on every virtio function (default split only). */
  /** Sent to a worker started ahead of its boot: fetch and compile what every boot needs meanwhile. */
  | { type: 'preload'; baseUrl: string; wasmUrl: string }
  | { type: 'boot'; baseUrl: string; wasmUrl: string; disk?: DiskAttachment; net?: NetAttachment; console?: boolean; ring?: RingLayout; start?: BootStart }
  /** A cold boot reached its first prompt: save the boot state now if this boot makes one (answer: 'boot-point'). */
  | { type: 'boot-point' }
  /** Save the running VM as OPFS /states/NAME.vlstate (answer: 'state-saved' or 'state-failed' with the same id). */
  | { type: 'state-save'; id: number; name: string }
  /** Send back what crossed the NIC so far, as a pcap file. */
  | { type: 'capture-get' }
  | { type: 'serial-in'; bytes: Uint8Array }
  /** Bytes for the guest on a named virtio-console port (run()'s requests to the agent). */
  | { type: 'port-in'; port: string; bytes: Uint8Array }
  /** Start (true) or stop (false) ring snapshots: only while the inspector panel is shown. */
  | { type: 'inspect'; on: boolean }
  | { type: 'inspect-control'; device: string; queue: number; action: InspectorAction }
  /** Send a 'stats' message now, marked as the reply (benchmarks read counters after a job). */
  | { type: 'stats-get' }
  | { type: 'stop' };

/** Worker → page. */
export type FromWorker =
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'state'; state: VmState }
  /** A batch of console bytes (never one message per byte). */
  | { type: 'serial-out'; bytes: Uint8Array }
  /** A batch of bytes the guest wrote to a named virtio-console port. */
  | { type: 'port-out'; port: string; bytes: Uint8Array }
  /** A guest process opened or closed a named virtio-console port. */
  | { type: 'port-open'; port: string; open: boolean }
  /** Periodic: the guest's uptime in ms, instructions run so far, per-device counters. */
  | { type: 'stats'; uptimeMs: number; instructions: number; devices: DeviceStats[]; reply?: boolean }
  /** A device reported a guest violation (e.g. a malformed ring) and needs a reset. */
  | { type: 'device-error'; device: string; reason: string }
  | { type: 'fatal'; kind: VmErrorKind; message: string }
  | { type: 'disk'; disk: AttachedDisk }
  /** The NIC's link or address changed. */
  | { type: 'net'; net: NetStatus }
  | { type: 'capture'; pcap: Uint8Array }
  /** A ring snapshot, at most ~20 a second while subscribed. */
  | { type: 'inspector'; snapshot: InspectorSnapshot }
  /**
   * The VM was restored from a state, not booted. `screen`: the console output before the
   * save (for the terminal); `afterRestore`: what the page runs in the guest before ready.
   */
  | { type: 'restored'; info: StateInfo; screen: Uint8Array; attachDisk: boolean; restoreMs: number }
  /** A state could not be restored (why, for the user): the VM boots cold instead. */
  | { type: 'restore-failed'; message: string }
  /** Answer to 'boot-point': the boot state was captured (`saved`), or this boot makes none. */
  | { type: 'boot-point'; saved: boolean; pauseMs: number; attachDisk: boolean }
  /** The boot state reached storage (after compression, in the background), or could not. */
  | { type: 'boot-state'; bytes?: number; ms?: number; error?: string }
  | { type: 'state-saved'; id: number; info: StateInfo; ms: number }
  | { type: 'state-failed'; id: number; message: string }
  /** The disk's storage ran out: the guest got I/O errors. */
  | { type: 'storage-full'; message: string };

/** postMessage with the protocol's types on both ends. */
export interface TypedPort<Out, In> {
  postMessage(msg: Out, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent<In>) => void): void;
}
