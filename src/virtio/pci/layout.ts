/**
 * Where the virtio structures live inside BAR0. Everything shares one BAR, packed so an
 * I/O BAR (≤ 256 ports) can hold it: common cfg, ISR, notify area, device cfg.
 */

/** §4.1.4.3 virtio_pci_common_cfg register offsets (up to queue_device, 0x38 bytes). */
export const CommonCfg = {
  DEVICE_FEATURE_SELECT: 0x00,
  DEVICE_FEATURE: 0x04,
  DRIVER_FEATURE_SELECT: 0x08,
  DRIVER_FEATURE: 0x0c,
  CONFIG_MSIX_VECTOR: 0x10,
  NUM_QUEUES: 0x12,
  DEVICE_STATUS: 0x14,
  CONFIG_GENERATION: 0x15,
  QUEUE_SELECT: 0x16,
  QUEUE_SIZE: 0x18,
  QUEUE_MSIX_VECTOR: 0x1a,
  QUEUE_ENABLE: 0x1c,
  QUEUE_NOTIFY_OFF: 0x1e,
  QUEUE_DESC_LO: 0x20,
  QUEUE_DESC_HI: 0x24,
  QUEUE_DRIVER_LO: 0x28,
  QUEUE_DRIVER_HI: 0x2c,
  QUEUE_DEVICE_LO: 0x30,
  QUEUE_DEVICE_HI: 0x34,
} as const;
/** We offer neither NOTIF_CONFIG_DATA nor RING_RESET, so the structure ends at 0x38. */
export const COMMON_CFG_LENGTH = 0x38;

/**
 * Bytes between two queues' notify addresses. "An even power of 2" (§4.1.4.4); 4 keeps
 * each queue's 16-bit notify register on its own 4-byte slot.
 */
export const NOTIFY_OFF_MULTIPLIER = 4;

export interface BarLayout {
  readonly common: { readonly offset: number; readonly length: number };
  readonly isr: { readonly offset: number; readonly length: number };
  readonly notify: { readonly offset: number; readonly length: number; readonly multiplier: number };
  /** length 0 when the device has no config space. */
  readonly device: { readonly offset: number; readonly length: number };
  /** First byte after the last structure. */
  readonly end: number;
}

const align4 = (n: number) => (n + 3) & ~3;

export function computeBarLayout(numQueues: number, deviceConfigSize: number): BarLayout {
  const common = { offset: 0, length: COMMON_CFG_LENGTH };
  const isr = { offset: COMMON_CFG_LENGTH, length: 4 };
  const notify = {
    offset: isr.offset + isr.length,
    length: Math.max(1, numQueues) * NOTIFY_OFF_MULTIPLIER,
    multiplier: NOTIFY_OFF_MULTIPLIER,
  };
  const device = { offset: align4(notify.offset + notify.length), length: deviceConfigSize };
  return { common, isr, notify, device, end: device.offset + device.length };
}

export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
