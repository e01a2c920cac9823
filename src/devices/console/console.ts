/**
 * virtio-console (§5.3) with VIRTIO_CONSOLE_F_MULTIPORT: port 0 is the console (Linux's
 * /dev/hvc0), every further port is a named serial port (/dev/vportNpM, its name in
 * /sys/class/virtio-ports/vportNpM/name). The host side of each port is a ConsolePort:
 * `write(bytes)` towards the guest, `onData` for what the guest sent, `onOpen` when a guest
 * process opens or closes it.
 *
 * Control flow (§5.3.6.2): the driver says DEVICE_READY; we announce every port
 * (DEVICE_ADD); for each PORT_READY we answer CONSOLE_PORT (port 0) or PORT_NAME + PORT_OPEN
 * (named ports: the host end is connected, so reads block instead of returning EOF); the
 * driver reports PORT_OPEN 1/0 as guest processes open and close a port.
 *
 * Work budget per kick, everything the guest controls:
 *  - control transmitq: at most queue-size chains; 8 bytes read from each (anything after
 *    the fixed struct is ignored); unknown events, out-of-range ports and repeats are
 *    ignored and counted. Each message queues at most `ports` answers, and the answers
 *    waiting for control receive buffers are capped at MAX_PENDING_CONTROL (then dropped).
 *  - a port's transmitq: at most queue-size chains, at most MAX_TX_BUFFER bytes read from
 *    each (Linux sends ≤ 32 KiB per buffer; the rest is skipped and counted).
 *  - receive queues: at most queue-size chains filled, from backlogs capped at
 *    `backlogBytes` per port (host writes beyond it are refused, never queued).
 * So one kick touches at most CONSOLE_KICK_BYTES of guest RAM (4 MiB: a full transmitq),
 * whatever the descriptors alias; the constructor refuses a queue size or backlog beyond it.
 * Only ring violations (thrown by the queue engine) reset the device.
 */
import type { ConfigSpace } from '../../virtio/config-space.ts';
import { DeviceId, PciClass, features as featureMask } from '../../virtio/constants.ts';
import type { DeviceContext, VirtioDevice } from '../../virtio/device.ts';
import { RegionCursor, gatherReadable, scatterWritable } from '../../virtio/queue/descriptor-chain.ts';
import type { Virtqueue } from '../../virtio/queue/virtqueue.ts';
import { DeferredKicks } from '../../virtio/deferred-kicks.ts';
import { ByteBacklog } from './backlog.ts';
import { ConsoleConfig } from './config.ts';
import { encodeControl, parseControl, type ControlMessage } from './control.ts';
import { CONTROL_RECEIVEQ, CONTROL_SIZE, ConsoleControl as C, ConsoleFeature, queueRole, receiveqOf } from './spec.ts';
import { ConsoleStats } from './stats.ts';

/** Bytes read from one guest transmit buffer at most. */
export const MAX_TX_BUFFER = 64 * 1024;
/** Default size of every queue. */
export const CONSOLE_QUEUE_SIZE = 64;
/** Default host → guest backlog per port. */
export const CONSOLE_BACKLOG_BYTES = 1 << 20;
/**
 * Guest RAM bytes one kick may touch (the worst queue: a full transmitq of MAX_TX_BUFFER
 * each). A receiveq kick fills at most one backlog (its bytes and v86's dirty notice); a
 * control kick 8 bytes per message and ≤ 135-byte answers. Options that would raise it are refused.
 */
export const CONSOLE_KICK_BYTES = CONSOLE_QUEUE_SIZE * MAX_TX_BUFFER;
/** Device → driver control messages waiting for control receive buffers, at most. */
export const MAX_PENDING_CONTROL = 64;
/** Port names: printable ASCII, what Linux shows in sysfs. */
const PORT_NAME = /^[\x21-\x7e]{1,127}$/;

export interface VirtioConsoleOptions {
  /** Names of the ports after port 0 (the console), in port order, e.g. ["org.virtio-lab.run"]. */
  ports?: readonly string[];
  /** Console size in config space (VIRTIO_CONSOLE_F_SIZE), default 80×25. */
  cols?: number;
  rows?: number;
  /** Size of every queue, a power of 2 ≤ 64 (default 64; see CONSOLE_KICK_BYTES). */
  queueSize?: number;
  /** Host → guest bytes held per port while the guest has no receive buffer (default 1 MiB, at most CONSOLE_KICK_BYTES / 2). */
  backlogBytes?: number;
  /**
   * Serve named ports' transmitq kicks later (e.g. at the emulator's next timer check) with
   * kicks suppressed meanwhile, so a stream of guest writes costs one exit and one interrupt
   * per batch instead of per write. Port 0 is always served inline: hvc0's output spins in
   * the guest until its buffer is used.
   */
  defer?: (job: () => void) => void;
}

/** The host's end of one port. */
export class ConsolePort {
  /** Bytes the guest wrote (a fresh copy each call). */
  onData: ((bytes: Uint8Array) => void) | undefined;
  /** A guest process opened (true) or closed (false) the port. */
  onOpen: ((open: boolean) => void) | undefined;
  /** The driver set the port up (PORT_READY 1); false again after a reset. */
  ready = false;
  /** A guest process has the port open (PORT_OPEN from the driver). */
  guestOpen = false;
  readonly backlog: ByteBacklog;

  constructor(
    private readonly device: VirtioConsole,
    /** Port number: 0 is the console. */
    readonly id: number,
    /** The port's name; undefined for the console. */
    readonly name: string | undefined,
    backlogBytes: number,
  ) {
    this.backlog = new ByteBacklog(backlogBytes);
  }

  /**
   * Send bytes to the guest: delivered now if it posted receive buffers, else when it does.
   * Returns false, and queues nothing, if the port's backlog cannot take them all.
   */
  write(bytes: Uint8Array): boolean {
    return this.device.hostWrite(this, bytes);
  }
}

export class VirtioConsole implements VirtioDevice {
  readonly name = 'virtio-console';
  readonly deviceId = DeviceId.CONSOLE;
  readonly deviceFeatures = featureMask(ConsoleFeature.VIRTIO_CONSOLE_F_SIZE, ConsoleFeature.VIRTIO_CONSOLE_F_MULTIPORT);
  readonly queueMaxSizes: readonly number[];
  readonly pciClass = PciClass.OTHER;
  readonly config: ConsoleConfig;
  /** All read-only: emerg_wr exists only with VIRTIO_CONSOLE_F_EMERG_WRITE, not offered. */
  readonly deviceConfig: ConfigSpace;
  readonly ports: readonly ConsolePort[];
  readonly stats = new ConsoleStats();

  private ctx: DeviceContext | undefined;
  private multiport = false;
  private deviceReady = false;
  private pendingControl: Uint8Array[] = [];
  /** Per named port: its deferred transmitq drain. */
  private readonly deferredTx: Array<DeferredKicks | undefined>;

  constructor(opts: VirtioConsoleOptions = {}) {
    const names = opts.ports ?? [];
    for (const name of names) if (!PORT_NAME.test(name)) throw new RangeError(`virtio-console: bad port name ${JSON.stringify(name)}`);
    if (new Set(names).size !== names.length) throw new RangeError('virtio-console: port names must differ');
    const backlog = opts.backlogBytes ?? CONSOLE_BACKLOG_BYTES;
    const size = opts.queueSize ?? CONSOLE_QUEUE_SIZE;
    // Every chain of a full transmitq is read up to MAX_TX_BUFFER, every backlog byte lands
    // in one receiveq kick: both must fit the kick budget.
    if (size * MAX_TX_BUFFER > CONSOLE_KICK_BYTES) throw new RangeError(`virtio-console: queue size ${size} × ${MAX_TX_BUFFER} bytes is over the ${CONSOLE_KICK_BYTES}-byte kick budget`);
    if (2 * backlog > CONSOLE_KICK_BYTES) throw new RangeError(`virtio-console: backlog of ${backlog} bytes is over half the ${CONSOLE_KICK_BYTES}-byte kick budget`);
    this.ports = [undefined, ...names].map((name, id) => new ConsolePort(this, id, name, backlog));
    this.deferredTx = this.ports.map((p) => (opts.defer && p.id > 0 ? new DeferredKicks(opts.defer) : undefined));
    this.config = new ConsoleConfig(opts.cols ?? 80, opts.rows ?? 25, this.ports.length);
    this.deviceConfig = this.config.space;
    // receiveq0, transmitq0, control receiveq, control transmitq, then a pair per named port.
    this.queueMaxSizes = Array.from({ length: 2 + 2 * this.ports.length }, () => size);
  }

  /** Device → driver control messages waiting for control receive buffers (≤ MAX_PENDING_CONTROL). */
  get controlBacklog(): number {
    return this.pendingControl.length;
  }

  /** Work that would complete later (a named port's deferred transmit drain), or undefined when there is none. */
  get outstandingWork(): string | undefined {
    const port = this.deferredTx.findIndex((d) => d?.pending);
    return port < 0 ? undefined : `a deferred transmit drain of port ${port}`;
  }

  /** Run the deferred transmit drains now (a snapshot: the emulator is stopped); each drains its ring. */
  settleNow(): void {
    for (const d of this.deferredTx) d?.runNow();
  }

  /** Whether the driver said DEVICE_READY (MULTIPORT), and the control messages waiting for its buffers. */
  get controlState(): { readonly deviceReady: boolean; readonly pending: readonly Uint8Array[] } {
    return { deviceReady: this.deviceReady, pending: this.pendingControl };
  }

  /**
   * Snapshot restore, after activate(): the control protocol where it was, each port as the
   * driver set it up (ready, open in the guest) with the bytes that waited for it, saved ones
   * first (a host write since construction comes after, if the backlog has room). The host
   * hears again that the guest has its ports open, once the function is restored (`announce`),
   * so a session built with the new machine can use them.
   */
  restorePorts(
    deviceReady: boolean,
    pendingControl: readonly Uint8Array[],
    ports: ReadonlyArray<{ ready: boolean; guestOpen: boolean; backlog: Uint8Array }>,
    announce: (job: () => void) => void,
  ): void {
    this.deviceReady = deviceReady;
    this.pendingControl = [...pendingControl];
    this.stats.openPorts = 0;
    ports.forEach((saved, id) => {
      const port = this.ports[id];
      const since = port.backlog.peekAll();
      port.backlog.clear();
      port.backlog.push(saved.backlog);
      if (!port.backlog.push(since)) this.stats.rxDropsBacklogFull++;
      port.ready = saved.ready;
      port.guestOpen = saved.guestOpen;
      if (saved.guestOpen) {
        this.stats.openPorts++;
        announce(() => port.onOpen?.(true));
      }
    });
  }

  /** The named port, if there is one. */
  port(name: string): ConsolePort | undefined {
    return this.ports.find((p) => p.name === name);
  }

  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.multiport = ctx.hasFeature(ConsoleFeature.VIRTIO_CONSOLE_F_MULTIPORT);
    // Without MULTIPORT there are no control queues: port 0 is a console from the start.
    if (!this.multiport) this.ports[0].ready = true;
  }

  reset(): void {
    this.ctx = undefined;
    for (const d of this.deferredTx) d?.cancel();
    this.deviceReady = false;
    this.pendingControl = [];
    const closed: ConsolePort[] = [];
    for (const port of this.ports) {
      if (port.guestOpen) closed.push(port);
      port.ready = false;
      port.guestOpen = false;
      port.backlog.clear();
    }
    this.stats.openPorts = 0;
    for (const port of closed) port.onOpen?.(false);
  }

  notify(queueIndex: number): void {
    const ctx = this.ctx;
    const queue = ctx?.queue(queueIndex);
    if (!ctx || !queue) return;
    const role = queueRole(queueIndex);
    switch (role.kind) {
      case 'control-tx':
        if (this.multiport) this.serveControl(ctx, queue);
        break;
      case 'control-rx':
        this.flushControl(ctx);
        break;
      case 'tx': {
        const port = this.ports[role.port];
        const deferred = this.deferredTx[role.port];
        if (deferred) deferred.schedule(ctx, queue, () => this.serveTransmit(ctx, queue, port));
        else this.serveTransmit(ctx, queue, port);
        break;
      }
      case 'rx':
        this.flushPort(ctx, this.ports[role.port]);
        break;
    }
  }

  /** ConsolePort.write: queue, then deliver what the guest has buffers for. */
  hostWrite(port: ConsolePort, bytes: Uint8Array): boolean {
    if (!port.backlog.push(bytes)) {
      this.stats.rxDropsBacklogFull++;
      return false;
    }
    const ctx = this.ctx;
    if (!ctx) return true;
    try {
      this.flushPort(ctx, port);
    } catch (error) {
      // Outside a BAR handler nobody else catches: a broken ring resets the device.
      ctx.fail(error);
    }
    return true;
  }

  // ---- data ------------------------------------------------------------------------------

  private serveTransmit(ctx: DeviceContext, queue: Virtqueue, port: ConsolePort): void {
    const received: Uint8Array[] = [];
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      if (chain.readableLength > MAX_TX_BUFFER) this.stats.txTruncated++;
      const bytes = gatherReadable(ctx.memory, chain, Math.min(chain.readableLength, MAX_TX_BUFFER));
      queue.pushUsed(chain.headIndex, 0);
      this.stats.txBuffers++;
      this.stats.txBytes += bytes.length;
      if (bytes.length > 0) received.push(bytes);
    }
    ctx.signalUsed(queue);
    // Host callbacks last: the ring is consistent whatever they do.
    if (port.onData) for (const bytes of received) port.onData(bytes);
  }

  private flushPort(ctx: DeviceContext, port: ConsolePort): void {
    const queue = ctx.queue(receiveqOf(port.id));
    if (!queue || port.backlog.bytes === 0) return;
    let filled = 0;
    while (port.backlog.bytes > 0) {
      const chain = queue.pop();
      if (!chain) break;
      const cursor = new RegionCursor(ctx.memory, chain.writable);
      const written = port.backlog.take(chain.writableLength, (piece) => cursor.write(piece));
      queue.pushUsed(chain.headIndex, written);
      this.stats.rxBuffers++;
      this.stats.rxBytes += written;
      filled++;
    }
    if (filled) ctx.signalUsed(queue);
  }

  // ---- control ---------------------------------------------------------------------------

  private serveControl(ctx: DeviceContext, queue: Virtqueue): void {
    const events: Array<() => void> = [];
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const msg = parseControl(gatherReadable(ctx.memory, chain, CONTROL_SIZE));
      queue.pushUsed(chain.headIndex, 0);
      this.stats.controlIn++;
      if (!msg || !this.handleControl(msg, events)) this.stats.controlIgnored++;
    }
    ctx.signalUsed(queue);
    this.flushControl(ctx);
    for (const event of events) event();
  }

  /** Returns false for a message we ignore. Host callbacks go to `events`, run after the ring work. */
  private handleControl(msg: ControlMessage, events: Array<() => void>): boolean {
    if (msg.event === C.VIRTIO_CONSOLE_DEVICE_READY) {
      if (this.deviceReady || msg.value !== 1) return false;
      this.deviceReady = true;
      for (const port of this.ports) this.sendControl({ id: port.id, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 0 });
      return true;
    }
    const port = this.deviceReady ? this.ports[msg.id] : undefined;
    if (!port) return false;
    switch (msg.event) {
      case C.VIRTIO_CONSOLE_PORT_READY:
        if (port.ready || msg.value !== 1) return false;
        port.ready = true;
        if (port.name === undefined) {
          this.sendControl({ id: port.id, event: C.VIRTIO_CONSOLE_CONSOLE_PORT, value: 1 });
        } else {
          this.sendControl({ id: port.id, event: C.VIRTIO_CONSOLE_PORT_NAME, value: 1 }, new TextEncoder().encode(port.name));
          // The host end is connected: the guest's reads block for data instead of seeing EOF.
          this.sendControl({ id: port.id, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 });
        }
        return true;
      case C.VIRTIO_CONSOLE_PORT_OPEN: {
        if (!port.ready) return false;
        const open = msg.value !== 0;
        if (open === port.guestOpen) return false;
        port.guestOpen = open;
        this.stats.openPorts += open ? 1 : -1;
        events.push(() => port.onOpen?.(open));
        return true;
      }
      default:
        // DEVICE_ADD/REMOVE, CONSOLE_PORT, RESIZE, PORT_NAME are device → driver only.
        return false;
    }
  }

  private sendControl(msg: ControlMessage, payload?: Uint8Array): void {
    if (this.pendingControl.length >= MAX_PENDING_CONTROL) {
      this.stats.controlDropped++;
      return;
    }
    this.pendingControl.push(encodeControl(msg, payload));
  }

  private flushControl(ctx: DeviceContext): void {
    const queue = ctx.queue(CONTROL_RECEIVEQ);
    if (!queue) return;
    let filled = 0;
    while (this.pendingControl.length > 0) {
      const chain = queue.pop();
      if (!chain) break;
      const msg = this.pendingControl[0];
      filled++;
      // A buffer too small for the message is returned empty; the message waits for the next.
      if (chain.writableLength < msg.length) {
        queue.pushUsed(chain.headIndex, 0);
        continue;
      }
      this.pendingControl.shift();
      queue.pushUsed(chain.headIndex, scatterWritable(ctx.memory, chain, msg));
      this.stats.controlOut++;
    }
    if (filled) ctx.signalUsed(queue);
  }
}
