import { describe, expect, it } from 'vitest';
import { DeviceStatus, IsrBit } from '../../virtio/constants.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { measure } from '../../virtio/testing/work-meter.ts';
import { aliasIndirect } from '../blk/testing.ts';
import { RNG_MAX_BYTES_PER_REQUEST, VirtioRng } from './rng.ts';

describe('virtio-rng', () => {
  it('is a modern PCI function with device id 4 and one queue', () => {
    const t = DriverMock.create(new VirtioRng());
    expect(new DataView(t.fn.configSpace.buffer).getUint16(2, true)).toBe(0x1044);
    expect(t.fn.numQueues).toBe(1);
    expect(t.caps.device).toBeUndefined();
  });

  it.each([
    ['io BAR, whole-register accesses', 'io' as const, false],
    ['mem BAR, byte-split accesses (v86 MMIO)', 'mem' as const, true],
  ])('fills writable buffers with random bytes end to end (%s)', (_name, barKind, byteAccess) => {
    let counter = 0;
    const rng = new VirtioRng((buf) => buf.forEach((_, i) => (buf[i] = counter++ & 0xff)));
    const t = DriverMock.create(rng, { byteAccess, pci: { barKind } });
    const [q] = t.init();
    const a = q.add({ writable: [16] });
    const b = q.add({ writable: [3, 5], indirect: true });
    expect(q.kick()).toBe(true);
    const used = q.used();
    expect(used.map((u) => [u.head, u.len])).toEqual([
      [a.head, 16],
      [b.head, 8],
    ]);
    expect([...used[0].data]).toEqual([...Array(16).keys()]);
    expect([...used[1].data]).toEqual([...Array(8).keys()].map((i) => 16 + i));
    expect(t.readIsr()).toBe(IsrBit.QUEUE);
    expect(rng.bytesServed).toBe(24);
    expect(t.errors).toEqual([]);
    expect(t.memory.rejected).toEqual([]);
  });

  it('uses crypto.getRandomValues, capped per request', () => {
    const t = DriverMock.create(new VirtioRng(), { memorySize: 4 << 20 });
    const [q] = t.init();
    q.add({ writable: [70000, 70000] });
    q.add({ writable: [32] });
    q.kick();
    const [big, small] = q.used();
    expect(big.len).toBe(RNG_MAX_BYTES_PER_REQUEST);
    expect(small.len).toBe(32);
    expect(new Set(big.data).size).toBeGreaterThan(200); // random, not a constant fill
  });

  it('fills at most 4 KiB of a 2.5 GiB aliased buffer and returns that length (§5.4.6.1)', () => {
    let asked = 0;
    const rng = new VirtioRng((buf) => {
      asked += buf.length;
      buf.fill(0xab);
    });
    const t = DriverMock.create(rng, { memorySize: 64 << 20 });
    const [q] = t.init();
    const region = t.buffers.alloc(40 << 20);
    t.memory.bytes.fill(0x11, region, region + (40 << 20));
    // 64 descriptors (the queue size) naming the same 40 MiB: 2.5 GiB of writable buffer.
    const sub = q.add({ writable: Array.from({ length: 64 }, () => 16), indirect: true });
    aliasIndirect(q, sub, [...Array(64).keys()], region, 40 << 20);
    const work = measure(t.memory, () => q.kick());
    const [used] = q.used();
    expect(used.len).toBe(4096);
    expect(asked).toBe(4096);
    expect(t.memory.bytes[region + 4095]).toBe(0xab);
    expect(t.memory.bytes[region + 4096]).toBe(0x11);
    expect(work.bytes).toBeLessThan(2 * 4096 + 4096); // the fill + its written notice + the ring
    expect(t.errors).toEqual([]);
  });

  it('survives a guest that hands it a broken ring', () => {
    const t = DriverMock.create(new VirtioRng());
    const [q] = t.init();
    q.publish(200); // head ≥ queue size 64
    expect(() => q.notify()).not.toThrow();
    expect(t.errors).toEqual(['queue 0: avail ring[0]: head 200 ≥ queue size 64']);
    expect(t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
    const [fresh] = t.init();
    fresh.add({ writable: [8] });
    fresh.kick();
    expect(fresh.used()[0].len).toBe(8);
  });
});
