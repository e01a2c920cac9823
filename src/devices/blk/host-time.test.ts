/** The device's host-time counters split as the disk table reads them (mocked clock, no timing). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { BlkConfigOffset } from './config.ts';
import { blkDevice } from './index.ts';
import { VirtioBlkStatus as S } from './spec.ts';
import { BlkHarness } from './testing.ts';

afterEach(() => vi.restoreAllMocks());

/** A memory disk whose writes take 2 ms and flushes 5 ms of the mocked clock. */
function slowDisk(clock: { now: number }) {
  const disk = new MemoryBlockBackend(1 << 20);
  const write = disk.write.bind(disk);
  const flush = disk.flush.bind(disk);
  disk.write = (offset, src) => ((clock.now += 2), write(offset, src));
  disk.flush = () => ((clock.now += 5), flush());
  return disk;
}

describe('virtio-blk host time', () => {
  it('flushMs holds the FLUSH requests’ time, a part of hostMs; writes count in hostMs only', () => {
    const clock = { now: 0 };
    vi.spyOn(performance, 'now').mockImplementation(() => clock.now);
    const h = BlkHarness.create({ backend: slowDisk(clock) });
    expect(h.write(0, new Uint8Array(4096).fill(1))).toBe(S.VIRTIO_BLK_S_OK);
    expect(h.device.stats.hostMs).toBe(2);
    expect(h.device.stats.flushMs).toBe(0);
    expect(h.flush()).toBe(S.VIRTIO_BLK_S_OK);
    expect(h.device.stats.flushMs).toBe(5);
    expect(h.device.stats.hostMs).toBe(7);
    const record = blkDevice.stats!(h.device);
    expect(record.flushMs).toBe(5);
    expect(record.mediumMs).toBe(0); // a memory disk does not measure its medium
  });

  it('write-through: the flush the device adds after a pass of writes counts in flushMs', () => {
    const clock = { now: 0 };
    vi.spyOn(performance, 'now').mockImplementation(() => clock.now);
    const h = BlkHarness.create({ backend: slowDisk(clock) });
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
    const before = h.device.stats.flushMs;
    expect(h.write(8, new Uint8Array(4096).fill(2))).toBe(S.VIRTIO_BLK_S_OK);
    expect(h.device.stats.flushMs - before).toBe(5);
    expect(h.device.stats.hostMs).toBeGreaterThanOrEqual(h.device.stats.flushMs + 2);
  });
});
