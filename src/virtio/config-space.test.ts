import { describe, expect, it } from 'vitest';
import { ConfigSpace } from './config-space.ts';

describe('ConfigSpace device-side changes', () => {
  it('tells its listener when a setter changes bytes, not when it rewrites the same value', () => {
    const space = new ConfigSpace(16);
    let changes = 0;
    space.onDeviceChange(() => changes++);
    space.setU16(0, 1);
    space.setU16(0, 1);
    space.setU8(2, 0);
    space.setU32(4, 0xffffffff);
    space.setU64(8, 5n);
    space.setU64(8, 5n);
    expect(changes).toBe(3);
  });

  it('what the device sets while handling a driver write is part of that write', () => {
    let space: ConfigSpace;
    // A device that normalises a driver-written byte (as blk does with writeback).
    space = new ConfigSpace(4, (o) => o === 0, () => space.setU8(0, space.getU8(0) ? 1 : 0));
    let changes = 0;
    space.onDeviceChange(() => changes++);
    space.write(0, 1, 7);
    expect(space.getU8(0)).toBe(1);
    expect(changes).toBe(0);
    space.setU8(0, 0);
    expect(changes).toBe(1);
  });
});
