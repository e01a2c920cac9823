/**
 * The virtio-over-PCI transport (§4.1), modern only: a PciFunction whose BAR0 holds the
 * common cfg, ISR, notify and device cfg structures. It runs the status state machine and
 * feature negotiation, builds a SplitQueue or, with VIRTIO_F_RING_PACKED, a PackedQueue when
 * the driver enables a queue, routes kicks to
 * the device and delivers interrupts. The common cfg's registers are in common-cfg.ts; the
 * device cfg is the device's ConfigSpace, read and written here. PCI config space answers
 * through the PciFunction hooks: a live Interrupt Status bit and the PCI_CFG window
 * (pci-cfg-window.ts).
 *
 * Nothing thrown by the device or caused by the guest escapes a BAR access: errors are
 * caught at that boundary and turned into DEVICE_NEEDS_RESET + a config-change interrupt
 * (once per episode, with DRIVER_OK) + an `onError` report (§2.1.2).
 *
 * VM snapshots: quiesce(), then saveState() gives the function's state as JSON
 * (function-state.ts); restoreState() continues from one on a fresh function.
 */
import type { AccessWidth, GuestMemory, PciAttachment, PciBar, PciFunction, PciLocation } from '../bus.ts';
import {
  DeviceStatus,
  Feature,
  IsrBit,
  PciClass,
  PciStatus,
  featureBit,
  features,
  hasFeature,
} from '../constants.ts';
import type { DeviceContext, VirtioDevice } from '../device.ts';
import { VirtqueueError } from '../queue/errors.ts';
import { isPowerOfTwo } from '../queue/layout.ts';
import { PackedQueue } from '../queue/packed-queue.ts';
import type { QueueEngineState } from '../queue/queue-state.ts';
import { SplitQueue } from '../queue/split-queue.ts';
import type { QueueGate, QueueObserver, RingLayout, Virtqueue } from '../queue/virtqueue.ts';
import type { ApplyDeviceState, DeviceRestoreHost, DeviceStateHooks } from '../state/device-state.ts';
import { FunctionStateError, hex64 } from '../state/state-reader.ts';
import { CommonCfgRegisters, WIDTH_MASK, isValidQueueSize } from './common-cfg.ts';
import { PciHeader, VirtioPciCap, buildConfigSpace } from './config-header.ts';
import { FUNCTION_STATE_FORMAT, FUNCTION_STATE_VERSION, readFunctionState, type FunctionState } from './function-state.ts';
import { ErrorCoalescer } from './error-reports.ts';
import { PciCfgWindow } from './pci-cfg-window.ts';
import { RestoredQueues, type RestoredQueue } from './restored-queues.ts';
import { computeBarLayout, nextPowerOfTwo, type BarLayout } from './layout.ts';

export interface VirtioPciOptions {
  /** BAR0 in port I/O space (default) or 32-bit memory space. */
  readonly barKind?: 'io' | 'mem';
  /** BAR0 size, a power of two holding the layout; default the smallest that fits (mem: ≥ 4 KiB). */
  readonly barSize?: number;
  /** Ring features offered on top of the device's (default INDIRECT_DESC | EVENT_IDX). */
  readonly ringFeatures?: bigint;
  /**
   * 'packed' also offers VIRTIO_F_RING_PACKED (§2.8); the driver still chooses. Default
   * 'split': only the split ring is offered.
   */
  readonly ring?: RingLayout;
  /** Defaults to device.name. */
  readonly name?: string;
  /** The device type's snapshot hooks (its descriptor's `state`); without them only a reset function can be saved. */
  readonly deviceState?: DeviceStateHooks;
}

/** What enableQueue and a restore build a queue from: the driver's registers and the negotiated features. */
interface QueueSetup {
  readonly size: number;
  readonly desc: readonly [number, number];
  readonly driver: readonly [number, number];
  readonly device: readonly [number, number];
}

export type ErrorListener = (reason: string) => void;

/** Transport-level events for the inspector's timeline; `queue` is -1 when none applies. */
export type TransportEventKind = 'kick' | 'interrupt' | 'config-interrupt' | 'reset' | 'error' | 'status';

/** The inspector's hook on a function: transport events plus every queue's pops and pushes. */
export interface FunctionTracer extends QueueObserver {
  /** `status`: the device_status value after a change (kind 'status', and 'error' when it sets DEVICE_NEEDS_RESET). */
  transport(kind: TransportEventKind, queue: number, detail?: string, status?: number): void;
}

/** Per queue index, counted whether or not anyone inspects (they survive queue rebuilds). */
export interface QueueCounters {
  kicks: number;
  interrupts: number;
}

const DEFAULT_RING_FEATURES = features(Feature.VIRTIO_F_RING_INDIRECT_DESC, Feature.VIRTIO_F_RING_EVENT_IDX);
/** device_status bits a driver sets (§2.1). */
const DRIVER_STATUS_BITS =
  DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK | DeviceStatus.DRIVER_OK | DeviceStatus.FAILED;

function validConfigAccess(offset: number, width: number): boolean {
  return (width === 1 || width === 2 || width === 4) && Number.isInteger(offset) && offset >= 0 && offset + width <= 256;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class VirtioPciFunction implements PciFunction {
  readonly name: string;
  readonly configSpace: Uint8Array;
  readonly bars: ReadonlyArray<PciBar | undefined>;
  readonly layout: BarLayout;
  /** Everything the device offers: device bits | VERSION_1 | ring features. */
  readonly offeredFeatures: bigint;
  /** Counters for the inspector and benchmarks. */
  readonly stats = { notifies: 0, interrupts: 0, isrReads: 0, errors: 0, resets: 0 };
  /** The most recent error reason, if any. */
  lastError: string | undefined;
  /** What listeners are told of errors: repeated kinds coalesced (see error-reports.ts). */
  readonly errorReports = new ErrorCoalescer();
  /** Kicks and used-buffer interrupts per queue index. */
  readonly queueCounters: QueueCounters[];
  /** Freeze/step state per queue index. */
  readonly gates: QueueGate[];
  private tracerRef: FunctionTracer | undefined;

  private attachment: PciAttachment | undefined;
  private readonly listeners = new Set<ErrorListener>();
  private readonly reported = new WeakSet<object>();
  private readonly common: CommonCfgRegisters;
  /** The VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9). */
  readonly pciCfg: PciCfgWindow;

  private status = 0;
  private isr = 0;
  private configGeneration = 0;
  /** Device config changed since the driver last read it or config_generation. */
  private configPending = false;
  private acceptedFeatures = 0n;
  /** Bumped on reset so contexts and queues of an earlier activation go inert. */
  private epoch = 0;
  /** The device holds a context of this epoch (activated at DRIVER_OK, not reset since). */
  private active = false;
  private readonly deviceState: DeviceStateHooks | undefined;
  /** While a restore applies the device's state: config changes wait until it is done. */
  private restoring: { configChanged: boolean } | undefined;

  constructor(
    readonly device: VirtioDevice,
    options: VirtioPciOptions = {},
  ) {
    const barKind = options.barKind ?? 'io';
    this.name = options.name ?? device.name;
    this.deviceState = options.deviceState;
    this.offeredFeatures =
      device.deviceFeatures |
      featureBit(Feature.VIRTIO_F_VERSION_1) |
      (options.ringFeatures ?? DEFAULT_RING_FEATURES) |
      (options.ring === 'packed' ? featureBit(Feature.VIRTIO_F_RING_PACKED) : 0n);
    this.layout = computeBarLayout(device.queueMaxSizes.length, device.deviceConfig?.size ?? 0);
    const fits = nextPowerOfTwo(this.layout.end);
    const barSize = options.barSize ?? (barKind === 'mem' ? Math.max(4096, fits) : Math.max(16, fits));
    if (!isPowerOfTwo(barSize) || barSize < this.layout.end || (barKind === 'io' && barSize > 256)) {
      throw new RangeError(
        `${this.name}: BAR0 size ${barSize} must be a power of 2 ≥ ${this.layout.end}` +
          (barKind === 'io' ? ' and ≤ 256 for an I/O BAR' : ''),
      );
    }
    for (const max of device.queueMaxSizes) {
      if (!isPowerOfTwo(max) || max > 32768) throw new RangeError(`${this.name}: queue max size ${max}`);
    }
    const header = buildConfigSpace({
      deviceId: device.deviceId,
      pciClass: device.pciClass ?? PciClass.OTHER,
      barKind,
      layout: this.layout,
    });
    this.configSpace = header.bytes;
    const bar: PciBar = {
      kind: barKind,
      size: barSize,
      read: (offset, width) => this.barRead(offset, width),
      write: (offset, width, value) => this.barWrite(offset, width, value),
    };
    this.bars = [bar];
    const { common, isr, notify, device: deviceCfg } = this.layout;
    this.pciCfg = new PciCfgWindow(this.configSpace, header.pciCfgCap, bar, [common, isr, notify, deviceCfg].filter((r) => r.length > 0));
    this.common = new CommonCfgRegisters(device.queueMaxSizes, {
      offeredFeatures: this.offeredFeatures,
      deviceStatus: () => this.status,
      ringPacked: () => hasFeature(this.acceptedFeatures, Feature.VIRTIO_F_RING_PACKED),
      configGeneration: () => this.readConfigGeneration(),
      writeStatus: (value) => this.writeStatus(value),
      enableQueue: (index) => this.enableQueue(index),
    });
    device.deviceConfig?.onDeviceChange(() => this.deviceConfigChanged());
    this.queueCounters = device.queueMaxSizes.map(() => ({ kicks: 0, interrupts: 0 }));
    this.gates = device.queueMaxSizes.map(() => ({ frozen: false, credits: 0 }));
  }

  /** Plug into the host: its guest memory and interrupt line. Returns this. */
  connect(attachment: PciAttachment): this {
    this.attachment = attachment;
    return this;
  }

  /** Where the host placed this function (slot, IRQ line, BAR0 base), if connected and known. */
  location(): PciLocation | undefined {
    return this.attachment?.location?.();
  }

  /**
   * Be told the decoded reason of guest/device errors: the first of each kind, then the 2nd,
   * 4th, 8th … with their count (error-reports.ts). Returns an unsubscribe function.
   */
  onError(listener: ErrorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get deviceStatus(): number {
    return this.status;
  }

  /** Features the driver accepted at FEATURES_OK (0 before). */
  get negotiatedFeatures(): bigint {
    return this.acceptedFeatures;
  }

  get isrStatus(): number {
    return this.isr;
  }

  get numQueues(): number {
    return this.common.queues.length;
  }

  get tracer(): FunctionTracer | undefined {
    return this.tracerRef;
  }

  /** Attach (or with undefined, detach) the inspector's tracer to the transport and every queue. */
  set tracer(tracer: FunctionTracer | undefined) {
    this.tracerRef = tracer;
    for (const regs of this.common.queues) if (regs.queue) regs.queue.observer = tracer;
  }

  /**
   * Let the device look at queue `index` again, as a kick would but without counting one:
   * after a step or a resume, chains the gate held back are waiting.
   */
  serviceQueue(index: number): void {
    try {
      this.kick(index, false);
    } catch (error) {
      this.fail(error);
    }
  }

  /** The live queue at `index`, if the driver enabled it. */
  queue(index: number): Virtqueue | undefined {
    return this.common.queues[index]?.queue;
  }

  // ---- VM snapshots (function-state.ts) -------------------------------------------------

  /**
   * Finish the device's outstanding work now (deferred kicks, passes over budget), so that
   * saveState() is consistent. Call it with the emulator stopped and before v86's state is
   * saved: it may complete chains and raise the interrupt. Throws FunctionStateError if the
   * device is still busy afterwards.
   */
  async quiesce(): Promise<void> {
    if (this.deviceState) await this.deviceState.quiesce(this.device);
    const busy = this.deviceState?.busy(this.device);
    if (busy) throw new FunctionStateError(`${this.name}: still busy after quiesce (${busy})`);
  }

  /**
   * Everything this function keeps, as JSON (FunctionState). Throws FunctionStateError when
   * the device has work that would complete later (quiesce() first), or has no state hooks
   * and is not in its reset state.
   */
  saveState(): FunctionState {
    const hooks = this.deviceState;
    if (!hooks && this.status !== 0) throw new FunctionStateError(`${this.name}: the device has no state hooks, so only a reset function can be saved`);
    const busy = hooks?.busy(this.device);
    if (busy) throw new FunctionStateError(`${this.name}: not quiesced (${busy}); call quiesce() first`);
    const cfg = new DataView(this.configSpace.buffer, this.configSpace.byteOffset, this.configSpace.byteLength);
    const cap = this.pciCfg.at;
    return {
      format: FUNCTION_STATE_FORMAT,
      version: FUNCTION_STATE_VERSION,
      name: this.name,
      deviceId: this.device.deviceId,
      offeredFeatures: hex64(this.offeredFeatures),
      status: this.status,
      activated: this.active,
      acceptedFeatures: hex64(this.acceptedFeatures),
      ...this.common.selectors,
      isr: this.isr,
      configGeneration: this.configGeneration,
      configPending: this.configPending,
      pciCfg: {
        bar: cfg.getUint8(cap + VirtioPciCap.BAR),
        offset: cfg.getUint32(cap + VirtioPciCap.OFFSET, true),
        length: cfg.getUint32(cap + VirtioPciCap.LENGTH, true),
        data: cfg.getUint32(cap + VirtioPciCap.PCI_CFG_DATA, true),
      },
      queues: this.common.queues.map((regs) => ({
        maxSize: regs.maxSize,
        size: regs.size,
        sizeWritten: regs.sizeWritten,
        enabled: regs.enabled,
        desc: [regs.desc[0], regs.desc[1]],
        driver: [regs.driver[0], regs.driver[1]],
        device: [regs.device[0], regs.device[1]],
        engine: regs.queue?.saveState() ?? null,
      })),
      device: hooks ? hooks.save(this.device) : null,
    };
  }

  /**
   * Continue from `state` (untrusted: it comes from a file). Call it on a fresh function —
   * built with the same options, connected to the bus, guest RAM already restored — before
   * the CPU runs. A bad state throws FunctionStateError and changes nothing. The interrupt
   * line is raised again if ISR says an interrupt is pending (level-triggered INTx).
   */
  restoreState(state: FunctionState): void {
    this.prepareRestore(state)();
  }

  /**
   * The checking half of restoreState(): reads and checks all of `state` (queues rebuilt over
   * guest memory, chains in flight re-read, the device's part checked by its hooks) and
   * returns the step that applies it, which must run before anything else touches the
   * function. Lets a set of functions be checked before any of them changes.
   */
  prepareRestore(state: FunctionState): () => void {
    const memory = this.attachment?.memory;
    if (!memory) throw new FunctionStateError(`${this.name}: restore before the function was connected to a bus`);
    this.requireFresh();
    const saved = readFunctionState(state, {
      name: this.name,
      deviceId: this.device.deviceId,
      offeredFeatures: this.offeredFeatures,
      queueMaxSizes: this.device.queueMaxSizes,
    });
    const hooks = this.deviceState;
    if (!hooks && !saved.device.isNull()) saved.device.fail('a device state, but this function has no state hooks to restore it');
    if (hooks && saved.device.isNull()) saved.device.fail('no device state, but this device keeps one');

    // The engines, over the restored RAM. What they report goes nowhere until the state is applied.
    let applied = false;
    const onBroken = (error: VirtqueueError) => {
      if (applied) this.fail(error);
    };
    const queues = new RestoredQueues(
      this.name,
      saved.queues.map((regs, index) => (regs.engine ? this.rebuildQueue(index, regs, regs.engine, memory, saved.acceptedFeatures, onBroken) : undefined)),
    );

    let configChanged = false;
    const jobs: Array<() => void> = [];
    const host: DeviceRestoreHost = {
      takeChain: (queueIndex, id) => queues.take(queueIndex, id),
      configChanged: () => void (configChanged = true),
      whenRestored: (job) => void jobs.push(job),
    };
    let applyDevice: ApplyDeviceState | undefined;
    try {
      applyDevice = hooks?.restore(this.device, saved.device, host);
    } catch (error) {
      if (error instanceof FunctionStateError) throw error;
      throw new FunctionStateError(`${this.name}: device state: ${describe(error)}`, { cause: error });
    }
    queues.requireAllTaken();

    return () => {
      this.requireFresh();
      applied = true;
      this.acceptedFeatures = saved.acceptedFeatures;
      this.status = saved.status;
      this.common.restoreSelectors(saved);
      saved.queues.forEach((s, index) => {
        const regs = this.common.queues[index]!;
        regs.size = s.size;
        regs.sizeWritten = s.sizeWritten;
        regs.desc = [s.desc[0], s.desc[1]];
        regs.driver = [s.driver[0], s.driver[1]];
        regs.device = [s.device[0], s.device[1]];
        regs.enabled = s.enabled;
        const queue = queues.engine(index);
        regs.queue = queue;
        if (queue) {
          queue.gate = this.gates[index];
          queue.observer = this.tracerRef;
        }
      });
      this.configGeneration = saved.configGeneration;
      this.configPending = saved.configPending;
      const cfg = new DataView(this.configSpace.buffer, this.configSpace.byteOffset, this.configSpace.byteLength);
      const cap = this.pciCfg.at;
      cfg.setUint8(cap + VirtioPciCap.BAR, saved.pciCfg.bar);
      cfg.setUint32(cap + VirtioPciCap.OFFSET, saved.pciCfg.offset, true);
      cfg.setUint32(cap + VirtioPciCap.LENGTH, saved.pciCfg.length, true);
      cfg.setUint32(cap + VirtioPciCap.PCI_CFG_DATA, saved.pciCfg.data, true);
      this.isr = saved.isr;
      this.syncInterruptStatus();
      // Level-triggered: while ISR holds a bit the line must be up, as it was when saved.
      if (this.isr !== 0) this.attachment?.irq.raise();

      this.restoring = { configChanged: false };
      try {
        let ctx: DeviceContext | undefined;
        if (saved.activated) {
          this.active = true;
          ctx = this.makeContext(this.epoch, memory);
          this.device.activate(ctx);
        }
        applyDevice?.(ctx);
      } catch (error) {
        // A device bug: never leave a half-restored function, go back to the power-on state.
        this.restoring = undefined;
        this.reset();
        throw new FunctionStateError(`${this.name}: applying the device state failed: ${describe(error)}`, { cause: error });
      }
      configChanged ||= this.restoring.configChanged;
      this.restoring = undefined;
      if (configChanged) this.deviceConfigChanged();
      for (const job of jobs) {
        try {
          job();
        } catch (error) {
          this.report(error); // the host's bug, not the guest's: no DEVICE_NEEDS_RESET
        }
      }
    };
  }

  /** A restore needs the power-on state: nothing negotiated, no queue, no active device. */
  private requireFresh(): void {
    if (this.status !== 0 || this.active || this.common.queues.some((q) => q.enabled)) {
      throw new FunctionStateError(`${this.name}: restore into a function that is already in use (status 0x${this.status.toString(16)})`);
    }
  }

  /** Queue `index` as saved, over guest memory, with its chains in flight re-read. */
  private rebuildQueue(
    index: number,
    regs: QueueSetup,
    engine: QueueEngineState,
    memory: GuestMemory,
    features: bigint,
    onBroken: (error: VirtqueueError) => void,
  ): RestoredQueue {
    try {
      const queue = this.buildQueue(index, regs, memory, features, onBroken);
      // readFunctionState read the engine in the layout the features name, which buildQueue built.
      const chains =
        queue instanceof PackedQueue && engine.layout === 'packed'
          ? queue.restoreState(engine)
          : queue instanceof SplitQueue && engine.layout === 'split'
            ? queue.restoreState(engine)
            : undefined;
      if (!chains) throw new FunctionStateError(`queue ${index}: a ${engine.layout} engine state for a ${queue.layout} queue`);
      return { engine: queue, chains };
    } catch (error) {
      throw new FunctionStateError(`${this.name}: ${describe(error)}`, { cause: error });
    }
  }

  // ---- PCI config space (PciFunction's hooks): nothing throws past here ----------------

  /** A guest config read: `configSpace` as it is now, after the PCI_CFG window's BAR read if it reaches pci_cfg_data. */
  configRead(offset: number, width: AccessWidth): number {
    if (!validConfigAccess(offset, width)) return 0;
    if (this.pciCfg.touchesData(offset, width)) this.guarded(() => this.pciCfg.load());
    let value = 0;
    for (let i = width - 1; i >= 0; i--) value = value * 256 + this.configSpace[offset + i]!;
    return value;
  }

  /** A guest config write: only the PCI_CFG window's fields are writable; pci_cfg_data writes go to BAR0. */
  configWrite(offset: number, width: AccessWidth, value: number): void {
    if (!validConfigAccess(offset, width)) return;
    let data = false;
    for (let i = 0; i < width; i++) {
      const at = offset + i;
      if (!this.pciCfg.writable(at)) continue; // read-only, or RW1C bits we never set
      this.configSpace[at] = (value >>> (8 * i)) & 0xff;
      data ||= this.pciCfg.touchesData(at, 1);
    }
    if (data) this.guarded(() => this.pciCfg.store());
  }

  private guarded(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.fail(error);
    }
  }

  // ---- BAR0 boundary: nothing throws past here -------------------------------------

  private barRead(offset: number, width: AccessWidth): number {
    try {
      if (!this.validAccess(offset, width)) return 0;
      return this.readAt(offset, width) >>> 0;
    } catch (error) {
      this.fail(error);
      return 0;
    }
  }

  private barWrite(offset: number, width: AccessWidth, value: number): void {
    try {
      if (!this.validAccess(offset, width)) return;
      this.writeAt(offset, width, (value & WIDTH_MASK[width]) >>> 0);
    } catch (error) {
      this.fail(error);
    }
  }

  private validAccess(offset: number, width: number): boolean {
    return (
      (width === 1 || width === 2 || width === 4) &&
      Number.isInteger(offset) &&
      offset >= 0 &&
      offset + width <= this.bars[0]!.size
    );
  }

  private within(region: { offset: number; length: number }, offset: number, width: number): boolean {
    return offset >= region.offset && offset + width <= region.offset + region.length;
  }

  private readAt(offset: number, width: AccessWidth): number {
    const { common, isr, notify, device } = this.layout;
    if (this.within(common, offset, width)) return this.common.read(offset - common.offset, width);
    if (this.within(isr, offset, width)) return offset === isr.offset ? this.readIsr() : 0;
    if (this.within(notify, offset, width)) return 0;
    // The layout sized this region to the config space, so `within` is its bounds check.
    if (this.within(device, offset, width)) {
      this.readConfigGeneration(); // the driver sees a changed generation with the changed value
      return this.device.deviceConfig?.read(offset - device.offset, width) ?? 0;
    }
    // Straddles two structures or a gap: assemble byte by byte.
    if (width === 1) return 0;
    let value = 0;
    for (let i = width - 1; i >= 0; i--) value = value * 256 + this.readAt(offset + i, 1);
    return value;
  }

  private writeAt(offset: number, width: AccessWidth, value: number): void {
    const { common, notify, device } = this.layout;
    if (this.within(common, offset, width)) return this.common.write(offset - common.offset, width, value);
    if (this.within(notify, offset, width)) {
      // Notify on the write that covers a queue's slot start; the high byte of a
      // byte-split 16-bit write lands at +1 and is ignored.
      const rel = offset - notify.offset;
      if (rel % notify.multiplier === 0) this.kick(rel / notify.multiplier);
      return;
    }
    if (this.within(device, offset, width)) return this.device.deviceConfig?.write(offset - device.offset, width, value);
    if (width === 1) return; // ISR is read-only; gaps ignore writes
    for (let i = 0; i < width; i++) this.writeAt(offset + i, 1, (value >>> (8 * i)) & 0xff);
  }

  // ---- ISR (§4.1.4.5) -----------------------------------------------------------------

  private readIsr(): number {
    this.stats.isrReads++;
    const value = this.isr;
    // Only touch the line if we had raised it: v86 has no wired-OR, so lowering a line
    // we never raised could drop another device's interrupt on a shared INTx.
    if (value !== 0) {
      this.isr = 0;
      this.syncInterruptStatus();
      this.attachment?.irq.lower();
    }
    return value;
  }

  /** PCI status bit 3 is the OR of the ISR bits when there is no MSI-X (§4.1.4.5.1). */
  private syncInterruptStatus(): void {
    const status = this.configSpace[PciHeader.STATUS]!;
    this.configSpace[PciHeader.STATUS] = this.isr !== 0 ? status | PciStatus.INTERRUPT_STATUS : status & ~PciStatus.INTERRUPT_STATUS;
  }

  // ---- device configuration changes (§4.1.4.3.1, §4.1.5.4) -------------------------------

  /** A device-side config field changed, whatever the status: from the ConfigSpace or ctx.configChanged(). */
  private deviceConfigChanged(): void {
    if (this.restoring) {
      this.restoring.configChanged = true;
      return;
    }
    this.configPending = true;
    if (this.status & DeviceStatus.DRIVER_OK) this.raiseConfigInterrupt();
  }

  /**
   * config_generation changes once per batch of changes the driver can observe, as the spec's
   * note under §4.1.4.3.1 suggests: bumped on the first read (of it or of device config) after
   * a change, so it cannot wrap back to a value the driver saw between two of its reads.
   */
  private readConfigGeneration(): number {
    if (this.configPending) {
      this.configPending = false;
      this.configGeneration = (this.configGeneration + 1) & 0xff;
    }
    return this.configGeneration;
  }

  /**
   * At most one config-change interrupt pending: while ISR's CONFIG bit is still set the line
   * is already up for it, so further changes (a flapping link, repeated errors) add nothing
   * until the driver reads ISR. The guest's own ISR reads bound the rate.
   */
  private raiseConfigInterrupt(): void {
    if (this.isr & IsrBit.CONFIG) return;
    this.raiseIsr(IsrBit.CONFIG);
  }

  private raiseIsr(bits: number, queue = -1): void {
    this.isr |= bits;
    this.syncInterruptStatus();
    this.stats.interrupts++;
    if (queue >= 0) this.queueCounters[queue]!.interrupts++;
    this.tracerRef?.transport(queue >= 0 ? 'interrupt' : 'config-interrupt', queue);
    this.attachment?.irq.raise();
  }

  // ---- status state machine (§2.1, §3.1) ----------------------------------------------

  private writeStatus(value: number): void {
    value &= 0xff;
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.status;
    // Bits only accumulate until a reset. The driver MUST NOT clear one (§2.1.1); honouring a
    // write that does (a stray or rogue one) would stop the device under requests Linux never
    // times out. DEVICE_NEEDS_RESET is the device's to set, and reserved bits mean nothing.
    let next = old | (value & DRIVER_STATUS_BITS);
    if (next & DeviceStatus.FEATURES_OK && !(old & DeviceStatus.FEATURES_OK)) {
      const driver = this.common.driverFeatures;
      if (this.featuresAcceptable(driver) && this.deviceAccepts(driver)) this.acceptedFeatures = driver;
      else next &= ~DeviceStatus.FEATURES_OK; // refused: the driver reads it back and gives up (§3.1.1)
    }
    this.status = next | (this.status & DeviceStatus.DEVICE_NEEDS_RESET);
    // At most one event per driver write that changes a bit: the status history the inspector shows.
    if (next !== old) this.tracerRef?.transport('status', -1, undefined, next);
    if (next & DeviceStatus.DRIVER_OK && !(old & DeviceStatus.DRIVER_OK)) this.activate();
  }

  /**
   * The device's FEATURES_OK hook (blk sets writeback per §5.2.5 here). A hook that throws is
   * a device failure: reported like any other (DEVICE_NEEDS_RESET, §2.1.2) and FEATURES_OK is
   * not set, since the device could not take those features.
   */
  private deviceAccepts(driver: bigint): boolean {
    try {
      this.device.featuresAccepted?.(driver);
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  private featuresAcceptable(driver: bigint): boolean {
    // A subset of what we offered, and the modern interface (we have no legacy one).
    return (driver & ~this.offeredFeatures) === 0n && hasFeature(driver, Feature.VIRTIO_F_VERSION_1);
  }

  private activate(): void {
    if (this.status & DeviceStatus.DEVICE_NEEDS_RESET) return;
    if (!(this.status & DeviceStatus.FEATURES_OK)) {
      this.fail(new Error('DRIVER_OK set without FEATURES_OK'));
      return;
    }
    const memory = this.attachment?.memory;
    if (!memory) {
      this.fail(new Error('DRIVER_OK before the function was connected to a bus'));
      return;
    }
    this.active = true;
    this.device.activate(this.makeContext(this.epoch, memory));
  }

  private makeContext(epoch: number, memory: PciAttachment['memory']): DeviceContext {
    const current = () => epoch === this.epoch;
    const features = this.acceptedFeatures;
    return {
      memory,
      features,
      hasFeature: (bit) => hasFeature(features, bit),
      queue: (index) => (current() ? this.queue(index) : undefined),
      signalUsed: (queue) => {
        if (!current()) return false;
        try {
          if (!queue.needsInterrupt()) return false;
        } catch (error) {
          this.fail(error);
          return false;
        }
        this.raiseIsr(IsrBit.QUEUE, queue.index);
        return true;
      },
      configChanged: () => {
        if (current()) this.deviceConfigChanged();
      },
      fail: (error) => {
        if (current()) this.fail(error);
      },
    };
  }

  /** Driver wrote 0 to device_status (§2.1.1 / §4.1.4.3.1): back to the power-on state. */
  private reset(): void {
    this.epoch++;
    this.active = false;
    this.stats.resets++;
    this.tracerRef?.transport('reset', -1);
    for (const regs of this.common.queues) regs.queue?.detach();
    this.common.reset();
    this.status = 0;
    this.acceptedFeatures = 0n;
    if (this.isr !== 0) {
      this.isr = 0;
      this.syncInterruptStatus();
      this.attachment?.irq.lower();
    }
    try {
      this.device.reset();
    } catch (error) {
      this.report(error); // the device is broken, but the driver did nothing wrong
    }
  }

  // ---- queues -------------------------------------------------------------------------

  private enableQueue(index: number): void {
    const regs = this.common.queues[index];
    if (!regs || regs.enabled) return;
    const memory = this.attachment?.memory;
    if (!memory) return this.fail(new VirtqueueError(index, 'enabled before the function was connected to a bus'));
    if (!(this.status & DeviceStatus.FEATURES_OK)) {
      return this.fail(new VirtqueueError(index, 'enabled before FEATURES_OK'));
    }
    const packed = hasFeature(this.acceptedFeatures, Feature.VIRTIO_F_RING_PACKED);
    if (!isValidQueueSize(regs.sizeWritten, regs.maxSize, packed)) {
      const rule = packed ? `in 1..${regs.maxSize}` : `a power of 2 ≤ ${regs.maxSize}`;
      return this.fail(new VirtqueueError(index, `queue size ${regs.sizeWritten} is not ${rule}`));
    }
    regs.queue = this.buildQueue(index, regs, memory, this.acceptedFeatures, (error) => this.fail(error));
    regs.queue.gate = this.gates[index];
    regs.queue.observer = this.tracerRef;
    regs.enabled = true;
  }

  /** The engine for queue `index` as the driver set it up; throws VirtqueueError for a bad ring placement. */
  private buildQueue(
    index: number,
    regs: QueueSetup,
    memory: GuestMemory,
    features: bigint,
    onBroken: (error: VirtqueueError) => void,
  ): SplitQueue | PackedQueue {
    const addr = (pair: readonly [number, number]) => pair[1] * 2 ** 32 + pair[0];
    const eventIdx = hasFeature(features, Feature.VIRTIO_F_RING_EVENT_IDX);
    const indirectDesc = hasFeature(features, Feature.VIRTIO_F_RING_INDIRECT_DESC);
    // Same three address registers, read per layout (§4.1.4.3): the Driver Area holds the
    // avail ring or the driver event suppression, the Device Area the used ring or the
    // device event suppression.
    return hasFeature(features, Feature.VIRTIO_F_RING_PACKED)
      ? new PackedQueue(
          memory,
          { index, size: regs.size, descRing: addr(regs.desc), driverEvent: addr(regs.driver), deviceEvent: addr(regs.device), eventIdx, indirectDesc },
          onBroken,
        )
      : new SplitQueue(
          memory,
          { index, size: regs.size, descTable: addr(regs.desc), availRing: addr(regs.driver), usedRing: addr(regs.device), eventIdx, indirectDesc },
          onBroken,
        );
  }

  private kick(queueIndex: number, counted = true): void {
    if (counted) {
      this.stats.notifies++;
      const counters = this.queueCounters[queueIndex];
      if (counters) counters.kicks++;
      this.tracerRef?.transport('kick', queueIndex);
    }
    const queue = this.common.queues[queueIndex]?.queue;
    const ready =
      (this.status & (DeviceStatus.DRIVER_OK | DeviceStatus.DEVICE_NEEDS_RESET)) === DeviceStatus.DRIVER_OK;
    if (!ready || !queue?.live) return;
    this.device.notify(queueIndex);
  }

  // ---- errors -------------------------------------------------------------------------

  /**
   * A guest violation or device failure: DEVICE_NEEDS_RESET, a config-change interrupt
   * (§2.1.2), and the reason to listeners. Each error object is reported once even when
   * it is both reported by its queue and caught again at the BAR boundary.
   */
  private fail(error: unknown): void {
    if (!this.report(error)) return;
    if (this.status & DeviceStatus.DEVICE_NEEDS_RESET) return; // one episode: already signalled
    this.status |= DeviceStatus.DEVICE_NEEDS_RESET;
    this.tracerRef?.transport('status', -1, undefined, this.status);
    // §2.1.2: the notification is due once DRIVER_OK is set; before that the driver reads status.
    if (this.status & DeviceStatus.DRIVER_OK) this.raiseConfigInterrupt();
  }

  /** Counts the error; tells listeners and the tracer only as the coalescer allows. False: seen before. */
  private report(error: unknown): boolean {
    if (typeof error === 'object' && error !== null) {
      if (this.reported.has(error)) return false;
      this.reported.add(error);
    }
    const reason = describe(error);
    this.stats.errors++;
    this.lastError = reason;
    const text = this.errorReports.admit(reason);
    if (text === undefined) return true;
    this.tracerRef?.transport('error', error instanceof VirtqueueError ? error.queueIndex : -1, text);
    for (const listener of this.listeners) {
      try {
        listener(text);
      } catch {
        // a listener's bug must not become the guest's problem
      }
    }
    return true;
  }
}
