import type { InterruptLine } from '../bus.ts';

/** An INTx line that remembers its level and how often it was raised/lowered. */
export class TestIrq implements InterruptLine {
  level = false;
  raises = 0;
  lowers = 0;
  raise(): void {
    this.level = true;
    this.raises++;
  }
  lower(): void {
    this.level = false;
    this.lowers++;
  }
}
