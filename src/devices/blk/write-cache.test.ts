/** virtio-blk over the write-back cache: what the guest's cache mode promises, and snapshots. */
import { describe, expect, it } from 'vitest';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { WriteBackCache, type CacheTimer } from '../../backends/write-back-cache.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { BlkConfigOffset } from './config.ts';
import { VirtioBlk } from './blk.ts';
import { blkDevice } from './index.ts';
import { VirtioBlkReqType as T, VirtioBlkStatus as S } from './spec.ts';
import { BlkHarness, outhdr } from './testing.ts';

const pattern = (len: number, seed: number) => Uint8Array.from({ length: len }, (_, i) => (i + seed * 13) & 0xff);
const noTimer: CacheTimer = () => () => undefined;

function cached(fault?: MemoryBlockBackend['fault']) {
  const medium = new MemoryBlockBackend(1 << 20, { trackDurability: true, coalesceRequests: true, fault });
  const cache = new WriteBackCache(medium, { timer: noTimer });
  return { medium, cache, h: BlkHarness.create({ backend: cache }) };
}

describe('virtio-blk over the write cache', () => {
  it('write-back: a write completes before the medium sees it; FLUSH completes only once it is durable', () => {
    const { medium, cache, h } = cached();
    expect(h.device.writeback).toBe(true);
    expect(h.write(8, pattern(4096, 1))).toBe(S.VIRTIO_BLK_S_OK);
    expect(medium.counts.write).toBe(0);
    expect(cache.cachedWriteBytes).toBe(4096);
    expect(h.read(8, 4096).data).toEqual(pattern(4096, 1)); // the guest reads its own write back
    expect(h.flush()).toBe(S.VIRTIO_BLK_S_OK);
    expect(medium.durable!.subarray(4096, 8192)).toEqual(pattern(4096, 1));
    expect(cache.cachedWriteBytes).toBe(0);
  });

  it('FLUSH in a batch covers the writes before it, not those after', () => {
    const { medium, h } = cached();
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 0), pattern(4096, 1)], writable: [1] });
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    h.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 8), pattern(4096, 2)], writable: [1] });
    h.kick();
    expect(medium.durable!.subarray(0, 4096)).toEqual(pattern(4096, 1));
    expect(medium.bytes.subarray(4096, 8192)).toEqual(new Uint8Array(4096)); // still cached
  });

  it('write-through (writeback byte 0): every completed write is already durable', () => {
    const { medium, cache, h } = cached();
    h.write(0, pattern(4096, 3));
    h.driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0); // leaving write-back empties the cache
    expect(cache.cachedWriteBytes).toBe(0);
    expect(medium.durable!.subarray(0, 4096)).toEqual(pattern(4096, 3));
    for (let i = 1; i <= 4; i++) {
      expect(h.write(i * 8, pattern(4096, 3 + i))).toBe(S.VIRTIO_BLK_S_OK);
      expect(medium.durable!.subarray(i * 4096, (i + 1) * 4096)).toEqual(pattern(4096, 3 + i));
      expect(cache.cachedWriteBytes).toBe(0);
    }
  });

  it('a write-out that fails turns FLUSH into IOERR and tells the host; the data stays cached', () => {
    let full = false;
    const { cache, h } = cached((op) => (op === 'write' && full ? 'quota' : undefined));
    expect(h.write(0, pattern(4096, 1))).toBe(S.VIRTIO_BLK_S_OK);
    full = true;
    expect(h.flush()).toBe(S.VIRTIO_BLK_S_IOERR);
    expect(h.backendErrors.map((e) => e.kind)).toEqual(['quota']);
    expect(cache.cachedWriteBytes).toBe(4096);
    full = false;
    expect(h.flush()).toBe(S.VIRTIO_BLK_S_OK);
    expect(cache.cachedWriteBytes).toBe(0);
  });

  it('quiesce() leaves the cache empty and the medium durable; a state cannot be saved before', async () => {
    const medium = new MemoryBlockBackend(1 << 20, { trackDurability: true, coalesceRequests: true });
    const cache = new WriteBackCache(medium, { timer: noTimer });
    const t = DriverMock.create(new VirtioBlk({ backend: cache, serial: 'disk', queueSize: 16 }), { pci: { deviceState: blkDevice.state } });
    const [q] = t.initRings();
    q!.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 16), pattern(4096, 5)], writable: [1] });
    q!.kick();
    expect(q!.used()).toHaveLength(1);
    expect(() => t.fn.saveState()).toThrow(/not quiesced \(4096 bytes of completed writes in the write cache\)/);
    await t.fn.quiesce();
    expect(cache.cachedWriteBytes).toBe(0);
    expect(medium.durable!.subarray(8192, 12288)).toEqual(pattern(4096, 5));
    expect(() => t.fn.saveState()).not.toThrow();
  });

  it('quiesce() fails, and the state stays unsaved, when the cache cannot be written out', async () => {
    let broken = false;
    const medium = new MemoryBlockBackend(1 << 20, { coalesceRequests: true, fault: (op) => (op === 'write' && broken ? 'io' : undefined) });
    const cache = new WriteBackCache(medium, { timer: noTimer });
    const t = DriverMock.create(new VirtioBlk({ backend: cache, serial: 'disk', queueSize: 16 }), { pci: { deviceState: blkDevice.state } });
    const [q] = t.initRings();
    q!.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 0), pattern(4096, 6)], writable: [1] });
    q!.kick();
    broken = true;
    await expect(t.fn.quiesce()).rejects.toThrow(/still busy after quiesce/);
    expect(cache.cachedWriteBytes).toBe(4096);
  });
});
