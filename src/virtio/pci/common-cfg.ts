/**
 * The common configuration structure's register file (§4.1.4.3): feature windows, queue
 * select and the selected queue's registers, at any access width or alignment. It only
 * stores what the driver writes; device_status and queue_enable go to the transport's status
 * machine (`CommonCfgHost`), which decides what they mean.
 */
import type { AccessWidth } from '../bus.ts';
import { DeviceStatus, PACKED_MAX_SIZE, VIRTIO_MSI_NO_VECTOR } from '../constants.ts';
import type { Virtqueue } from '../queue/virtqueue.ts';
import { COMMON_CFG_LENGTH, CommonCfg } from './layout.ts';

/** The value bits of an access of each width. */
export const WIDTH_MASK = { 1: 0xff, 2: 0xffff, 4: 0xffffffff } as const;

/** Driver-written per-queue registers (§4.1.4.3), latched until queue_enable. */
export interface QueueRegisters {
  readonly maxSize: number;
  /** What queue_size presents: always a power of 2 ≤ maxSize (§4.1.4.3.1). */
  size: number;
  /**
   * The last value the driver wrote, valid or not: partial (byte-split) writes merge into it,
   * so 256 → 128 written as two bytes passes through 0x180 and still lands on 128.
   */
  sizeWritten: number;
  enabled: boolean;
  desc: [number, number];
  driver: [number, number];
  device: [number, number];
  queue: Virtqueue | undefined;
}

/** The transport's side: what the registers report and where status and enable writes go. */
export interface CommonCfgHost {
  /** device_feature: device bits | VERSION_1 | ring features. */
  readonly offeredFeatures: bigint;
  deviceStatus(): number;
  /** VIRTIO_F_RING_PACKED accepted: queue sizes need not be powers of 2 (§4.1.4.3.2). */
  ringPacked(): boolean;
  configGeneration(): number;
  writeStatus(value: number): void;
  enableQueue(index: number): void;
}

/** The driver-written selectors and feature windows (a VM snapshot keeps them). */
export interface CommonSelectors {
  readonly deviceFeatureSelect: number;
  readonly driverFeatureSelect: number;
  readonly driverFeatures: readonly [number, number];
  readonly queueSelect: number;
}

interface Register {
  readonly offset: number;
  readonly width: AccessWidth;
  get(): number;
  set?(value: number): void;
  /** What a partial write merges into, when it differs from what reads present. */
  latched?(): number;
}

function freshQueueRegisters(maxSize: number): QueueRegisters {
  return { maxSize, size: maxSize, sizeWritten: maxSize, enabled: false, desc: [0, 0], driver: [0, 0], device: [0, 0], queue: undefined };
}

/**
 * A queue size the driver may choose: at most the device's maximum, and a power of 2 unless
 * VIRTIO_F_RING_PACKED was negotiated (§4.1.4.3.2; §2.8: a packed ring of any size up to 2^15).
 */
export function isValidQueueSize(size: number, maxSize: number, packed = false): boolean {
  if (packed) return Number.isInteger(size) && size > 0 && size <= Math.min(maxSize, PACKED_MAX_SIZE);
  return size > 0 && (size & (size - 1)) === 0 && size <= maxSize;
}

function featureWindow(mask: bigint, select: number): number {
  if (select > 1) return 0;
  return Number((mask >> BigInt(32 * select)) & 0xffffffffn);
}

export class CommonCfgRegisters {
  /** Per queue index; replaced wholesale at reset. */
  readonly queues: QueueRegisters[];
  private readonly registers: Array<Register | undefined>;
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  /** driver_feature windows 0 (bits 0..31) and 1 (bits 32..63). */
  private readonly driverFeatureWindows = [0, 0];
  private queueSelect = 0;

  constructor(
    queueMaxSizes: readonly number[],
    private readonly host: CommonCfgHost,
  ) {
    this.queues = queueMaxSizes.map(freshQueueRegisters);
    this.registers = this.buildRegisterMap();
  }

  /** The features the driver has written so far (read at FEATURES_OK). */
  get driverFeatures(): bigint {
    return BigInt(this.driverFeatureWindows[0]) | (BigInt(this.driverFeatureWindows[1]) << 32n);
  }

  get selectors(): CommonSelectors {
    return {
      deviceFeatureSelect: this.deviceFeatureSelect,
      driverFeatureSelect: this.driverFeatureSelect,
      driverFeatures: [this.driverFeatureWindows[0], this.driverFeatureWindows[1]],
      queueSelect: this.queueSelect,
    };
  }

  /** Snapshot restore: the selectors as saved (already range-checked). */
  restoreSelectors(s: CommonSelectors): void {
    this.deviceFeatureSelect = s.deviceFeatureSelect >>> 0;
    this.driverFeatureSelect = s.driverFeatureSelect >>> 0;
    this.driverFeatureWindows[0] = s.driverFeatures[0] >>> 0;
    this.driverFeatureWindows[1] = s.driverFeatures[1] >>> 0;
    this.queueSelect = s.queueSelect & 0xffff;
  }

  /** Power-on values (§4.1.4.3.1); the caller detaches the live queues first. */
  reset(): void {
    this.queues.forEach((regs, i) => (this.queues[i] = freshQueueRegisters(regs.maxSize)));
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.driverFeatureWindows[0] = 0;
    this.driverFeatureWindows[1] = 0;
    this.queueSelect = 0;
  }

  /** `rel + width` lies inside the structure (the transport checked). */
  read(rel: number, width: AccessWidth): number {
    const reg = this.registers[rel];
    if (reg && reg.offset === rel && reg.width === width) return reg.get() & WIDTH_MASK[width];
    // Any other shape (a byte of a 16-bit register, a 32-bit read over two registers):
    // byte by byte. Common cfg reads have no side effects, so this is exact.
    let value = 0;
    for (let i = width - 1; i >= 0; i--) {
      const r = this.registers[rel + i];
      const byte = r ? (r.get() >>> (8 * (rel + i - r.offset))) & 0xff : 0;
      value = value * 256 + byte;
    }
    return value;
  }

  write(rel: number, width: AccessWidth, value: number): void {
    const reg = this.registers[rel];
    if (reg && reg.offset === rel && reg.width === width) {
      reg.set?.(value);
      return;
    }
    // Partial writes merge into the register's current value (read-modify-write), so a
    // 16-bit register written as two bytes ends up with both.
    for (let i = 0; i < width; i++) {
      const r = this.registers[rel + i];
      if (!r?.set) continue;
      const shift = 8 * (rel + i - r.offset);
      const byte = (value >>> (8 * i)) & 0xff;
      const merged = (((r.latched ?? r.get)() & ~(0xff << shift)) | (byte << shift)) >>> 0;
      r.set(merged & WIDTH_MASK[r.width]);
    }
  }

  private selectedQueue(): QueueRegisters | undefined {
    return this.queues[this.queueSelect];
  }

  private buildRegisterMap(): Array<Register | undefined> {
    const host = this.host;
    const q = () => this.selectedQueue();
    const addressPair = (offset: number, pick: (r: QueueRegisters) => [number, number], half: 0 | 1): Register => ({
      offset,
      width: 4,
      get: () => {
        const r = q();
        return r ? pick(r)[half] : 0;
      },
      set: (v) => {
        const r = q();
        if (r && !r.enabled) pick(r)[half] = v >>> 0;
      },
    });
    const regs: Register[] = [
      {
        offset: CommonCfg.DEVICE_FEATURE_SELECT,
        width: 4,
        get: () => this.deviceFeatureSelect,
        set: (v) => (this.deviceFeatureSelect = v >>> 0),
      },
      {
        offset: CommonCfg.DEVICE_FEATURE,
        width: 4,
        get: () => featureWindow(host.offeredFeatures, this.deviceFeatureSelect),
      },
      {
        offset: CommonCfg.DRIVER_FEATURE_SELECT,
        width: 4,
        get: () => this.driverFeatureSelect,
        set: (v) => (this.driverFeatureSelect = v >>> 0),
      },
      {
        offset: CommonCfg.DRIVER_FEATURE,
        width: 4,
        get: () => this.driverFeatureWindows[this.driverFeatureSelect] ?? 0,
        set: (v) => {
          // Frozen once FEATURES_OK is set (§3.1.1); windows past 1 do not exist.
          if (host.deviceStatus() & DeviceStatus.FEATURES_OK) return;
          if (this.driverFeatureSelect < 2) this.driverFeatureWindows[this.driverFeatureSelect] = v >>> 0;
        },
      },
      // No MSI-X: vectors always read NO_VECTOR and writes are dropped.
      { offset: CommonCfg.CONFIG_MSIX_VECTOR, width: 2, get: () => VIRTIO_MSI_NO_VECTOR, set: () => {} },
      { offset: CommonCfg.NUM_QUEUES, width: 2, get: () => this.queues.length },
      { offset: CommonCfg.DEVICE_STATUS, width: 1, get: () => host.deviceStatus(), set: (v) => host.writeStatus(v) },
      { offset: CommonCfg.CONFIG_GENERATION, width: 1, get: () => host.configGeneration() },
      {
        offset: CommonCfg.QUEUE_SELECT,
        width: 2,
        get: () => this.queueSelect,
        set: (v) => (this.queueSelect = v & 0xffff),
      },
      {
        offset: CommonCfg.QUEUE_SIZE,
        width: 2,
        get: () => q()?.size ?? 0, // 0 = no such queue
        // The device MUST present 0 or a power of 2 here (§4.1.4.3.1) and the driver MUST NOT
        // write anything else (§4.1.4.3.2): other values are latched but not presented, and
        // queue_enable refuses them (the driver would lay its rings out for that size).
        set: (v) => {
          const r = q();
          if (!r || r.enabled) return;
          r.sizeWritten = v & 0xffff;
          if (isValidQueueSize(r.sizeWritten, r.maxSize, host.ringPacked())) r.size = r.sizeWritten;
        },
        latched: () => q()?.sizeWritten ?? 0,
      },
      { offset: CommonCfg.QUEUE_MSIX_VECTOR, width: 2, get: () => VIRTIO_MSI_NO_VECTOR, set: () => {} },
      {
        offset: CommonCfg.QUEUE_ENABLE,
        width: 2,
        get: () => (q()?.enabled ? 1 : 0),
        set: (v) => {
          if (v & 1) host.enableQueue(this.queueSelect);
        },
      },
      // queue_notify_off × multiplier = the queue's slot in the notify area.
      { offset: CommonCfg.QUEUE_NOTIFY_OFF, width: 2, get: () => (q() ? this.queueSelect : 0) },
      addressPair(CommonCfg.QUEUE_DESC_LO, (r) => r.desc, 0),
      addressPair(CommonCfg.QUEUE_DESC_HI, (r) => r.desc, 1),
      addressPair(CommonCfg.QUEUE_DRIVER_LO, (r) => r.driver, 0),
      addressPair(CommonCfg.QUEUE_DRIVER_HI, (r) => r.driver, 1),
      addressPair(CommonCfg.QUEUE_DEVICE_LO, (r) => r.device, 0),
      addressPair(CommonCfg.QUEUE_DEVICE_HI, (r) => r.device, 1),
    ];
    const byByte = new Array<Register | undefined>(COMMON_CFG_LENGTH);
    for (const reg of regs) for (let i = 0; i < reg.width; i++) byByte[reg.offset + i] = reg;
    return byByte;
  }
}
