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

/** Page → worker. */
export type ToWorker =
  | { type: 'boot'; baseUrl: string; wasmUrl: string; disk?: DiskAttachment }
  | { type: 'serial-in'; bytes: Uint8Array }
  | { type: 'stop' };

/** Worker → page. */
export type FromWorker =
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'state'; state: VmState }
  /** A batch of console bytes (never one message per byte). */
  | { type: 'serial-out'; bytes: Uint8Array }
  /** Periodic: the guest's uptime in ms, instructions run so far, per-device counters. */
  | { type: 'stats'; uptimeMs: number; instructions: number; devices: DeviceStats[] }
  /** A device reported a guest violation (e.g. a malformed ring) and needs a reset. */
  | { type: 'device-error'; device: string; reason: string }
  | { type: 'fatal'; kind: VmErrorKind; message: string }
  | { type: 'disk'; disk: AttachedDisk }
  /** The disk's storage ran out: the guest got I/O errors. */
  | { type: 'storage-full'; message: string };

/** postMessage with the protocol's types on both ends. */
export interface TypedPort<Out, In> {
  postMessage(msg: Out, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent<In>) => void): void;
}
