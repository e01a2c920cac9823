/**
 * Node glue: the same Machine the worker builds, with files from disk. The `npm run vm`
 * runner and the integration tests use this.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { GuestImageError, loadGuestImage, parseManifest, type GuestImage } from '../guest-image.ts';
import { Machine } from '../machine.ts';
import type { LabDeviceOptions } from '../lab-devices.ts';
import { ConsoleSession } from '../console-session.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const defaultGuestDir = path.join(repoRoot, 'public/guest');

let wasmModule: Promise<WebAssembly.Module> | undefined;
function v86Wasm(): Promise<WebAssembly.Module> {
  const wasmPath = createRequire(import.meta.url).resolve('v86/build/v86.wasm');
  wasmModule ??= readFile(wasmPath).then((b) => WebAssembly.compile(b));
  return wasmModule;
}

export async function loadGuestImageFromDir(dir = defaultGuestDir): Promise<GuestImage> {
  let manifestText: string;
  try {
    manifestText = await readFile(path.join(dir, 'manifest.json'), 'utf8');
  } catch {
    throw new GuestImageError('image-missing', `no guest image manifest in ${dir} (run guest/build.sh?)`);
  }
  const manifest = parseManifest(JSON.parse(manifestText));
  return loadGuestImage(manifest, async (name) => {
    try {
      return new Uint8Array(await readFile(path.join(dir, name)));
    } catch {
      throw new GuestImageError('image-missing', `guest file ${path.join(dir, name)} is missing`);
    }
  });
}

export interface NodeVm {
  machine: Machine;
  session: ConsoleSession;
  deviceErrors: { device: string; reason: string }[];
  stop(): Promise<void>;
}

export interface NodeVmOptions {
  guestDir?: string;
  /** Console bytes as they arrive (e.g. to stdout). */
  onSerial?(bytes: Uint8Array): void;
  /** Device options beyond error reporting (BAR kind, rng source). */
  devices?: Omit<LabDeviceOptions, 'onDeviceError'>;
}

/** Boots the lab machine in this process; `session.ready` resolves at the shell prompt. */
export async function startNodeVm(opts: NodeVmOptions = {}): Promise<NodeVm> {
  const [image, wasm] = await Promise.all([loadGuestImageFromDir(opts.guestDir), v86Wasm()]);
  const deviceErrors: { device: string; reason: string }[] = [];
  const enc = new TextEncoder();
  let machine: Machine | undefined;
  const session = new ConsoleSession((text) => machine?.typeIn(enc.encode(text)));
  machine = await Machine.create({
    image,
    wasm,
    onSerial: (bytes) => {
      session.feed(bytes);
      opts.onSerial?.(bytes);
    },
    devices: { ...opts.devices, onDeviceError: (device, reason) => deviceErrors.push({ device, reason }) },
  });
  machine.start();
  const m = machine;
  return { machine: m, session, deviceErrors, stop: () => m.stop() };
}
