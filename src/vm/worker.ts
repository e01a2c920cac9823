/// <reference lib="webworker" />
/**
 * The VM worker: loads the guest image, builds the machine, and relays console bytes.
 * v86 and every device run here, never on the page's thread.
 */
import { GuestImageError, loadGuestImage, parseManifest, type GuestManifest } from './guest-image.ts';
import { browserGuestFileCache } from './guest-image-cache.ts';
import { Machine } from './machine.ts';
import type { DiskAttachment, FromWorker, NetAttachment, NetStatus, ToWorker, VmErrorKind } from './protocol.ts';
import { WebSocketFrameLink } from '../backends/websocket-frame-link.ts';
import { GatewayLink } from '../net/gateway-link.ts';
import { fetchUplink } from '../net/fetch-uplink.ts';
import { WispUplink } from '../net/wisp/wisp-uplink.ts';
import type { FrameLink, FrameLinkEvents } from '../backends/frame-link.ts';
import { parseMac } from '../devices/net/config.ts';
import { leasedAddress } from '../net/dhcp-snoop.ts';
import { PcapRing } from '../net/pcap.ts';
import type { BlockBackend } from '../backends/block-backend.ts';
import { DiskError } from '../disks/disk-names.ts';
import { openDisk } from './open-disk.ts';
import { InspectorService } from './inspector-service.ts';
import { AGENT_PORT } from './console-session-agent.ts';
import { agentPort } from './console-session-port.ts';
import type { ConsolePort } from '../devices/console/console.ts';
import type { RingLayout } from '../virtio/queue/virtqueue.ts';
import type { BootStart, StateInfo } from './protocol.ts';
import { bootProfile, captureLabState, imageIdentity, readLabState, restoreLabState, type LabIdentity, type LabState } from './lab-states.ts';
import { withLateDisk } from './snapshot/late-disk.ts';
import { bootStateFile, bootStatesNewestFirst, deleteStateFile, pruneBootStates, readStateFile, stateFile, writeStateFile } from './snapshot/state-files.ts';
import { loadZstd } from './snapshot/zstd-browser.ts';
import { readSnapshotMeta } from './snapshot/format.ts';
import { stateInfo } from './snapshot/state-info.ts';
import { restoreOpfsDisk } from './snapshot/disk-restore.ts';
import { restoreSparseDisk } from './snapshot/sparse-disk.ts';
import { memoryDiskBytes } from '../disks/disk-names.ts';
import { SerialTail } from './serial-tail.ts';

declare const self: DedicatedWorkerGlobalScope;

let machine: Machine | undefined;
let disk: BlockBackend | undefined;
let link: FrameLink | undefined;
/** The newest 8 MiB of frames that crossed the NIC, for the page's pcap download. */
const capture = new PcapRing({ maxBytes: 8 * 1024 * 1024 });
let stopping = false;
let statsTimer: ReturnType<typeof setInterval> | undefined;
let inspector: InspectorService | undefined;
/** The page asked for snapshots (possibly before the machine existed). */
let inspectWanted = false;
/** run()'s virtio-console port, when the machine has one. */
let runPort: ConsolePort | undefined;
/** The newest console output, saved with a state for the terminal of the tab that restores it. */
const screen = new SerialTail(64 * 1024);
/** What a state saved now says about this machine. */
let identity: LabIdentity | undefined;
/** The attached disk's name (the backend is `disk`). */
let diskName: string | undefined;
/** This kernel boot saves the boot state (of this profile) at its first prompt. */
let bootStateProfile: string | undefined;
/** The guest left /dev/vda alone at boot (virtio_lab.disk=late): the page mounts it after the first prompt. */
let diskAttachedLate = false;
/** Saves (boot state, by hand) one at a time. */
let saving: Promise<unknown> = Promise.resolve();

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

async function fetchBytes(url: string, onProgress: (loaded: number, total: number) => void): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new GuestImageError('image-missing', `cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new GuestImageError('image-missing', `guest file ${url} is missing (HTTP ${res.status})`);
  const total = Number(res.headers.get('content-length') ?? 0);
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const parts: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onProgress(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A FrameLink that also reports link changes to the page. */
function observedLink(inner: FrameLink, onChange: (up: boolean) => void): FrameLink {
  return {
    get up() {
      return inner.up;
    },
    send: (frame) => inner.send(frame),
    get sendCopies() {
      return inner.sendCopies;
    },
    offerSuperSegments: (bytes) => inner.offerSuperSegments?.(bytes),
    get superSegmentSendLimit() {
      return inner.superSegmentSendLimit;
    },
    attach: (events: FrameLinkEvents) =>
      inner.attach({
        onFrame: (f) => events.onFrame(f),
        onLinkChange: (up) => {
          onChange(up);
          events.onLinkChange(up);
        },
      }),
    close: () => inner.close(),
  };
}

/**
 * The link for a mode: the relay's WebSocket, or a gateway in this worker whose outside is
 * fetch() or a wisp server. `onProblem` hears why the uplink is down and when it retries.
 */
function uplinkFor(want: NetAttachment, onProblem: (problem: string | undefined, retryInMs?: number) => void): FrameLink {
  switch (want.mode ?? 'relay') {
    case 'fetch':
      // 10.0.2.2:P is the browser's own 127.0.0.1:P; other hosts by their Host header.
      return new GatewayLink(fetchUplink(), { nat: 'all', hostAddress: '127.0.0.1' });
    case 'wisp': {
      let link: GatewayLink | undefined;
      const wisp = new WispUplink(want.wispUrl ?? '', {
        WebSocket,
        onState: (s) => {
          onProblem(s.problem, s.retryInMs);
          link?.setUp(s.up);
        },
      });
      // The wisp server's 127.0.0.1 is what 10.0.2.2 stands for.
      link = new GatewayLink(wisp, { nat: 'all', hostAddress: '127.0.0.1' }, false);
      const close = link.close.bind(link);
      link.close = () => {
        wisp.close();
        close();
      };
      return link;
    }
    default:
      return new WebSocketFrameLink(want.relayUrl, WebSocket, { onProblem });
  }
}

/** The NIC's link (to the relay, or to the worker's own gateway), and the status the page shows; undefined: no NIC. */
function openNet(
  want: NetAttachment,
): { link: FrameLink; mac: Uint8Array; guestTso?: boolean; superSegmentsOut?: boolean; onCapture(frame: Uint8Array, dir: 'rx' | 'tx'): void; onCaptureCopies: boolean } | undefined {
  const mode = want.mode ?? 'relay';
  if (mode === 'none') {
    post({ type: 'net', net: { ...want, up: false, problem: want.note } });
    return undefined;
  }
  const status: NetStatus = { ...want, up: false };
  const mac = parseMac(want.mac);
  const report = () => post({ type: 'net', net: { ...status, at: Date.now() } });
  const l = observedLink(uplinkFor(want, (problem, retryInMs) => {
    status.problem = problem;
    status.retryInMs = retryInMs;
    report();
  }), (up) => {
    status.up = up;
    if (up) status.problem = status.retryInMs = undefined;
    report();
  });
  status.up = l.up;
  report();
  return {
    link: l,
    mac,
    guestTso: want.guestTso,
    superSegmentsOut: want.txSuperSegments,
    // The pcap ring copies each frame; leasedAddress reads rx frames only, during the call.
    onCaptureCopies: true,
    onCapture: (frame, dir) => {
      capture.record(frame);
      if (dir !== 'rx') return;
      const ip = leasedAddress(frame, mac);
      if (ip && ip !== status.ip) {
        status.ip = ip;
        report();
      }
    },
  };
}

interface BootRequest {
  baseUrl: string;
  wasmUrl: string;
  disk?: DiskAttachment;
  net?: NetAttachment;
  console: boolean;
  ring: RingLayout;
  start: BootStart;
}

async function fetchManifest(baseUrl: string) {
  const manifestUrl = new URL('manifest.json', baseUrl).href;
  let manifestJson: unknown;
  try {
    const res = await fetch(manifestUrl);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    manifestJson = await res.json();
  } catch (e) {
    throw new GuestImageError('image-missing', `guest image manifest ${manifestUrl} is missing (${(e as Error).message})`);
  }
  return parseManifest(manifestJson);
}

/** A state the page named or sent, parsed; undefined (and the page told why) when it cannot be used. */
async function requestedState(how: BootStart, imageSha256: string): Promise<LabState | undefined> {
  if (how.kind !== 'state' && how.kind !== 'state-bytes') return undefined;
  try {
    const bytes = how.kind === 'state' ? await readStateFile(stateFile(how.name)) : how.bytes;
    if (!bytes) throw new Error(`there is no saved state named "${how.kind === 'state' ? how.name : how.label}"`);
    return readLabState(bytes, imageSha256, await loadZstd());
  } catch (e) {
    post({ type: 'restore-failed', message: (e as Error).message });
    return undefined;
  }
}

/**
 * The newest boot state, read and decoded while the image loads and the machine is made:
 * the profile that names the right file is known only then, and it is nearly always the
 * newest one (one page, one set of devices). Any failure here is left to storedBootState.
 */
async function earlyBootState(newest: Promise<string | undefined>, imageSha256: string): Promise<{ file: string; state: LabState } | undefined> {
  try {
    const file = await newest;
    const bytes = file === undefined ? undefined : await readStateFile(file);
    return file !== undefined && bytes ? { file, state: readLabState(bytes, imageSha256, await loadZstd()) } : undefined;
  } catch {
    return undefined;
  }
}

/** This profile's boot state, if there is a usable one (a damaged one is deleted). */
async function storedBootState(
  profile: string,
  imageSha256: string,
  early: Promise<{ file: string; state: LabState } | undefined> | undefined,
): Promise<LabState | undefined> {
  const file = bootStateFile(profile);
  const guessed = await early;
  if (guessed?.file === file) return guessed.state;
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readStateFile(file);
    if (!bytes) return undefined;
    return readLabState(bytes, imageSha256, await loadZstd());
  } catch (e) {
    await deleteStateFile(file).catch(() => undefined);
    post({ type: 'restore-failed', message: `the saved boot state was unusable (${(e as Error).message}); it was deleted` });
    return undefined;
  }
}

/**
 * What a page starts loading before it knows how to boot (its network and disk checks take a
 * while): the manifest, v86's compiled wasm and the zstd codec. Each promise is kept with its
 * URL; boot() takes it only for the same URL. Failures surface in boot(), not here.
 */
let preloaded: { baseUrl: string; manifest: Promise<GuestManifest>; wasmUrl: string; wasm: Promise<WebAssembly.Module> } | undefined;

function preload(baseUrl: string, wasmUrl: string): void {
  const manifest = fetchManifest(baseUrl);
  const wasm = WebAssembly.compileStreaming(fetch(wasmUrl));
  manifest.catch(() => undefined);
  wasm.catch(() => undefined);
  loadZstd().catch(() => undefined);
  preloaded = { baseUrl, manifest, wasmUrl, wasm };
}

async function boot(req: BootRequest): Promise<void> {
  post({ type: 'state', state: 'loading' });
  const manifest = await (preloaded?.baseUrl === req.baseUrl ? preloaded.manifest : fetchManifest(req.baseUrl));
  // Every boot but a plain cold one leaves the disk for later, so its first prompt can be
  // saved as the boot state and a restored one can be given any disk (lab-states.ts).
  const bootManifest = req.start.kind === 'cold' ? manifest : withLateDisk(manifest);
  // The image and v86's wasm load while the state is read and checked (both take a while).
  const loaded = Promise.all([
    loadGuestImage(
      bootManifest,
      (name, onProgress) => fetchBytes(new URL(name, req.baseUrl).href, onProgress),
      (progress) => post({ type: 'progress', progress }),
      { cache: browserGuestFileCache(req.baseUrl) },
    ),
    preloaded?.wasmUrl === req.wasmUrl ? preloaded.wasm : WebAssembly.compileStreaming(fetch(req.wasmUrl)),
  ]);
  loaded.catch(() => undefined); // awaited below; a failure is reported there
  const imageSha256 = await imageIdentity(bootManifest, bootManifest.cmdline);
  let state = await requestedState(req.start, imageSha256);
  const newest = req.start.kind === 'auto' ? bootStatesNewestFirst().then(([file]) => file, () => undefined) : undefined;
  const early = newest && earlyBootState(newest, imageSha256);
  if (stopping) return;

  // A saved state brings its own disk back (its contents are in the file).
  let want = req.disk;
  const savedDisk = state?.decoded.meta.disk?.included ? state.decoded.meta.disk : undefined;
  if (state && savedDisk && state.decoded.disk) {
    want = { name: savedDisk.name, readOnly: false };
    try {
      if (memoryDiskBytes(savedDisk.name) === undefined) await restoreOpfsDisk(savedDisk.name, state.decoded.disk, await loadZstd());
    } catch (e) {
      post({ type: 'restore-failed', message: (e as Error).message });
      state = undefined;
      want = req.disk;
    }
  }
  if (want) {
    const opened = await openDisk(want);
    disk = opened.backend;
    diskName = want.name;
    if (state && savedDisk && state.decoded.disk && memoryDiskBytes(savedDisk.name) !== undefined) {
      await restoreSparseDisk(state.decoded.disk, disk, await loadZstd());
    }
    if (stopping) return;
    post({ type: 'disk', disk: opened.disk });
  }
  const [image, wasm] = await loaded;
  if (stopping) return;
  const ring = state?.decoded.meta.ring ?? req.ring;
  // Each machine gets its own link: a link attaches to one NIC once.
  const create = (forRestore: boolean) => {
    const net = req.net ? openNet(req.net) : undefined;
    link = net?.link;
    return Machine.create({
      image,
      wasm,
      forRestore,
      onSerial: (bytes) => {
        screen.push(bytes);
        post({ type: 'serial-out', bytes }, [bytes.buffer]);
      },
      devices: {
        onDeviceError: (device, reason) => post({ type: 'device-error', device, reason }),
        ring,
        blk: disk && {
          backend: disk,
          name: diskName!,
          onBackendError: (kind: string, message: string) => {
            if (kind === 'quota') post({ type: 'storage-full', message });
          },
        },
        net,
        console: req.console ? { ports: [AGENT_PORT] } : undefined,
      },
    });
  };
  // A machine made for a restore skips loading the kernel and zeroing RAM (V86HostOptions):
  // made so when a state is at hand or a boot state is stored; remade if none restores.
  const forRestore = state !== undefined || (newest !== undefined && (await newest) !== undefined);
  let m = await create(forRestore);
  identity = { imageSha256, memoryMiB: bootManifest.memoryMiB, ring };
  // Offered features too: a read-only disk (VIRTIO_BLK_F_RO) is another device to restore into.
  const functions = m.devices.all.map((fn) => `${fn.name}:${fn.offeredFeatures.toString(16)}`);
  const profile = req.start.kind === 'auto' ? await bootProfile(imageSha256, functions, ring) : undefined;
  if (!state && profile) state = await storedBootState(profile, imageSha256, early);

  let restored: { info: StateInfo; ms: number } | undefined;
  if (state) {
    const t0 = performance.now();
    try {
      await restoreLabState(m, state);
      restored = { info: stateInfo(state.decoded.meta, 0), ms: performance.now() - t0 };
    } catch (e) {
      post({ type: 'restore-failed', message: (e as Error).message });
      if (state.decoded.meta.kind === 'boot' && profile) await deleteStateFile(bootStateFile(profile)).catch(() => undefined);
      link?.close();
      await m.stop().catch(() => undefined);
      m = await create(false);
    }
  } else if (forRestore) {
    link?.close();
    await m.stop().catch(() => undefined);
    m = await create(false);
  }
  machine = m;
  runPort = agentPort(m.devices);
  if (runPort) relayPort(runPort);
  inspector = new InspectorService(m.devices.all, (snapshot) => post({ type: 'inspector', snapshot }));
  if (inspectWanted) inspector.subscribe();
  if (restored && state) {
    screen.push(state.screen);
    // The restored guest has the agent's port open: said first, so the page's session runs
    // the steps after the restore over it as soon as it hears 'restored'.
    if (runPort?.guestOpen) post({ type: 'port-open', port: runPort.name ?? 'hvc0', open: true });
    post({ type: 'restored', info: restored.info, screen: state.screen, attachDisk: state.decoded.meta.kind === 'boot' && !!disk, restoreMs: restored.ms });
  } else {
    bootStateProfile = profile;
    diskAttachedLate = req.start.kind !== 'cold' && !!disk;
  }
  m.start();
  post({ type: 'state', state: 'booting' });
  statsTimer = setInterval(() => {
    if (!machine) return;
    postStats(false);
  }, 500);
}

/** How long after the first prompt the boot state is compressed and stored. */
const BOOT_STATE_STORE_DELAY_MS = 3000;

/** The first prompt of a kernel boot: save the boot state if this boot makes one. */
function atBootPoint(): void {
  const m = machine;
  const profile = bootStateProfile;
  bootStateProfile = undefined;
  if (!m || !profile || !identity) {
    post({ type: 'boot-point', saved: false, pauseMs: 0, attachDisk: diskAttachedLate });
    return;
  }
  const id = identity;
  saving = saving.then(async () => {
    let encode: () => Promise<Uint8Array>;
    try {
      const zstd = await loadZstd();
      const captured = await captureLabState(m, id, { kind: 'boot', name: 'boot', screen: screen.bytes(), disk: disk && diskName ? { name: diskName, backend: disk, include: false } : undefined }, zstd);
      encode = captured.encode;
      post({ type: 'boot-point', saved: true, pauseMs: captured.pauseMs, attachDisk: diskAttachedLate });
    } catch (e) {
      post({ type: 'boot-point', saved: false, pauseMs: 0, attachDisk: diskAttachedLate });
      post({ type: 'boot-state', error: (e as Error).message });
      return;
    }
    // Compressing holds the worker (and so the guest) for ~0.3 s or more: not while the user's
    // first commands run. Then it is stored while the guest runs.
    await new Promise((r) => setTimeout(r, BOOT_STATE_STORE_DELAY_MS));
    try {
      const t0 = performance.now();
      const bytes = await encode();
      await writeStateFile(bootStateFile(profile), bytes);
      post({ type: 'boot-state', bytes: bytes.length, ms: performance.now() - t0 });
      await pruneBootStates();
    } catch (e) {
      post({ type: 'boot-state', error: (e as Error).message });
    }
  });
}

/** A state saved by hand: the machine and its disk's contents, as OPFS /states/NAME.vlstate. */
function saveNamedState(id: number, name: string): void {
  saving = saving.then(async () => {
    const m = machine;
    try {
      const file = stateFile(name);
      if (!m || !identity) throw new Error('the VM is not running');
      const t0 = performance.now();
      const captured = await captureLabState(
        m,
        identity,
        { kind: 'saved', name, screen: screen.bytes(), disk: disk && diskName ? { name: diskName, backend: disk, include: true } : undefined },
        await loadZstd(),
      );
      const bytes = await captured.encode();
      await writeStateFile(file, bytes);
      post({ type: 'state-saved', id, info: { ...stateInfo(readSnapshotMeta(bytes), bytes.length), name }, ms: performance.now() - t0 });
    } catch (e) {
      post({ type: 'state-failed', id, message: (e as Error).message });
    }
  });
}

/**
 * The page's session speaks to the guest agent through these messages. Guest bytes go in one
 * message per emulator slice (a microtask after it), not one per guest write.
 */
function relayPort(port: ConsolePort): void {
  const name = port.name ?? 'hvc0';
  let parts: Uint8Array[] = [];
  let size = 0;
  const flush = () => {
    const bytes = parts.length === 1 ? parts[0] : new Uint8Array(size);
    if (parts.length > 1) {
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    parts = [];
    size = 0;
    post({ type: 'port-out', port: name, bytes }, [bytes.buffer]);
  };
  port.onData = (bytes) => {
    if (parts.length === 0) queueMicrotask(flush);
    parts.push(bytes);
    size += bytes.length;
  };
  port.onOpen = (open) => {
    if (parts.length) flush(); // what the agent wrote before it closed comes first
    post({ type: 'port-open', port: name, open });
  };
}

function postStats(reply: boolean): void {
  if (!machine) return;
  post({ type: 'stats', uptimeMs: machine.uptimeMs(), instructions: machine.instructions(), devices: machine.deviceStats(), reply });
}

/** Stops the guest, then flushes and closes the disk (releasing OPFS's lock for the next VM). */
async function stop(): Promise<void> {
  stopping = true;
  clearInterval(statsTimer);
  inspector?.unsubscribe();
  inspector = undefined;
  // Close the link while the machine still runs: its link-down interrupt must not reach a destroyed v86.
  link?.close();
  link = undefined;
  const m = machine;
  machine = undefined;
  runPort = undefined;
  await m?.stop().catch(() => undefined);
  try {
    await disk?.close(); // a write-behind disk: once the writer has stored and flushed everything
  } catch {
    /* closing is best effort: terminate() releases the handle too */
  }
  disk = undefined;
  post({ type: 'state', state: 'stopped' });
}

self.addEventListener('message', (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  switch (msg.type) {
    case 'preload':
      preload(msg.baseUrl, msg.wasmUrl);
      break;
    case 'boot':
      boot({
        baseUrl: msg.baseUrl,
        wasmUrl: msg.wasmUrl,
        disk: msg.disk,
        net: msg.net,
        console: msg.console ?? true,
        ring: msg.ring ?? 'split',
        start: msg.start ?? { kind: 'auto' },
      }).catch((e: unknown) => {
        const err = e as Error;
        const kind: VmErrorKind =
          err instanceof GuestImageError
            ? err.kind
            : err instanceof DiskError && err.kind !== 'storage-full'
              ? err.kind
              : 'crash';
        post({ type: 'fatal', kind, message: err.message });
        post({ type: 'state', state: 'error' });
      });
      break;
    case 'boot-point':
      atBootPoint();
      break;
    case 'state-save':
      saveNamedState(msg.id, msg.name);
      break;
    case 'serial-in':
      machine?.typeIn(msg.bytes);
      break;
    case 'port-in':
      // A refused write (backlog full) leaves run() to its timeout, as a lost request would.
      if (runPort && msg.port === runPort.name) runPort.write(msg.bytes);
      break;
    case 'stop':
      void stop();
      break;
    case 'inspect':
      inspectWanted = msg.on;
      if (msg.on) inspector?.subscribe();
      else inspector?.unsubscribe();
      break;
    case 'inspect-control':
      inspector?.control(msg.device, msg.queue, msg.action);
      break;
    case 'stats-get':
      postStats(true);
      break;
    case 'capture-get': {
      const pcap = capture.toUint8Array();
      post({ type: 'capture', pcap }, [pcap.buffer]);
      break;
    }
  }
});

self.addEventListener('error', (ev) => {
  post({ type: 'fatal', kind: 'crash', message: ev.message || 'the VM worker crashed' });
});
self.addEventListener('unhandledrejection', (ev) => {
  post({ type: 'fatal', kind: 'crash', message: String((ev.reason as Error)?.message ?? ev.reason) });
});
