/**
 * Saving the lab's machine as a state file and building a machine from one: the glue
 * between Machine (v86's state and our functions'), the file format (snapshot/format.ts)
 * and the disk. Used by the VM worker and by Node runs (tests, benchmarks).
 *
 * Two kinds of state:
 * - the boot state: the machine at its first prompt, booted with the disk attached late
 *   (nothing of any disk read or mounted), so it can be restored with any disk attached;
 * - a saved state: the machine at any moment, with its disk mounted: the disk's contents go
 *   into the file and come back with it (a guest restored over a disk it did not see would
 *   corrupt it).
 */
import type { BlockBackend } from '../backends/block-backend.ts';
import type { RingLayout } from '../virtio/queue/virtqueue.ts';
import type { GuestManifest } from './guest-image.ts';
import type { Machine, MachineState } from './machine.ts';
import { decodeSnapshot, encodeSnapshot, type DecodedSnapshot } from './snapshot/format.ts';
import { FORMAT_VERSION, type SnapshotKind } from './snapshot/meta.ts';
import { SnapshotError } from './snapshot/snapshot-error.ts';
import type { ZstdCodec } from './snapshot/zstd.ts';

const MiB = 1024 * 1024;
/** The largest state file the lab reads: a boot state is ~7 MB; a saved one carries its disk's data. */
export const MAX_STATE_FILE = 1100 * MiB;
/** The console output kept with a state, for the terminal of the tab that restores it. */
export const SCREEN_BYTES = 64 * 1024;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Which guest a state belongs to: the image's files, kernel command line and RAM size. A
 * state of another image (or another boot command line) is refused.
 */
export function imageIdentity(manifest: GuestManifest, cmdline: string): Promise<string> {
  const files = manifest.files.map((f) => `${f.role}:${f.sha256}`).sort();
  return sha256Hex(JSON.stringify({ files, cmdline, memoryMiB: manifest.memoryMiB }));
}

/** Which boot state fits a machine: its image, its functions in slot order, its ring layout. */
export function bootProfile(imageSha256: string, functions: readonly string[], ring: RingLayout): Promise<string> {
  return sha256Hex(JSON.stringify({ format: FORMAT_VERSION, imageSha256, functions, ring })).then((h) => h.slice(0, 32));
}

/** What a state file holds besides the machine. */
export interface LabStateExtras {
  /** The console output before the save (≤ SCREEN_BYTES). */
  screen: Uint8Array;
}

/** The JSON of the devices section: our functions' state and the extras. */
interface DeviceSection {
  functions: unknown;
  screen: string;
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export interface LabIdentity {
  imageSha256: string;
  memoryMiB: number;
  ring: RingLayout;
}

export interface CaptureOptions {
  kind: SnapshotKind;
  name: string;
  screen: Uint8Array;
  /** The attached disk; `include`: its contents go into the file (read while the machine is paused). */
  disk?: { name: string; backend: BlockBackend; include: boolean };
}

/**
 * The machine's state now: pauses it (in-flight device work finishes first), saves, and
 * lets it run again. With an included disk the file is encoded before the machine runs
 * (the disk must not change under the copy); otherwise encoding happens afterwards, while
 * the guest runs. `pauseMs`: how long the guest stood still.
 */
export async function captureLabState(
  machine: Machine,
  id: LabIdentity,
  opts: CaptureOptions,
  zstd: ZstdCodec,
): Promise<{ encode(): Promise<Uint8Array>; pauseMs: number }> {
  const t0 = performance.now();
  let state: MachineState;
  let encoded: Uint8Array | undefined;
  await machine.pause();
  try {
    state = await machine.saveState();
    if (opts.disk?.include) {
      const backend = opts.disk.backend;
      if (backend.flushAsync) await backend.flushAsync(); // write-behind: the writer's file must hold it all
      else backend.flush();
      encoded = await encodeLabState(machine, id, opts, state, zstd);
    }
  } finally {
    machine.resume();
  }
  const pauseMs = performance.now() - t0;
  return { encode: async () => encoded ?? encodeLabState(machine, id, opts, state, zstd), pauseMs };
}

function encodeLabState(machine: Machine, id: LabIdentity, opts: CaptureOptions, state: MachineState, zstd: ZstdCodec): Promise<Uint8Array> {
  const screen = opts.screen.subarray(Math.max(0, opts.screen.length - SCREEN_BYTES));
  const devices: DeviceSection = { functions: state.devices, screen: toBase64(screen) };
  return encodeSnapshot(
    {
      kind: opts.kind,
      name: opts.name,
      imageSha256: id.imageSha256,
      memoryMiB: id.memoryMiB,
      ring: id.ring,
      functions: machine.devices.all.map((fn) => fn.name),
      v86State: state.v86,
      deviceState: devices,
      disk: opts.disk && { name: opts.disk.name, source: opts.disk.backend, include: opts.disk.include },
    },
    zstd,
  );
}

/** A state file checked through (structure, bounds, checksums, image), ready to restore. */
export interface LabState {
  decoded: DecodedSnapshot;
  screen: Uint8Array;
  functions: unknown;
}

/** Parses a state file; throws SnapshotError with a message for the user. */
export function readLabState(bytes: Uint8Array, imageSha256: string, zstd: ZstdCodec): LabState {
  const decoded = decodeSnapshot(bytes, { imageSha256, maxBytes: MAX_STATE_FILE }, zstd);
  const d = decoded.deviceState as Partial<DeviceSection> | null;
  if (typeof d !== 'object' || d === null || typeof d.screen !== 'string' || d.screen.length > (SCREEN_BYTES / 3) * 4 + 4 || !('functions' in d)) {
    throw new SnapshotError('corrupt', 'this state file is damaged: its device section is not the lab’s');
  }
  let screen: Uint8Array;
  try {
    screen = fromBase64(d.screen);
  } catch {
    throw new SnapshotError('corrupt', 'this state file is damaged: its console output is not base64');
  }
  return { decoded, screen, functions: d.functions };
}

/**
 * Restores `state` into `machine` (created with the functions the state names, in the same
 * order, and not started). Throws on any mismatch; the machine is then to be destroyed.
 */
export async function restoreLabState(machine: Machine, state: LabState): Promise<void> {
  const have = machine.devices.all.map((fn) => fn.name);
  const want = state.decoded.meta.functions;
  if (have.join() !== want.join()) {
    throw new SnapshotError('corrupt', `this state was saved with the devices ${want.join(', ') || 'none'}; this VM has ${have.join(', ') || 'none'}`);
  }
  await machine.restoreState({ v86: state.decoded.v86State, devices: state.functions });
}
