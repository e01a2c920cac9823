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
import WebSocket from 'ws';
import type { LabDeviceOptions } from '../lab-devices.ts';
import type { BlkLabOptions as LabDiskOptions } from '../../devices/blk/index.ts';
import type { NetLabOptions as LabNetOptions } from '../../devices/net/index.ts';
import { WebSocketFrameLink } from '../../backends/websocket-frame-link.ts';
import { formatMac, localMac, toMac } from '../../devices/net/config.ts';
import { FileBlockBackend } from '../../backends/file-block-backend.ts';
import type { BlockBackendErrorKind } from '../../backends/block-backend.ts';
import { ConsoleSession } from '../console-session.ts';
import { AGENT_PORT } from '../console-session-agent.ts';
import { agentPort, connectAgentPort } from '../console-session-port.ts';
import { restoreLabState, type LabState } from '../lab-states.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const defaultGuestDir = path.join(repoRoot, 'public/guest');

let wasmModule: Promise<WebAssembly.Module> | undefined;
export function v86Wasm(): Promise<WebAssembly.Module> {
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
  /** Disk backend failures ('quota' = storage full); the guest saw I/O errors. */
  diskErrors: { kind: BlockBackendErrorKind; message: string }[];
  /** The NIC's address, when there is one. */
  mac?: string;
  /** Stops the emulator, then closes a disk image and a relay link that startNodeVm opened. */
  stop(): Promise<void>;
}

/** A raw image file to attach as /dev/vda. */
export interface NodeDiskFile {
  path: string;
  readOnly?: boolean;
  /** Serial (≤ 20 bytes); default: the file name without extension, cut to 20 characters. */
  name?: string;
  onBackendError?(kind: BlockBackendErrorKind, message: string): void;
}

/** The serial a file gets by default: its base name, printable ASCII, ≤ 20 bytes. */
export function diskNameFor(file: string): string {
  const base = path.basename(file).replace(/\.[^.]*$/, '').replace(/[^\x21-\x7e]/g, '_');
  return (base || 'disk').slice(0, 20);
}

/** A NIC on the relay: ws://HOST:PORT/relay/ROOM. */
export interface NodeNetOptions {
  relayUrl: string;
  /** Default: a random locally administered address. */
  mac?: string;
  onCapture?: LabNetOptions['onCapture'];
  /** Send TSO frames whole to the relay (super-segments); default false. */
  superSegmentsOut?: boolean;
}

export interface NodeVmOptions {
  guestDir?: string;
  /** Console bytes as they arrive (e.g. to stdout). */
  onSerial?(bytes: Uint8Array): void;
  /**
   * Device options beyond error reporting (BAR kind, `rng: { source }`, …). The
   * virtio-console with run()'s port is on unless `console: false` (then run() types into
   * the serial console).
   */
  devices?: Omit<LabDeviceOptions, 'onDeviceError' | 'console'> & { console?: LabDeviceOptions['console'] | false };
  /**
   * A disk: an image file (opened here with FileBlockBackend, closed by stop()), or a
   * backend the caller owns. Same as devices.blk, which it overrides.
   */
  disk?: NodeDiskFile | LabDiskOptions;
  /**
   * A NIC (eth0): a relay URL (a WebSocketFrameLink is opened here, closed by stop()), or a
   * link the caller owns. Same as devices.net, which it overrides.
   */
  net?: NodeNetOptions | LabNetOptions;
  /**
   * Restore this state (lab-states.ts) instead of booting the kernel: the machine is built
   * with the devices given here (they must be the state's), and `session.ready` resolves at
   * once (the saved console output is its log). The caller runs afterRestoreSteps().
   */
  restore?: LabState;
}

/** Boots the lab machine in this process; `session.ready` resolves at the shell prompt. */
export async function startNodeVm(opts: NodeVmOptions = {}): Promise<NodeVm> {
  const [image, wasm] = await Promise.all([loadGuestImageFromDir(opts.guestDir), v86Wasm()]);
  const deviceErrors: { device: string; reason: string }[] = [];
  const diskErrors: NodeVm['diskErrors'] = [];
  const givenNet = opts.net ?? opts.devices?.net;
  let ownedLink: WebSocketFrameLink | undefined;
  let net: LabNetOptions | undefined;
  if (givenNet && 'relayUrl' in givenNet) {
    // Parsed before anything is opened, so a bad MAC leaks nothing.
    const mac = givenNet.mac ? toMac(givenNet.mac) : localMac();
    ownedLink = new WebSocketFrameLink(givenNet.relayUrl, WebSocket);
    net = { link: ownedLink, mac, onCapture: givenNet.onCapture, superSegmentsOut: givenNet.superSegmentsOut };
  } else {
    net = givenNet;
  }
  const givenDisk = opts.disk ?? opts.devices?.blk;
  let ownedBackend: FileBlockBackend | undefined;
  let disk: LabDiskOptions | undefined;
  if (givenDisk && 'path' in givenDisk) {
    try {
      ownedBackend = FileBlockBackend.open(givenDisk.path, { readOnly: givenDisk.readOnly });
    } catch (error) {
      ownedLink?.close(); // else it would keep reconnecting
      throw error;
    }
    disk = { backend: ownedBackend, name: givenDisk.name ?? diskNameFor(givenDisk.path), onBackendError: givenDisk.onBackendError };
  } else {
    disk = givenDisk;
  }
  const onBackendError = (kind: BlockBackendErrorKind, message: string) => {
    diskErrors.push({ kind, message });
    disk?.onBackendError?.(kind, message);
  };
  const closeOwned = () => {
    ownedBackend?.close();
    ownedLink?.close();
  };
  const enc = new TextEncoder();
  let machine: Machine | undefined;
  const session = new ConsoleSession((text) => machine?.typeIn(enc.encode(text)));
  try {
    machine = await Machine.create({
      image,
      wasm,
      forRestore: opts.restore !== undefined,
      onSerial: (bytes) => {
        session.feed(bytes);
        opts.onSerial?.(bytes);
      },
      devices: {
        ...opts.devices,
        console: opts.devices?.console === false ? undefined : (opts.devices?.console ?? { ports: [AGENT_PORT] }),
        blk: disk && { ...disk, onBackendError },
        net,
        onDeviceError: (device, reason) => deviceErrors.push({ device, reason }),
      },
    });
  } catch (error) {
    closeOwned();
    throw error;
  }
  if (opts.restore) {
    try {
      await restoreLabState(machine, opts.restore);
    } catch (error) {
      await machine.stop().catch(() => undefined);
      closeOwned();
      throw error;
    }
    session.feed(opts.restore.screen);
    session.markReady();
  }
  const port = agentPort(machine.devices);
  if (port) connectAgentPort(session, port);
  machine.start();
  const m = machine;
  const stop = async () => {
    try {
      await m.stop();
    } finally {
      closeOwned();
    }
  };
  const mac = net ? formatMac(toMac(net.mac)) : undefined;
  return { machine: m, session, deviceErrors, diskErrors, mac, stop };
}
