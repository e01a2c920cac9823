/**
 * struct virtio_console_config (§5.3.4) as bytes in a ConfigSpace. Read-only to the driver:
 * emerg_wr exists only with VIRTIO_CONSOLE_F_EMERG_WRITE, which we do not offer.
 */
import { ConfigSpace } from '../../virtio/config-space.ts';

export const ConsoleConfigOffset = {
  COLS: 0, // le16
  ROWS: 2, // le16
  MAX_NR_PORTS: 4, // le32
  EMERG_WR: 8, // le32
} as const;

export const CONSOLE_CONFIG_SIZE = 12;

export class ConsoleConfig {
  readonly space = new ConfigSpace(CONSOLE_CONFIG_SIZE);

  constructor(cols: number, rows: number, maxNrPorts: number) {
    this.space.setU16(ConsoleConfigOffset.COLS, cols);
    this.space.setU16(ConsoleConfigOffset.ROWS, rows);
    this.space.setU32(ConsoleConfigOffset.MAX_NR_PORTS, maxNrPorts);
  }

  get cols(): number {
    return this.space.getU16(ConsoleConfigOffset.COLS);
  }
  get rows(): number {
    return this.space.getU16(ConsoleConfigOffset.ROWS);
  }
  get maxNrPorts(): number {
    return this.space.getU32(ConsoleConfigOffset.MAX_NR_PORTS);
  }
}
