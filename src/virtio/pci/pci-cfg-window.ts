/**
 * The VIRTIO_PCI_CAP_PCI_CFG capability's window (§4.1.4.9): BAR0 reached through PCI config
 * space. The driver writes cap.bar, cap.offset and cap.length (the fields it may write,
 * with pci_cfg_data); an access to pci_cfg_data then becomes one BAR access of cap.length bytes
 * at cap.offset (§4.1.4.9.1), through the same boundary as a direct access (side effects
 * included: reading ISR this way clears it).
 *
 * The spec only forbids the driver other settings (§4.1.4.9.2: an aligned 1/2/4-byte access
 * inside a region another virtio capability names). We refuse them: no BAR access at all,
 * and a read leaves pci_cfg_data reading 0, so a stale value cannot pass for an answer.
 */
import type { AccessWidth, PciBar } from '../bus.ts';
import { VirtioPciCap } from './config-header.ts';

export interface WindowRegion {
  readonly offset: number;
  readonly length: number;
}

export class PciCfgWindow {
  /** Window accesses refused because cap.bar/offset/length named no valid access. */
  rejected = 0;
  private readonly dv: DataView;

  /**
   * @param config the function's 256-byte config space (the window's fields live there);
   * @param at where the capability starts;
   * @param regions BAR0 ranges named by the other virtio capabilities.
   */
  constructor(
    private readonly config: Uint8Array,
    readonly at: number,
    private readonly bar0: PciBar,
    private readonly regions: readonly WindowRegion[],
  ) {
    this.dv = new DataView(config.buffer, config.byteOffset, config.byteLength);
  }

  /** cap.bar, cap.offset, cap.length and pci_cfg_data are read-write for the driver (§4.1.4.9). */
  writable(offset: number): boolean {
    const rel = offset - this.at;
    return (
      rel === VirtioPciCap.BAR ||
      (rel >= VirtioPciCap.OFFSET && rel < VirtioPciCap.LENGTH + 4) ||
      (rel >= VirtioPciCap.PCI_CFG_DATA && rel < VirtioPciCap.PCI_CFG_DATA + 4)
    );
  }

  /** Whether config bytes [offset, offset+width) touch pci_cfg_data. */
  touchesData(offset: number, width: number): boolean {
    const data = this.at + VirtioPciCap.PCI_CFG_DATA;
    return offset < data + 4 && offset + width > data;
  }

  /** A driver read reached pci_cfg_data: read BAR0 into it first (§4.1.4.9.1). */
  load(): void {
    const target = this.target();
    const data = this.at + VirtioPciCap.PCI_CFG_DATA;
    if (!target) {
      this.rejected++;
      this.dv.setUint32(data, 0, true);
      return;
    }
    const value = this.bar0.read(target.offset, target.length);
    for (let i = 0; i < target.length; i++) this.config[data + i] = (value >>> (8 * i)) & 0xff;
  }

  /** A driver write reached pci_cfg_data: write its first cap.length bytes to BAR0 (§4.1.4.9.1). */
  store(): void {
    const target = this.target();
    if (!target) {
      this.rejected++;
      return;
    }
    const data = this.at + VirtioPciCap.PCI_CFG_DATA;
    let value = 0;
    for (let i = target.length - 1; i >= 0; i--) value = value * 256 + this.config[data + i];
    this.bar0.write(target.offset, target.length, value);
  }

  /** The access the driver's settings name, if §4.1.4.9.2 allows it. */
  private target(): { offset: number; length: AccessWidth } | undefined {
    const bar = this.config[this.at + VirtioPciCap.BAR];
    const offset = this.dv.getUint32(this.at + VirtioPciCap.OFFSET, true);
    const length = this.dv.getUint32(this.at + VirtioPciCap.LENGTH, true);
    if (bar !== 0 || (length !== 1 && length !== 2 && length !== 4) || offset % length !== 0) return undefined;
    const inside = this.regions.some((r) => offset >= r.offset && offset + length <= r.offset + r.length);
    return inside ? { offset, length } : undefined;
  }
}
