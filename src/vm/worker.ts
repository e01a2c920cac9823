/// <reference lib="webworker" />
/**
 * The VM worker: loads the guest image, builds the machine, and relays console bytes.
 * v86 and every device run here, never on the page's thread.
 */
import { GuestImageError, loadGuestImage, parseManifest } from './guest-image.ts';
import { browserGuestFileCache } from './guest-image-cache.ts';
import { Machine } from './machine.ts';
import type { DiskAttachment, FromWorker, NetAttachment, NetStatus, ToWorker, VmErrorKind } from './protocol.ts';
import { WebSocketFrameLink } from '../backends/websocket-frame-link.ts';
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

/** The NIC's link to the relay, and the status the page shows. */
function openNet(want: NetAttachment): { link: FrameLink; mac: Uint8Array; onCapture(frame: Uint8Array, dir: 'rx' | 'tx'): void } {
  const status: NetStatus = { ...want, up: false };
  const mac = parseMac(want.mac);
  const report = () => post({ type: 'net', net: { ...status } });
  const l = observedLink(new WebSocketFrameLink(want.relayUrl, WebSocket), (up) => {
    status.up = up;
    report();
  });
  report();
  return {
    link: l,
    mac,
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

async function boot(
  baseUrl: string,
  wasmUrl: string,
  want: DiskAttachment | undefined,
  wantNet: NetAttachment | undefined,
  wantConsole: boolean,
  ring: RingLayout,
): Promise<void> {
  post({ type: 'state', state: 'loading' });
  if (want) {
    const opened = await openDisk(want);
    disk = opened.backend;
    if (stopping) return;
    post({ type: 'disk', disk: opened.disk });
  }
  const manifestUrl = new URL('manifest.json', baseUrl).href;
  let manifestJson: unknown;
  try {
    const res = await fetch(manifestUrl);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    manifestJson = await res.json();
  } catch (e) {
    throw new GuestImageError('image-missing', `guest image manifest ${manifestUrl} is missing (${(e as Error).message})`);
  }
  const manifest = parseManifest(manifestJson);
  const [image, wasm] = await Promise.all([
    loadGuestImage(
      manifest,
      (name, onProgress) => fetchBytes(new URL(name, baseUrl).href, onProgress),
      (progress) => post({ type: 'progress', progress }),
      { cache: browserGuestFileCache(baseUrl) },
    ),
    WebAssembly.compileStreaming(fetch(wasmUrl)),
  ]);
  if (stopping) return;
  const net = wantNet && openNet(wantNet);
  link = net?.link;
  machine = await Machine.create({
    image,
    wasm,
    onSerial: (bytes) => post({ type: 'serial-out', bytes }, [bytes.buffer]),
    devices: {
      onDeviceError: (device, reason) => post({ type: 'device-error', device, reason }),
      ring,
      blk: disk && {
        backend: disk,
        name: want!.name,
        onBackendError: (kind: string, message: string) => {
          if (kind === 'quota') post({ type: 'storage-full', message });
        },
      },
      net,
      console: wantConsole ? { ports: [AGENT_PORT] } : undefined,
    },
  });
  runPort = agentPort(machine.devices);
  if (runPort) relayPort(runPort);
  inspector = new InspectorService(machine.devices.all, (snapshot) => post({ type: 'inspector', snapshot }));
  if (inspectWanted) inspector.subscribe();
  machine.start();
  post({ type: 'state', state: 'booting' });
  statsTimer = setInterval(() => {
    if (!machine) return;
    postStats(false);
  }, 500);
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
    disk?.close();
  } catch {
    /* closing is best effort: terminate() releases the handle too */
  }
  disk = undefined;
  post({ type: 'state', state: 'stopped' });
}

self.addEventListener('message', (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  switch (msg.type) {
    case 'boot':
      boot(msg.baseUrl, msg.wasmUrl, msg.disk, msg.net, msg.console ?? true, msg.ring ?? 'split').catch((e: unknown) => {
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
