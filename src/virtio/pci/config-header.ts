/**
 * The 256-byte PCI configuration space of a modern virtio function: type-0 header plus the
 * virtio_pci_cap chain (§4.1.4) pointing into BAR0.
 */
import {
  PCI_CAP_ID_VNDR,
  PciCapType,
  VIRTIO_PCI_MODERN_DEVICE_ID_BASE,
  PciStatus,
  VIRTIO_PCI_REVISION,
  VIRTIO_PCI_SUBSYSTEM_ID_BASE,
  VIRTIO_PCI_VENDOR_ID,
} from '../constants.ts';
import type { BarLayout } from './layout.ts';

/** PCI header offsets we fill in. */
export const PciHeader = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  CLASS_PROG_IF: 0x09,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  CAPABILITIES_POINTER: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
} as const;
/** PCI status register bit 4: a capability list is present. */
export const PCI_STATUS_CAP_LIST = PciStatus.CAP_LIST;
const FIRST_CAP = 0x40;

export interface HeaderOptions {
  readonly deviceId: number;
  readonly pciClass: number;
  readonly barKind: 'io' | 'mem';
  readonly layout: BarLayout;
}

/** virtio_pci_cap offsets (§4.1.4). */
export const VirtioPciCap = {
  CFG_TYPE: 3,
  BAR: 4,
  OFFSET: 8,
  LENGTH: 12,
  /** virtio_pci_cfg_cap.pci_cfg_data[4] (§4.1.4.9), after the 16-byte virtio_pci_cap. */
  PCI_CFG_DATA: 16,
} as const;

export interface ConfigHeader {
  /** The 256 bytes. */
  readonly bytes: Uint8Array;
  /** Where the VIRTIO_PCI_CAP_PCI_CFG capability starts. */
  readonly pciCfgCap: number;
}

export function buildConfigSpace(opts: HeaderOptions): ConfigHeader {
  const bytes = new Uint8Array(256);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(PciHeader.VENDOR_ID, VIRTIO_PCI_VENDOR_ID, true);
  dv.setUint16(PciHeader.DEVICE_ID, VIRTIO_PCI_MODERN_DEVICE_ID_BASE + opts.deviceId, true);
  dv.setUint16(PciHeader.STATUS, PCI_STATUS_CAP_LIST, true);
  bytes[PciHeader.REVISION_ID] = VIRTIO_PCI_REVISION;
  bytes[PciHeader.CLASS_PROG_IF] = opts.pciClass & 0xff;
  bytes[PciHeader.CLASS_PROG_IF + 1] = (opts.pciClass >> 8) & 0xff;
  bytes[PciHeader.CLASS_PROG_IF + 2] = (opts.pciClass >> 16) & 0xff;
  bytes[PciHeader.HEADER_TYPE] = 0;
  // BAR type bits; the host writes the address. I/O: bit 0 set. Memory: 32-bit, non-prefetchable.
  dv.setUint32(PciHeader.BAR0, opts.barKind === 'io' ? 1 : 0, true);
  dv.setUint16(PciHeader.SUBSYSTEM_VENDOR_ID, VIRTIO_PCI_VENDOR_ID, true);
  dv.setUint16(PciHeader.SUBSYSTEM_ID, VIRTIO_PCI_SUBSYSTEM_ID_BASE + opts.deviceId, true);
  // INTA: with pin 0 Linux's virtio_pci probe fails (-22) since we have no MSI-X.
  bytes[PciHeader.INTERRUPT_PIN] = 1;

  const { layout } = opts;
  const caps: Array<{ type: number; offset: number; length: number; extra?: number }> = [
    { type: PciCapType.COMMON_CFG, offset: layout.common.offset, length: layout.common.length },
    {
      type: PciCapType.NOTIFY_CFG,
      offset: layout.notify.offset,
      length: layout.notify.length,
      extra: layout.notify.multiplier,
    },
    { type: PciCapType.ISR_CFG, offset: layout.isr.offset, length: layout.isr.length },
  ];
  if (layout.device.length > 0) {
    caps.push({ type: PciCapType.DEVICE_CFG, offset: layout.device.offset, length: layout.device.length });
  }
  // Last: the window into BAR0 through config space (§4.1.4.9), cap.bar/offset/length 0 until
  // the driver sets them; `extra` stands for pci_cfg_data, initially 0.
  caps.push({ type: PciCapType.PCI_CFG, offset: 0, length: 0, extra: 0 });
  let pciCfgCap = 0;

  bytes[PciHeader.CAPABILITIES_POINTER] = FIRST_CAP;
  let at = FIRST_CAP;
  caps.forEach((cap, i) => {
    const capLen = cap.extra === undefined ? 16 : 20;
    const next = i + 1 < caps.length ? at + capLen : 0;
    // struct virtio_pci_cap: cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2], offset, length
    bytes[at] = PCI_CAP_ID_VNDR;
    bytes[at + 1] = next;
    bytes[at + 2] = capLen;
    bytes[at + 3] = cap.type;
    bytes[at + 4] = 0; // BAR0
    bytes[at + 5] = 0; // id: one structure of each type
    dv.setUint32(at + 8, cap.offset, true);
    dv.setUint32(at + 12, cap.length, true);
    if (cap.extra !== undefined) dv.setUint32(at + 16, cap.extra, true); // notify_off_multiplier / pci_cfg_data
    if (cap.type === PciCapType.PCI_CFG) pciCfgCap = at;
    at = next;
  });
  return { bytes, pciCfgCap };
}
