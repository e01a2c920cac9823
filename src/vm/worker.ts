/// <reference lib="webworker" />
/**
 * The VM worker: loads the guest image, builds the machine, and relays console bytes.
 * v86 and every device run here, never on the page's thread.
 */
import { GuestImageError, loadGuestImage, parseManifest } from './guest-image.ts';
import { Machine } from './machine.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

declare const self: DedicatedWorkerGlobalScope;

let machine: Machine | undefined;
let statsTimer: ReturnType<typeof setInterval> | undefined;

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

async function boot(baseUrl: string, wasmUrl: string): Promise<void> {
  post({ type: 'state', state: 'loading' });
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
    ),
    WebAssembly.compileStreaming(fetch(wasmUrl)),
  ]);
  machine = await Machine.create({
    image,
    wasm,
    onSerial: (bytes) => post({ type: 'serial-out', bytes }, [bytes.buffer]),
    devices: { onDeviceError: (device, reason) => post({ type: 'device-error', device, reason }) },
  });
  machine.start();
  post({ type: 'state', state: 'booting' });
  statsTimer = setInterval(() => {
    if (!machine) return;
    post({ type: 'stats', uptimeMs: machine.uptimeMs(), instructions: machine.instructions(), devices: machine.deviceStats() });
  }, 500);
}

self.addEventListener('message', (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  switch (msg.type) {
    case 'boot':
      boot(msg.baseUrl, msg.wasmUrl).catch((e: unknown) => {
        const err = e as Error;
        const kind = err instanceof GuestImageError ? err.kind : 'crash';
        post({ type: 'fatal', kind, message: err.message });
        post({ type: 'state', state: 'error' });
      });
      break;
    case 'serial-in':
      machine?.typeIn(msg.bytes);
      break;
    case 'stop':
      clearInterval(statsTimer);
      void machine?.stop().then(() => post({ type: 'state', state: 'stopped' }));
      machine = undefined;
      break;
  }
});

self.addEventListener('error', (ev) => {
  post({ type: 'fatal', kind: 'crash', message: ev.message || 'the VM worker crashed' });
});
self.addEventListener('unhandledrejection', (ev) => {
  post({ type: 'fatal', kind: 'crash', message: String((ev.reason as Error)?.message ?? ev.reason) });
});
