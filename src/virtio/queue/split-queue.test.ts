import { describe, expect, it } from 'vitest';
import {
  DeviceStatus,
  Feature,
  IsrBit,
  VIRTQ_DESC_F_INDIRECT as INDIRECT,
  VIRTQ_DESC_F_NEXT as NEXT,
  VIRTQ_DESC_F_WRITE as WRITE,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_USED_F_NO_NOTIFY,
  features,
} from '../constants.ts';
import { ArrayMemory } from '../testing/array-memory.ts';
import type { DriverMock, DriverQueue } from '../testing/driver-mock.ts';
import { ALL_RING_FEATURES as ALL, NO_EVENT_IDX, loopbackQueue as setup } from '../testing/loopback-driver.ts';
import { gatherReadable, scatterWritable } from './descriptor-chain.ts';
import { VirtqueueError } from './errors.ts';
import { SplitQueue } from './split-queue.ts';
import { LoopbackDevice } from '../testing/loopback-device.ts';
import { DriverMock as Driver } from '../testing/driver-mock.ts';
import { MAX_CHAIN_BYTES, maxDescriptorReadsPerChain, maxDescriptorReadsPerKick } from '../budget.ts';


describe('SplitQueue: normal operation', () => {
  it('pops a chain with readable and writable regions and pushes it used', () => {
    const { device, t, q } = setup();
    const sub = q.add({ readable: [Uint8Array.of(1, 2), Uint8Array.of(3)], writable: [2, 4] });
    expect(q.kick()).toBe(true);
    const [chain] = device.popped.map((p) => p.chain);
    expect(chain.headIndex).toBe(sub.head);
    expect(chain.readableLength).toBe(3);
    expect(chain.writableLength).toBe(6);
    expect(chain.writable).toEqual(sub.writable);
    expect(q.used()).toEqual([{ head: sub.head, len: 3, data: Uint8Array.of(1, 2, 3) }]);
    expect(t.errors).toEqual([]);
  });

  it('gathers and scatters across regions, reporting each write', () => {
    const memory = new ArrayMemory(256);
    const chain = {
      headIndex: 0,
      indirect: false,
      readable: [{ addr: 10, len: 2 }, { addr: 20, len: 3 }],
      writable: [{ addr: 100, len: 1 }, { addr: 110, len: 4 }],
      readableLength: 5,
      writableLength: 5,
    };
    memory.bytes.set([1, 2], 10);
    memory.bytes.set([3, 4, 5], 20);
    expect([...gatherReadable(memory, chain)]).toEqual([1, 2, 3, 4, 5]);
    expect([...gatherReadable(memory, chain, 3)]).toEqual([1, 2, 3]);
    expect(scatterWritable(memory, chain, Uint8Array.of(9, 8, 7), 0)).toBe(3);
    expect([memory.bytes[100], ...memory.bytes.subarray(110, 112)]).toEqual([9, 8, 7]);
    expect(scatterWritable(memory, chain, Uint8Array.of(6, 6, 6, 6), 3)).toBe(2);
    expect(memory.writtenNotices.map((w) => [w.addr, w.len])).toEqual([[100, 1], [110, 2], [112, 2]]);
  });

  it('wraps the 16-bit indices near 65535', () => {
    const { t, q, device } = setup({ size: 4, startIdx: 65533 });
    const heads: number[] = [];
    for (let round = 0; round < 5; round++) {
      const subs = [q.add({ writable: [4] }), q.add({ readable: [Uint8Array.of(round)], writable: [1] })];
      q.kick();
      const used = q.used();
      expect(used.map((u) => u.head).sort()).toEqual(subs.map((s) => s.head).sort());
      heads.push(...used.map((u) => u.head));
    }
    expect(q.usedIdx).toBe((65533 + 10) & 0xffff);
    expect(t.fn.queue(0)!.state()).toMatchObject({ lastAvailIdx: 7, usedIdx: 7, inFlight: 0 });
    expect(device.popped).toHaveLength(10);
    expect(t.errors).toEqual([]);
  });

  it('follows indirect tables', () => {
    const { device, q, t } = setup();
    const sub = q.add({ readable: [Uint8Array.of(5, 6, 7)], writable: [1, 1, 1], indirect: true });
    q.kick();
    expect(device.popped[0].chain).toMatchObject({ indirect: true, readableLength: 3, writableLength: 3 });
    expect(q.used()).toEqual([{ head: sub.head, len: 3, data: Uint8Array.of(5, 6, 7) }]);
    expect(q.freeDescriptors).toBe(8);
    expect(t.errors).toEqual([]);
  });

  it('completes out of order', () => {
    const { device, q } = setup({ held: true });
    const a = q.add({ writable: [1] });
    const b = q.add({ writable: [1] });
    q.kick();
    device.complete((h) => h.chain.headIndex === b.head);
    device.complete();
    expect(q.used().map((u) => u.head)).toEqual([b.head, a.head]);
  });

  it('refuses device bugs in pushUsed', () => {
    const memory = new ArrayMemory(0x4000);
    const queue = new SplitQueue(memory, {
      index: 0, size: 4, descTable: 0x1000, availRing: 0x2000, usedRing: 0x3000, eventIdx: false, indirectDesc: false,
    });
    expect(() => queue.pushUsed(0, 0)).toThrow(/not in flight/);
    memory.writeU32(0x1008, 8); // desc 0: addr 0, len 8, writable
    memory.writeU16(0x100c, WRITE);
    memory.writeU16(0x2002, 1); // avail idx 1, ring[0] = 0
    expect(queue.pop()?.writableLength).toBe(8);
    expect(() => queue.pushUsed(0, 9)).toThrow(/holds 8 writable bytes/);
    queue.pushUsed(0, 8);
    expect(() => queue.pushUsed(0, 8)).toThrow(/not in flight/);
  });
});

describe('SplitQueue: notification and interrupt suppression', () => {
  it('EVENT_IDX: interrupts only when used idx passes used_event', () => {
    const { device, t, q } = setup({ held: true });
    for (let i = 0; i < 3; i++) q.add({ writable: [1] });
    q.kick();
    q.setUsedEvent(q.lastUsedIdx + 2); // "interrupt me after the third completion"
    const raisesBefore = t.irq.raises;
    const [first, second] = device.held;
    device.complete((h) => h === first);
    device.complete((h) => h === second);
    expect(t.irq.raises).toBe(raisesBefore);
    device.complete();
    expect(t.irq.raises).toBe(raisesBefore + 1);
    expect(t.readIsr()).toBe(IsrBit.QUEUE);
  });

  it('EVENT_IDX: avail_event suppresses kicks while the device is not asking', () => {
    const { t, q, device } = setup({ held: true });
    q.add({ writable: [1] });
    expect(q.kick()).toBe(true); // device published avail_event = 0 at start
    expect(q.availEvent).toBe(1); // ...and after draining asks for a kick at index 1
    q.add({ writable: [1] });
    expect(q.kick()).toBe(true);
    const queue = t.fn.queue(0)!;
    queue.disableNotifications();
    q.add({ writable: [1] });
    expect(q.kick()).toBe(true); // event 2 = old idx 2: still crossed once
    q.add({ writable: [1] });
    expect(q.kick()).toBe(false); // avail_event stays behind while disabled
    expect(device.popped).toHaveLength(3);
    expect(queue.enableNotifications()).toBe(true); // a chain is pending: caller must poll
    expect(queue.pop()).not.toBeNull();
  });

  it('NO_NOTIFY without EVENT_IDX', () => {
    const { t, q } = setup({ features: NO_EVENT_IDX, held: true });
    const queue = t.fn.queue(0)!;
    queue.disableNotifications();
    expect(q.usedFlags).toBe(VRING_USED_F_NO_NOTIFY);
    q.add({ writable: [1] });
    expect(q.kick()).toBe(false);
    expect(queue.enableNotifications()).toBe(true);
    expect(q.usedFlags).toBe(0);
    q.add({ writable: [1] });
    expect(q.kick()).toBe(true);
  });

  it('NO_INTERRUPT without EVENT_IDX', () => {
    const { t, q } = setup({ features: NO_EVENT_IDX });
    q.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    q.add({ writable: [1] });
    q.kick();
    expect(q.used()).toHaveLength(1);
    expect(t.irq.level).toBe(false);
    q.setAvailFlags(0);
    q.add({ writable: [1] });
    q.kick();
    expect(t.irq.level).toBe(true);
    expect(t.readIsr()).toBe(IsrBit.QUEUE);
    expect(t.irq.level).toBe(false);
  });

  it('does not interrupt when nothing new was used', () => {
    const { t, q } = setup({ features: NO_EVENT_IDX });
    q.add({ writable: [1] });
    q.kick();
    t.readIsr();
    expect(t.fn.queue(0)!.needsInterrupt()).toBe(false);
  });
});

/** A raw descriptor write into the ring's table (or any table). */
function desc(t: DriverMock, table: number, i: number, d: { addr: number; len: number; flags: number; next?: number; hi?: number }) {
  const at = table + 16 * i;
  t.memory.writeU32(at, d.addr);
  t.memory.writeU32(at + 4, d.hi ?? 0);
  t.memory.writeU32(at + 8, d.len);
  t.memory.writeU16(at + 12, d.flags);
  t.memory.writeU16(at + 14, d.next ?? 0);
}

const BUF = 0x8000; // inside the 64 KiB test RAM
const TABLE = 0x9000;

type Case = [name: string, reason: string, build: (t: DriverMock, q: DriverQueue) => void, features?: bigint];
const malformed: Case[] = [
  ['head ≥ queue size', 'avail ring[0]: head 8 ≥ queue size 8', (_t, q) => q.publish(8)],
  ['next ≥ queue size', 'descriptor 0: next 9 ≥ queue size 8', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: BUF, len: 4, flags: NEXT, next: 9 });
    q.publish(0);
  }],
  ['buffer beyond RAM', 'descriptor 0: buffer [0xfff0, +32) is outside guest RAM (0x10000 bytes)', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: 0xfff0, len: 32, flags: WRITE });
    q.publish(0);
  }],
  ['buffer wrapping past 4 GiB', 'descriptor 0: buffer [0xfffffff0, +4294967295) is outside guest RAM', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: 0xfffffff0, len: 0xffffffff, flags: 0 });
    q.publish(0);
  }],
  ['high 32 bits of the address', 'descriptor 0: address 0x1_00008000 is beyond 4 GiB', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: BUF, hi: 1, len: 4, flags: 0 });
    q.publish(0);
  }],
  ['loop', 'chain from head 0 has more than 8 descriptors in the queue (loop?)', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: BUF, len: 4, flags: NEXT, next: 1 });
    desc(t, q.addr.desc, 1, { addr: BUF, len: 4, flags: NEXT, next: 0 });
    q.publish(0);
  }],
  ['readable after writable', 'descriptor 1: driver-readable descriptor after a writable one', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: BUF, len: 4, flags: WRITE | NEXT, next: 1 });
    desc(t, q.addr.desc, 1, { addr: BUF, len: 4, flags: 0 });
    q.publish(0);
  }],
  ['avail idx too far ahead', 'avail idx 9 is 9 entries ahead of last seen 0 (queue size 8)', (t, q) => {
    t.memory.writeU16(q.addr.avail + 2, 9);
  }],
  ['indirect length not a multiple of 16', 'descriptor 0: indirect table length 20 is not a nonzero multiple of 16', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 20, flags: INDIRECT });
    q.publish(0);
  }],
  ['indirect length 0', 'descriptor 0: indirect table length 0 is not', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 0, flags: INDIRECT });
    q.publish(0);
  }],
  ['indirect with NEXT', 'descriptor 0: INDIRECT together with NEXT', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 16, flags: INDIRECT | NEXT, next: 1 });
    q.publish(0);
  }],
  ['indirect table beyond RAM', 'descriptor 0: buffer [0xfff0, +32) is outside guest RAM', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: 0xfff0, len: 32, flags: INDIRECT });
    q.publish(0);
  }],
  ['nested indirect', 'indirect descriptor 0 (chain head 0): nested INDIRECT inside an indirect table', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 16, flags: INDIRECT });
    desc(t, TABLE, 0, { addr: TABLE + 0x100, len: 16, flags: INDIRECT });
    q.publish(0);
  }],
  ['NEXT outside the indirect table', 'indirect descriptor 0 (chain head 0): next 2 ≥ indirect table size 2', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 32, flags: INDIRECT });
    desc(t, TABLE, 0, { addr: BUF, len: 4, flags: NEXT, next: 2 });
    q.publish(0);
  }],
  ['loop inside an indirect table', 'chain from head 0 has more than 2 descriptors in its indirect table (loop?)', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 32, flags: INDIRECT });
    desc(t, TABLE, 0, { addr: BUF, len: 4, flags: NEXT, next: 1 });
    desc(t, TABLE, 1, { addr: BUF, len: 4, flags: NEXT, next: 0 });
    q.publish(0);
  }],
  ['indirect buffer beyond RAM', 'indirect descriptor 1 (chain head 0): buffer [0x10000, +1) is outside guest RAM', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 32, flags: INDIRECT });
    desc(t, TABLE, 0, { addr: BUF, len: 4, flags: NEXT, next: 1 });
    desc(t, TABLE, 1, { addr: 0x10000, len: 1, flags: WRITE });
    q.publish(0);
  }],
  ['indirect table longer than the queue size', 'descriptor 0: indirect table of 9 descriptors is longer than the queue size 8', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 16 * 9, flags: INDIRECT });
    for (let k = 0; k < 9; k++) desc(t, TABLE, k, { addr: BUF, len: 4, flags: k < 8 ? NEXT : 0, next: k + 1 });
    q.publish(0);
  }],
  ['direct + indirect descriptors longer than the queue size', 'chain from head 0 is longer than the queue size 8', (t, q) => {
    // 3 direct buffers, then a table of 6: 9 buffers in one chain (each part alone is legal).
    for (let k = 0; k < 3; k++) desc(t, q.addr.desc, k, { addr: BUF, len: 4, flags: NEXT, next: k + 1 });
    desc(t, q.addr.desc, 3, { addr: TABLE, len: 16 * 6, flags: INDIRECT });
    for (let k = 0; k < 6; k++) desc(t, TABLE, k, { addr: BUF, len: 4, flags: k < 5 ? NEXT : 0, next: k + 1 });
    q.publish(0);
  }],
  ['indirect without the feature', 'descriptor 0: INDIRECT but VIRTIO_F_RING_INDIRECT_DESC not negotiated', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: TABLE, len: 16, flags: INDIRECT });
    q.publish(0);
  }, features(Feature.VIRTIO_F_VERSION_1)],
  ['a head made available twice while in flight', 'avail ring[1]: head 0 is already in flight', (t, q) => {
    desc(t, q.addr.desc, 0, { addr: BUF, len: 4, flags: WRITE });
    q.publish(0);
    q.publish(0);
  }],
];

describe('SplitQueue: malformed rings → DEVICE_NEEDS_RESET, never a throw or a stray access', () => {
  it.each(malformed)('%s', (_name, reason, build, feats) => {
    const { t, q, device } = setup({ features: feats, held: true });
    build(t, q);
    expect(() => q.notify()).not.toThrow();
    expect(t.errors).toHaveLength(1);
    expect(t.errors[0].startsWith(`queue 0: ${reason}`), t.errors[0]).toBe(true);
    expect(t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(t.fn.isrStatus & IsrBit.CONFIG).toBeTruthy();
    expect(t.irq.level).toBe(true);
    expect(t.memory.rejected).toEqual([]);
    const popped = device.popped.length;
    // The queue is stopped: further kicks do nothing, and a reset brings the device back.
    q.add({ writable: [1] });
    q.notify();
    expect(device.popped.length).toBe(popped);
    expect(t.fn.queue(0)!.broken).toBeInstanceOf(VirtqueueError);
    const [fresh] = t.init({ features: feats ?? ALL });
    device.autoComplete = true;
    fresh.add({ writable: [2] });
    fresh.kick();
    expect(fresh.used()).toHaveLength(1);
    expect(t.errors).toHaveLength(1);
  });
});

describe('SplitQueue: ring placement is validated at queue_enable', () => {
  const base = { index: 0, size: 8, descTable: 0x1000, availRing: 0x2000, usedRing: 0x3000, eventIdx: true, indirectDesc: true };
  it.each([
    [{ descTable: 0x1008 }, 'descriptor table at 0x1008 is not 16-byte aligned'],
    [{ availRing: 0x2001 }, 'avail ring at 0x2001 is not 2-byte aligned'],
    [{ usedRing: 0x3002 }, 'used ring at 0x3002 is not 4-byte aligned'],
    [{ usedRing: 0x3fc0 }, 'used ring [0x3fc0, +70) is outside guest RAM (0x4000 bytes)'],
    [{ descTable: 2 ** 32 + 0x1000 }, 'descriptor table [0x100001000, +128) is outside guest RAM'],
    [{ size: 6 }, 'queue size 6 is not a power of 2'],
    [{ size: 65536 }, 'queue size 65536 is not a power of 2 ≤ 32768'],
  ])('%o', (patch, reason) => {
    expect(() => new SplitQueue(new ArrayMemory(0x4000), { ...base, ...patch })).toThrow(reason);
  });
});

/** A held loopback queue of `size` on `memorySize` bytes: the walk alone, no buffer copied. */
function budgetSetup(size: number, memorySize: number) {
  const device = new LoopbackDevice({ maxQueueSize: size, autoComplete: false });
  const t = Driver.create(device, { memorySize });
  const [q] = t.init({ features: ALL });
  return { device, t, q, queue: t.fn.queue(0)! };
}

describe('SplitQueue: the work budget of one kick (virtio/budget.ts)', () => {
  it('refuses a 64 MiB indirect table (4M descriptors) after one descriptor read, not a walk', () => {
    const { t, q, queue, device } = budgetSetup(256, 128 << 20);
    q.addHugeIndirect((64 << 20) / 16, 0x2000, 16);
    const before = t.memory.work.accesses;
    q.notify();
    expect(t.errors).toEqual(['queue 0: descriptor 0: indirect table of 4194304 descriptors is longer than the queue size 256']);
    expect(t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(queue.descriptorsVisited).toBeLessThanOrEqual(maxDescriptorReadsPerChain(256));
    expect(queue.regionsAllocated).toBe(0);
    expect(t.memory.work.accesses - before).toBeLessThan(64);
    expect(device.popped).toHaveLength(0);
  });

  it('refuses many chains sharing one over-long indirect table at the first of them', () => {
    const { t, q, queue } = budgetSetup(64, 1 << 20);
    const table = q.writeTable(Array.from({ length: 128 }, () => ({ addr: 0x2000, len: 512 })));
    expect(q.addSharedIndirect(table, 128, 64)).toHaveLength(64);
    q.notify();
    expect(t.errors).toEqual(['queue 0: descriptor 0: indirect table of 128 descriptors is longer than the queue size 64']);
    expect(queue.descriptorsVisited).toBe(1);
  });

  it('takes a legitimate maximum chain: queue-size descriptors in an indirect table, or in the ring', () => {
    const { t, q, queue, device } = budgetSetup(256, 1 << 20);
    q.addLong(0, 256, 0x2000, 512);
    q.notify();
    q.addLong(254, 2, 0x2000, 512);
    q.notify();
    expect(t.errors).toEqual([]);
    expect(device.popped.map((p) => [p.chain.readable.length, p.chain.readableLength])).toEqual([[256, 256 * 512], [256, 256 * 512]]);
    expect(queue.descriptorsVisited).toBe(257 + 257);
    expect(queue.regionsAllocated).toBe(512);
    // Every head back to the driver: a direct chain of the full queue size fits too.
    device.complete();
    q.used();
    q.addLong(256, 0, 0x2000, 1);
    q.notify();
    expect(t.errors).toEqual([]);
    expect(device.popped.at(-1)!.chain.readable).toHaveLength(256);
  });

  it.each([
    ['an indirect table one longer than the queue size', 0, 257, 'descriptor 0: indirect table of 257 descriptors is longer than the queue size 256'],
    ['direct and indirect together one longer', 100, 157, 'chain from head 0 is longer than the queue size 256 (direct and indirect descriptors together)'],
  ])('refuses a chain of one descriptor over the maximum: %s', (_name, direct, indirect, reason) => {
    const { t, q, device } = budgetSetup(256, 1 << 20);
    q.addLong(direct, indirect, 0x2000, 512);
    q.notify();
    expect(t.errors).toEqual([`queue 0: ${reason}`]);
    expect(device.popped).toHaveLength(0);
  });

  it('refuses a chain of aliased buffers that passes 2^32 - 1 bytes in total (§2.7.5.2), and takes one just under', () => {
    const ram = 16 << 20;
    const { t, q, device } = budgetSetup(256, ram);
    // 255 × 16 MiB + (16 MiB − 1) = 2^32 − 1: legal, and what the walk adds up exactly.
    const table = q.writeTable([...Array.from({ length: 255 }, () => ({ addr: 0, len: ram })), { addr: 0, len: ram - 1, write: true }]);
    q.addIndirectAt(table, 256);
    q.notify();
    expect(t.errors).toEqual([]);
    expect(device.popped[0].chain.readableLength + device.popped[0].chain.writableLength).toBe(MAX_CHAIN_BYTES);
    // Half readable, half writable, 16 MiB each: 2^32 bytes, one too many.
    q.addAliased({ count: 256, addr: 0, len: ram, readable: 128, indirect: true });
    q.notify();
    expect(t.errors).toEqual([`queue 0: indirect descriptor 255 (chain head 1): chain from head 1 passes ${MAX_CHAIN_BYTES} bytes in total`]);
    expect(device.popped).toHaveLength(1);
  });

  it('keeps a kick of queue-size chains of queue-size descriptors within size × (size + 1) reads', () => {
    const { t, q, queue, device } = budgetSetup(64, 1 << 20);
    const table = q.writeTable(Array.from({ length: 64 }, (_, k) => ({ addr: 0x2000, len: 64, write: k >= 32 })));
    q.addSharedIndirect(table, 64, 64);
    const before = t.memory.work.accesses;
    q.notify();
    expect(t.errors).toEqual([]);
    expect(device.popped).toHaveLength(64);
    expect(queue.descriptorsVisited).toBe(64 * 65);
    expect(queue.descriptorsVisited).toBeLessThanOrEqual(maxDescriptorReadsPerKick(64));
    expect(queue.regionsAllocated).toBe(64 * 64);
    expect(t.memory.work.accesses - before).toBeLessThan(6 * 64 * 65 + 8 * 64);
  });
});
