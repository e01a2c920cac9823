/**
 * A driver's side of PCI configuration space for tests: the capability list walked through
 * the function's config hooks (as a guest would through 0xcf8/0xcfc), and BAR0 accessed
 * through the VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9) the way the spec tells a driver to.
 */
import type { AccessWidth, PciFunction } from '../bus.ts';
import { PCI_CAP_ID_VNDR, PciCapType, PciStatus } from '../constants.ts';
import { VirtioPciCap } from '../pci/config-header.ts';

export class PciConfigDriver {
  /** Where the PCI_CFG capability is. */
  readonly cap: number;

  constructor(readonly fn: PciFunction) {
    let found = 0;
    for (let at = this.read(0x34, 1), hops = 0; at !== 0 && hops < 48; at = this.read(at + 1, 1), hops++) {
      if (this.read(at, 1) === PCI_CAP_ID_VNDR && this.read(at + VirtioPciCap.CFG_TYPE, 1) === PciCapType.PCI_CFG) found = at;
    }
    if (!found) throw new Error('no VIRTIO_PCI_CAP_PCI_CFG capability');
    this.cap = found;
  }

  read(offset: number, width: AccessWidth): number {
    return this.fn.configRead!(offset, width);
  }

  write(offset: number, width: AccessWidth, value: number): void {
    this.fn.configWrite!(offset, width, value);
  }

  /** Point the window: cap.bar, cap.offset, cap.length. */
  aim(bar: number, offset: number, length: number): void {
    this.write(this.cap + VirtioPciCap.BAR, 1, bar);
    this.write(this.cap + VirtioPciCap.OFFSET, 4, offset);
    this.write(this.cap + VirtioPciCap.LENGTH, 4, length);
  }

  /** A BAR0 read of `length` bytes at `offset` through pci_cfg_data. */
  windowRead(offset: number, length: AccessWidth): number {
    this.aim(0, offset, length);
    const data = this.read(this.cap + VirtioPciCap.PCI_CFG_DATA, 4);
    return length === 4 ? data : data & ((1 << (8 * length)) - 1);
  }

  /** A BAR0 write of `length` bytes at `offset` through pci_cfg_data. */
  windowWrite(offset: number, length: AccessWidth, value: number): void {
    this.aim(0, offset, length);
    this.write(this.cap + VirtioPciCap.PCI_CFG_DATA, 4, value >>> 0);
  }

  /** The PCI status register's Interrupt Status bit. */
  interruptStatus(): boolean {
    return (this.read(0x06, 2) & PciStatus.INTERRUPT_STATUS) !== 0;
  }
}
