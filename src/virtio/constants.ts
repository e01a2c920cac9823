/**
 * Numbers from the virtio 1.2 specification (and the PCI spec where virtio uses it).
 * Feature bits are bit numbers; `featureBit(n)` turns one into a mask.
 */

/** §2.1 Device Status Field. */
export const DeviceStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

export function statusNames(status: number): string[] {
  const names: string[] = [];
  for (const [name, bit] of Object.entries(DeviceStatus)) if (status & bit) names.push(name);
  return names;
}

/** §5 Device Types (the ones the lab cares about, plus common neighbours for the inspector). */
export const DeviceId = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
  BALLOON: 5,
  SCSI: 8,
  NINEP: 9,
  GPU: 16,
  INPUT: 18,
  VSOCK: 19,
  FS: 26,
} as const;

/** §4.1.2 PCI Device Discovery. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Modern (non-transitional) devices: 0x1040 + virtio device id. */
export const VIRTIO_PCI_MODERN_DEVICE_ID_BASE = 0x1040;
export const VIRTIO_PCI_REVISION = 1;
/**
 * Subsystem device id = this + virtio device id: non-transitional devices SHOULD use 0x40 or
 * higher (§4.1.2.1) so a legacy driver never takes them; Linux's modern probe ignores it.
 */
export const VIRTIO_PCI_SUBSYSTEM_ID_BASE = 0x40;

/** PCI class codes (class << 16 | subclass << 8 | prog-if). */
export const PciClass = {
  STORAGE_OTHER: 0x018000,
  NETWORK_ETHERNET: 0x020000,
  OTHER: 0xff0000,
} as const;

/** §4.1.4 virtio_pci_cap.cfg_type. */
export const PciCapType = {
  COMMON_CFG: 1,
  NOTIFY_CFG: 2,
  ISR_CFG: 3,
  DEVICE_CFG: 4,
  PCI_CFG: 5,
  SHARED_MEMORY_CFG: 8,
  VENDOR_CFG: 9,
} as const;

/** PCI status register (config offset 0x06) bits the function sets. */
export const PciStatus = {
  /** INTx is asserted: the OR of the ISR bits without MSI-X (§4.1.4.5.1). */
  INTERRUPT_STATUS: 0x08,
  /** A capability list is present at CAPABILITIES_POINTER. */
  CAP_LIST: 0x10,
} as const;

/** PCI capability id for vendor-specific capabilities (every virtio_pci_cap). */
export const PCI_CAP_ID_VNDR = 0x09;

/** §4.1.4.3 "no MSI-X vector": what we read back, since we only do INTx. */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** §4.1.4.5 ISR status bits. */
export const IsrBit = {
  QUEUE: 1,
  CONFIG: 2,
} as const;

/** §2.7.5 / §2.7.6 / §2.7.7 split virtqueue flags. */
export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
export const VRING_USED_F_NO_NOTIFY = 1;
/** §2.7 Maximum split queue size. */
export const VIRTQ_MAX_SIZE = 32768;
/** §2.8.1 packed descriptor flags: available / used against the ring wrap counters. */
export const VIRTQ_DESC_F_AVAIL = 1 << 7;
export const VIRTQ_DESC_F_USED = 1 << 15;
/** §2.8.10 Descriptor Ring Change Event Flags (the low 2 bits of an event suppression `flags`). */
export const RingEventFlags = {
  ENABLE: 0,
  DISABLE: 1,
  /** Only valid with VIRTIO_F_RING_EVENT_IDX; the value 3 is reserved. */
  DESC: 2,
} as const;
/** §2.8.14 bit 15 of an event suppression `desc` (off_wrap) is the wrap counter, bits 0..14 the offset. */
export const PACKED_EVENT_WRAP_SHIFT = 15;
/** §2.8: packed virtqueues support up to 2^15 entries, and the size need not be a power of 2. */
export const PACKED_MAX_SIZE = 32768;

/** §6 Reserved (device-independent) feature bits. */
export const Feature = {
  VIRTIO_F_NOTIFY_ON_EMPTY: 24,
  VIRTIO_F_ANY_LAYOUT: 27,
  VIRTIO_F_RING_INDIRECT_DESC: 28,
  VIRTIO_F_RING_EVENT_IDX: 29,
  VIRTIO_F_VERSION_1: 32,
  VIRTIO_F_ACCESS_PLATFORM: 33,
  VIRTIO_F_RING_PACKED: 34,
  VIRTIO_F_IN_ORDER: 35,
  VIRTIO_F_ORDER_PLATFORM: 36,
  VIRTIO_F_SR_IOV: 37,
  VIRTIO_F_NOTIFICATION_DATA: 38,
  VIRTIO_F_NOTIF_CONFIG_DATA: 39,
  VIRTIO_F_RING_RESET: 40,
} as const;

/** §5.2.3 virtio-blk feature bits. */
export const BlkFeature = {
  VIRTIO_BLK_F_BARRIER: 0,
  VIRTIO_BLK_F_SIZE_MAX: 1,
  VIRTIO_BLK_F_SEG_MAX: 2,
  VIRTIO_BLK_F_GEOMETRY: 4,
  VIRTIO_BLK_F_RO: 5,
  VIRTIO_BLK_F_BLK_SIZE: 6,
  VIRTIO_BLK_F_SCSI: 7,
  VIRTIO_BLK_F_FLUSH: 9,
  VIRTIO_BLK_F_TOPOLOGY: 10,
  VIRTIO_BLK_F_CONFIG_WCE: 11,
  VIRTIO_BLK_F_MQ: 12,
  VIRTIO_BLK_F_DISCARD: 13,
  VIRTIO_BLK_F_WRITE_ZEROES: 14,
  VIRTIO_BLK_F_LIFETIME: 15,
  VIRTIO_BLK_F_SECURE_ERASE: 16,
  VIRTIO_BLK_F_ZONED: 17,
} as const;

/** §5.1.3 virtio-net feature bits. */
export const NetFeature = {
  VIRTIO_NET_F_CSUM: 0,
  VIRTIO_NET_F_GUEST_CSUM: 1,
  VIRTIO_NET_F_CTRL_GUEST_OFFLOADS: 2,
  VIRTIO_NET_F_MTU: 3,
  VIRTIO_NET_F_MAC: 5,
  VIRTIO_NET_F_GSO: 6,
  VIRTIO_NET_F_GUEST_TSO4: 7,
  VIRTIO_NET_F_GUEST_TSO6: 8,
  VIRTIO_NET_F_GUEST_ECN: 9,
  VIRTIO_NET_F_GUEST_UFO: 10,
  VIRTIO_NET_F_HOST_TSO4: 11,
  VIRTIO_NET_F_HOST_TSO6: 12,
  VIRTIO_NET_F_HOST_ECN: 13,
  VIRTIO_NET_F_HOST_UFO: 14,
  VIRTIO_NET_F_MRG_RXBUF: 15,
  VIRTIO_NET_F_STATUS: 16,
  VIRTIO_NET_F_CTRL_VQ: 17,
  VIRTIO_NET_F_CTRL_RX: 18,
  VIRTIO_NET_F_CTRL_VLAN: 19,
  VIRTIO_NET_F_CTRL_RX_EXTRA: 20,
  VIRTIO_NET_F_GUEST_ANNOUNCE: 21,
  VIRTIO_NET_F_MQ: 22,
  VIRTIO_NET_F_CTRL_MAC_ADDR: 23,
  VIRTIO_NET_F_HOST_USO: 56,
  VIRTIO_NET_F_HASH_REPORT: 57,
  VIRTIO_NET_F_GUEST_HDRLEN: 59,
  VIRTIO_NET_F_RSS: 60,
  VIRTIO_NET_F_RSC_EXT: 61,
  VIRTIO_NET_F_STANDBY: 62,
  VIRTIO_NET_F_SPEED_DUPLEX: 63,
} as const;

/** Feature bit number → mask. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** Mask of several feature bit numbers. */
export function features(...bits: number[]): bigint {
  let mask = 0n;
  for (const bit of bits) mask |= featureBit(bit);
  return mask;
}

export function hasFeature(mask: bigint, bit: number): boolean {
  return (mask & featureBit(bit)) !== 0n;
}

function invert(table: Record<string, number>): Map<number, string> {
  return new Map(Object.entries(table).map(([name, bit]) => [bit, name]));
}
const GENERIC_NAMES = invert(Feature);
const DEVICE_NAMES = new Map<number, Map<number, string>>([
  [DeviceId.NET, invert(NetFeature)],
  [DeviceId.BLOCK, invert(BlkFeature)],
]);

/**
 * Names of the bits set in `bits`, for the inspector. Bits 24..40 are device-independent
 * (§6); others are read in the device type's table; unknown bits come out as "bit N".
 */
export function featureNames(bits: bigint, deviceId: number): string[] {
  const names: string[] = [];
  const deviceNames = DEVICE_NAMES.get(deviceId);
  for (let bit = 0; bit < 64; bit++) {
    if (!hasFeature(bits, bit)) continue;
    const isGeneric = bit >= 24 && bit <= 40;
    const name = isGeneric ? GENERIC_NAMES.get(bit) : deviceNames?.get(bit);
    names.push(name ?? `bit ${bit}`);
  }
  return names;
}
