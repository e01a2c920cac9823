/**
 * The page's handle on the VM worker: starts it, restarts it, and turns its messages into
 * state the UI renders. A restart is a fresh worker, so nothing leaks between boots.
 */
import wasmUrl from 'v86/build/v86.wasm?url';
import workerUrl from '../vm/worker.ts?worker&url';
import { ConsoleSession } from '../vm/console-session.ts';
import { AGENT_PORT } from '../vm/console-session-agent.ts';
import { InspectorStore } from './inspector/store.ts';
import { afterRestoreSteps } from '../vm/snapshot/after-restore.ts';
import { MOUNT_DISK_COMMAND } from '../vm/snapshot/late-disk.ts';
import type { RingLayout } from '../virtio/queue/virtqueue.ts';
import type {
  AttachedDisk,
  BootStart,
  DeviceStats,
  DiskAttachment,
  FromWorker,
  InspectorAction,
  NetAttachment,
  NetStatus,
  LoadProgress,
  StateInfo,
  ToWorker,
  VmErrorKind,
  VmState,
} from '../vm/protocol.ts';

export interface VmSnapshot {
  state: VmState;
  progress?: LoadProgress;
  uptimeMs: number;
  instructions: number;
  fatal?: { kind: VmErrorKind; message: string };
  deviceErrors: { device: string; reason: string }[];
  /** Our PCI functions' counters (updated twice a second). */
  devices: DeviceStats[];
  /** The disk this boot asked for (undefined: none). */
  diskChoice?: DiskAttachment;
  /** The disk as the worker opened it. */
  disk?: AttachedDisk;
  /** The NIC: link state, relay, MAC, leased IP. */
  net?: NetStatus;
  /** Set when the disk's storage ran out during this boot. */
  storageFull?: string;
  /** Boots since the page opened (1 = first). */
  boot: number;
  /** Page clock (performance.now(), ms) at milestones of the current boot. */
  timings: BootTimings;
  /** How this boot started: 'restored' from a state, or a kernel boot. */
  start?: 'restored' | 'booted';
  /** The state this boot was restored from. */
  restoredFrom?: StateInfo;
  /** Why the state asked for could not be restored (the VM booted cold instead). */
  restoreFailed?: string;
  /** The boot state this boot saved for the next visit: its size, or why it could not. */
  bootState?: { bytes?: number; ms?: number; error?: string };
  /** What the guest said when the steps after a restore (new MAC, disk mount…) failed. */
  afterRestoreError?: string;
  /** States saved by this page so far (the States panel lists again when it changes). */
  statesSaved?: number;
  /** The worker's restore of the state (v86's and our devices'), ms. */
  restoreMs?: number;
  /** How long the guest stood still while the boot state was taken at its first prompt, ms. */
  bootPointPauseMs?: number;
}

export interface BootTimings {
  workerStart?: number;
  imageLoaded?: number;
  firstSerial?: number;
  /** The worker restored a state (instead of booting the kernel). */
  restored?: number;
  ready?: number;
}

/** `?boot=cold` boots the kernel (no state restored or saved), `?state=NAME` restores a saved state. */
export function bootStartFromUrl(search: string = location.search): BootStart {
  const params = new URLSearchParams(search);
  const state = params.get('state');
  if (state) return { kind: 'state', name: state };
  return params.get('boot') === 'cold' ? { kind: 'cold' } : { kind: 'auto' };
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // a boot nobody waits on may fail quietly
  return { promise, resolve, reject };
}

type Listener = () => void;

/**
 * Starts the VM's module worker, or returns null when the browser cannot run module workers.
 * Browsers without them never read `options.type` (they start a classic worker, or throw):
 * the getter tells. Probing with a throwaway worker instead would need a data: or blob:
 * script, which a host's Content-Security-Policy may forbid (ours forbids data:).
 */
export function startModuleWorker(url: URL, name: string): Worker | null {
  let typeRead = false;
  const options = {
    name,
    get type(): WorkerType {
      typeRead = true;
      return 'module';
    },
  };
  let worker: Worker;
  try {
    worker = new Worker(url, options);
  } catch (e) {
    if (typeRead) throw e;
    return null;
  }
  if (typeRead) return worker;
  worker.terminate();
  return null;
}

/** ?ring=packed offers packed virtqueues (VIRTIO_F_RING_PACKED) on every device; anything else: split. */
export function ringFromUrl(search: string = location.search): RingLayout {
  return new URLSearchParams(search).get('ring') === 'packed' ? 'packed' : 'split';
}

/** ?console=off boots without the virtio-console: run() then types into the serial console. */
function consoleFromUrl(): boolean {
  const value = new URLSearchParams(location.search).get('console');
  return value !== 'off' && value !== 'none' && value !== '0';
}

export class VmClient {
  private worker: Worker | undefined;
  private snap: VmSnapshot = { state: 'stopped', uptimeMs: 0, instructions: 0, deviceErrors: [], devices: [], boot: 0, timings: {} };
  private readonly listeners = new Set<Listener>();
  private readonly serialListeners = new Set<(bytes: Uint8Array) => void>();
  private readonly enc = new TextEncoder();
  private labReady = deferred();
  session: ConsoleSession = this.newSession();
  /** The current boot was restored from a state (its first prompt is not a boot's). */
  private restoring = false;
  /** A worker started by prewarm(), for the first boot. */
  private spare: Worker | undefined;
  /** Why the spare worker died before start() took it. */
  private spareCrash: string | undefined;
  private bootPointWaiter: ((msg: { saved: boolean; attachDisk: boolean }) => void) | undefined;
  private nextRequest = 1;
  private readonly stateWaiters = new Map<number, { resolve(info: StateInfo): void; reject(err: Error): void }>();
  private startHow: BootStart = { kind: 'auto' };
  private diskChoice: DiskAttachment | undefined;
  private netChoice: NetAttachment | undefined;
  private captureWaiters: Array<(pcap: Uint8Array) => void> = [];
  private statsWaiters: Array<(snap: VmSnapshot) => void> = [];
  /** The ring inspector's state; snapshots flow only while its panel is shown. */
  readonly inspector = new InspectorStore((on) => this.post({ type: 'inspect', on }));

  constructor(private readonly guestBaseUrl: string) {}

  snapshot(): VmSnapshot {
    return this.snap;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onSerial(l: (bytes: Uint8Array) => void): () => void {
    this.serialListeners.add(l);
    return () => this.serialListeners.delete(l);
  }

  private set(patch: Partial<VmSnapshot>): void {
    this.snap = { ...this.snap, ...patch };
    for (const l of this.listeners) l();
  }

  private newSession(): ConsoleSession {
    const s = new ConsoleSession((text) => this.type(this.enc.encode(text)));
    s.attachAgent((bytes) => {
      this.post({ type: 'port-in', port: AGENT_PORT, bytes });
      return this.worker !== undefined;
    });
    s.ready.then(
      () => {
        if (this.session !== s || this.restoring) return;
        void this.atFirstPrompt(s);
      },
      () => undefined, // a failed boot is reported through 'fatal'
    );
    return s;
  }

  /**
   * Resolves when the current boot's guest answers at its shell prompt, its disk mounted:
   * after a kernel boot's first prompt (and the boot state saved there, if this boot makes
   * one) or after a restored guest took its new MAC and mounted its disk.
   */
  get ready(): Promise<void> {
    return this.labReady.promise;
  }

  private markReady(s: ConsoleSession): void {
    if (this.session !== s) return;
    this.set({ state: 'running', timings: { ...this.snap.timings, ready: performance.now() } });
    this.labReady.resolve();
  }

  /** A kernel boot's first prompt: the worker saves the boot state, then the disk is mounted if it was left for later. */
  private async atFirstPrompt(s: ConsoleSession): Promise<void> {
    const answer = await new Promise<{ saved: boolean; attachDisk: boolean }>((resolve) => {
      this.bootPointWaiter = resolve;
      this.post({ type: 'boot-point' });
    });
    if (this.session !== s) return;
    if (answer.attachDisk) {
      const r = await s.run(MOUNT_DISK_COMMAND).catch((e: Error) => ({ status: -1, output: e.message }));
      if (r.status !== 0) this.set({ afterRestoreError: r.output.trim() });
    }
    this.markReady(s);
  }

  /** A restored guest: the steps after a restore (README, Instant start), then ready. */
  private async afterRestore(s: ConsoleSession, attachDisk: boolean): Promise<void> {
    // The agent's port is open in the restored guest; its 'port-open' follows 'restored'.
    const t0 = performance.now();
    while (!s.usesAgent && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
    if (this.session !== s) return;
    const steps = afterRestoreSteps({ mac: this.netChoice?.mac, attachDisk });
    const failed = (e: Error) => ({ status: -1, output: e.message });
    if (steps.mount) {
      const r = await s.run(steps.mount, { timeoutMs: 30_000, subshell: true }).catch(failed);
      if (r.status !== 0) this.set({ afterRestoreError: r.output.trim() || `exit status ${r.status}` });
    }
    this.markReady(s);
    if (this.session !== s) return;
    const r = await s.run(steps.background, { timeoutMs: 30_000, subshell: true }).catch(failed);
    if (r.status !== 0 && this.session === s) this.set({ afterRestoreError: r.output.trim() || `exit status ${r.status}` });
  }

  /** Keyboard/paste input and run()'s command lines. */
  type(bytes: Uint8Array): void {
    this.post({ type: 'serial-in', bytes });
  }

  private post(msg: ToWorker): void {
    this.worker?.postMessage(msg);
  }

  /**
   * Starts the first boot's worker now, before start() knows how to boot: while the page
   * checks its network and disk, the worker loads its code, the guest manifest, v86's wasm
   * and zstd. Every boot after the first starts a fresh worker in start().
   */
  prewarm(): void {
    if (this.worker || this.spare || this.snap.boot > 0) return;
    const worker = startModuleWorker(new URL(workerUrl, location.href), 'virtio-lab-vm');
    if (!worker) return; // start() reports it
    this.spare = worker;
    // A worker that dies before start() adopts it is reported by start() as a crash.
    worker.addEventListener('error', (ev) => {
      ev.preventDefault();
      this.spareCrash ??= ev.message || 'the VM worker crashed';
    });
    worker.postMessage({ type: 'preload', baseUrl: this.guestBaseUrl, wasmUrl: new URL(wasmUrl, location.href).href } satisfies ToWorker);
  }

  /**
   * Boots a fresh VM in a fresh worker. `disk` picks the disk (null: none); omitted keeps
   * the current choice.
   */
  start(disk?: DiskAttachment | null, net?: NetAttachment | null, how: BootStart = { kind: 'auto' }): void {
    if (disk !== undefined) this.diskChoice = disk ?? undefined;
    if (net !== undefined) this.netChoice = net ?? undefined;
    this.startHow = how;
    this.stopWorker();
    // The first boot keeps the session made with the client, so a `ready` taken before
    // start() (e.g. while the default disk is created) still resolves.
    if (this.snap.boot > 0) {
      const err = new Error('the VM was restarted');
      this.session.fail(err);
      this.labReady.reject(err);
      this.labReady = deferred();
      this.session = this.newSession();
    }
    this.restoring = false;
    this.bootPointWaiter = undefined;
    this.failStateWaiters(new Error('the VM was restarted'));
    this.set({
      state: 'loading',
      progress: undefined,
      fatal: undefined,
      uptimeMs: 0,
      instructions: 0,
      deviceErrors: [],
      devices: [],
      diskChoice: this.diskChoice,
      disk: undefined,
      net: undefined,
      storageFull: undefined,
      start: undefined,
      restoredFrom: undefined,
      restoreFailed: undefined,
      bootState: undefined,
      afterRestoreError: undefined,
      restoreMs: undefined,
      bootPointPauseMs: undefined,
      boot: this.snap.boot + 1,
      timings: { workerStart: performance.now() },
    });
    const spareCrash = this.spareCrash;
    this.spareCrash = undefined;
    if (this.spare && spareCrash !== undefined) {
      this.spare.terminate();
      this.spare = undefined;
      this.handle({ type: 'fatal', kind: 'crash', message: spareCrash });
      return;
    }
    const worker = this.spare ?? startModuleWorker(new URL(workerUrl, location.href), 'virtio-lab-vm');
    this.spare = undefined;
    if (!worker) {
      this.handle({
        type: 'fatal',
        kind: 'unsupported',
        message: 'This browser cannot run module Web Workers, which the VM needs. Use a current Chromium, Firefox or Safari.',
      });
      return;
    }
    this.worker = worker;
    worker.addEventListener('message', (ev: MessageEvent<FromWorker>) => {
      if (this.worker === worker) this.handle(ev.data);
    });
    worker.addEventListener('error', (ev) => {
      ev.preventDefault();
      if (this.worker === worker) this.handle({ type: 'fatal', kind: 'crash', message: ev.message || 'the VM worker crashed' });
    });
    this.post({
      type: 'boot',
      baseUrl: this.guestBaseUrl,
      wasmUrl: new URL(wasmUrl, location.href).href,
      disk: this.diskChoice,
      net: this.netChoice,
      console: consoleFromUrl(),
      ring: ringFromUrl(),
      start: how,
    });
    this.inspector.resubscribe();
  }

  /** Freeze, step or resume one queue of one device ("blk", "virtio-net"…). */
  inspectControl(device: string, queue: number, action: InspectorAction): void {
    this.post({ type: 'inspect-control', device, queue, action });
  }

  /** What crossed the NIC so far (the newest 8 MiB), as a pcap file. */
  capture(): Promise<Uint8Array> {
    if (!this.worker) return Promise.reject(new Error('the VM is not running'));
    return new Promise((resolve) => {
      this.captureWaiters.push(resolve);
      this.post({ type: 'capture-get' });
    });
  }

  /** The worker's counters as of now (not the twice-a-second copy in snapshot()). */
  freshStats(): Promise<VmSnapshot> {
    if (!this.worker) return Promise.reject(new Error('the VM is not running'));
    return new Promise((resolve) => {
      this.statsWaiters.push(resolve);
      this.post({ type: 'stats-get' });
    });
  }

  /** Boots the VM from a saved state: by name (OPFS /states) or an uploaded file's bytes. */
  restore(state: { name: string } | { bytes: Uint8Array; label: string }): void {
    this.start(undefined, undefined, 'name' in state ? { kind: 'state', name: state.name } : { kind: 'state-bytes', ...state });
  }

  /** Saves the running VM as a named state (OPFS /states/NAME.vlstate). */
  saveState(name: string): Promise<StateInfo> {
    if (!this.worker || this.snap.state !== 'running') return Promise.reject(new Error('the VM is not running'));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.stateWaiters.set(id, { resolve, reject });
      this.post({ type: 'state-save', id, name });
    });
  }

  private failStateWaiters(err: Error): void {
    for (const w of this.stateWaiters.values()) w.reject(err);
    this.stateWaiters.clear();
  }

  /**
   * The current boot's restore: resolves when the restored VM is ready, rejects when the
   * state could not be restored (the VM boots the kernel instead) or the boot failed.
   */
  restoreOutcome(): Promise<void> {
    const boot = this.snap.boot;
    return new Promise((resolve, reject) => {
      const check = () => {
        const s = this.snap;
        if (s.boot !== boot) return finish(() => reject(new Error('the VM was restarted')));
        if (s.restoreFailed) return finish(() => reject(new Error(s.restoreFailed)));
        if (s.state === 'error') return finish(() => reject(new Error(s.fatal?.message ?? 'the VM failed')));
        if (s.start === 'restored' && s.state === 'running') return finish(resolve);
      };
      const finish = (f: () => void) => {
        off();
        f();
      };
      const off = this.subscribe(check);
      check();
    });
  }

  /** How the current boot was asked to start. */
  get bootStart(): BootStart {
    return this.startHow;
  }

  stop(): void {
    this.stopWorker();
    this.failStateWaiters(new Error('the VM was stopped'));
    this.labReady.reject(new Error('the VM was stopped'));
    this.session.fail(new Error('the VM was stopped'));
    if (this.snap.state !== 'error') this.set({ state: 'stopped', disk: undefined });
  }

  /**
   * Asks the worker to stop (it flushes and closes the disk, releasing OPFS's lock), and
   * terminates it once it says so or after a grace period.
   */
  private stopWorker(): void {
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    const kill = setTimeout(() => w.terminate(), 1500);
    w.addEventListener('message', (ev: MessageEvent<FromWorker>) => {
      if (ev.data.type === 'state' && ev.data.state === 'stopped') {
        clearTimeout(kill);
        w.terminate();
      }
    });
    w.postMessage({ type: 'stop' } satisfies ToWorker);
  }

  private handle(msg: FromWorker): void {
    switch (msg.type) {
      case 'progress':
        this.set({ progress: msg.progress });
        break;
      case 'state':
        // 'running' is decided here, at the shell prompt.
        if (msg.state === 'booting' && this.snap.state === 'running') break;
        if (msg.state === 'booting') {
          this.set({ state: msg.state, timings: { ...this.snap.timings, imageLoaded: performance.now() } });
        } else {
          this.set({ state: msg.state });
        }
        break;
      case 'serial-out':
        if (this.snap.timings.firstSerial === undefined) {
          this.snap = { ...this.snap, timings: { ...this.snap.timings, firstSerial: performance.now() } };
        }
        this.session.feed(msg.bytes);
        for (const l of this.serialListeners) l(msg.bytes);
        break;
      case 'port-out':
        if (msg.port === AGENT_PORT) this.session.agentData(msg.bytes);
        break;
      case 'port-open':
        if (msg.port === AGENT_PORT) this.session.agentOpen(msg.open);
        break;
      case 'stats':
        this.set({ uptimeMs: msg.uptimeMs, instructions: msg.instructions, devices: msg.devices });
        if (msg.reply) for (const w of this.statsWaiters.splice(0)) w(this.snap);
        break;
      case 'device-error':
        this.set({ deviceErrors: [...this.snap.deviceErrors, { device: msg.device, reason: msg.reason }] });
        break;
      case 'disk':
        this.set({ disk: msg.disk });
        break;
      case 'net':
        this.set({ net: msg.net });
        break;
      case 'capture':
        for (const w of this.captureWaiters.splice(0)) w(msg.pcap);
        break;
      case 'inspector':
        this.inspector.push(msg.snapshot);
        break;
      case 'storage-full':
        this.set({ storageFull: msg.message });
        break;
      case 'restored': {
        this.restoring = true;
        const s = this.session;
        this.set({ start: 'restored', restoredFrom: msg.info, restoreMs: msg.restoreMs, timings: { ...this.snap.timings, restored: performance.now() } });
        // The screen as it was at the save, for the terminal and serialLog().
        s.feed(msg.screen);
        s.markReady();
        for (const l of this.serialListeners) l(msg.screen);
        void this.afterRestore(s, msg.attachDisk);
        break;
      }
      case 'restore-failed':
        this.set({ restoreFailed: msg.message });
        break;
      case 'boot-point': {
        this.set({ start: 'booted', bootPointPauseMs: msg.pauseMs });
        const w = this.bootPointWaiter;
        this.bootPointWaiter = undefined;
        w?.({ saved: msg.saved, attachDisk: msg.attachDisk });
        break;
      }
      case 'boot-state':
        this.set({ bootState: { bytes: msg.bytes, ms: msg.ms, error: msg.error } });
        break;
      case 'state-saved':
        this.set({ statesSaved: (this.snap.statesSaved ?? 0) + 1 });
        this.stateWaiters.get(msg.id)?.resolve(msg.info);
        this.stateWaiters.delete(msg.id);
        break;
      case 'state-failed':
        this.stateWaiters.get(msg.id)?.reject(new Error(msg.message));
        this.stateWaiters.delete(msg.id);
        break;
      case 'fatal':
        this.stopWorker();
        this.failStateWaiters(new Error(msg.message));
        this.labReady.reject(new Error(msg.message));
        this.session.fail(new Error(msg.message));
        this.set({ state: 'error', fatal: { kind: msg.kind, message: msg.message } });
        break;
    }
  }
}
