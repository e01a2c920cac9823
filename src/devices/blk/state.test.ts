import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryBlockBackend } from '../../backends/memory-block-backend.ts';
import { BlkFeature, DeviceStatus, Feature, IsrBit, hasFeature } from '../../virtio/constants.ts';
import { CommonCfg } from '../../virtio/pci/layout.ts';
import { VirtioPciFunction } from '../../virtio/pci/virtio-pci-function.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { FunctionStateError } from '../../virtio/state/state-reader.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';
import { hex, restoreProperty, type RestoreSubject, type RestoreWorld } from '../testing/restore-property.ts';
import { VirtioBlk, type VirtioBlkOptions } from './blk.ts';
import { BlkConfigOffset } from './config.ts';
import { blkDevice } from './index.ts';
import { VirtioBlkReqType as T } from './spec.ts';
import { outhdr, pieces, segment } from './testing.ts';

const SECTORS = 64;

interface BlkWorld extends RestoreWorld {
  readonly backend: MemoryBlockBackend;
  readonly settle: () => void;
  readonly ring: RingLayout;
}

type BlkStep =
  | { kind: 'write'; sector: number; sectors: number; seed: number; split: number[]; indirect: boolean }
  | { kind: 'read'; sector: number; sectors: number; split: number[]; indirect: boolean }
  | { kind: 'flush' }
  | { kind: 'wce'; writeback: boolean }
  | { kind: 'config' };

function device(backend: MemoryBlockBackend, options: Partial<VirtioBlkOptions> = {}): VirtioBlk {
  return new VirtioBlk({ backend, serial: 'disk', queueSize: 16, ...options });
}

function blkFunction(blk: VirtioBlk, ring: RingLayout = 'split'): VirtioPciFunction {
  return new VirtioPciFunction(blk, { ring, deviceState: blkDevice.state });
}

const sectorArb = fc.integer({ min: 0, max: SECTORS + 2 }); // a few past the end: IOERR
const splitArb = fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 3 });

const blkSubject: RestoreSubject<BlkWorld, BlkStep> = {
  name: 'virtio-blk',
  queues: 1,
  optionalFeatures: [BlkFeature.VIRTIO_BLK_F_CONFIG_WCE, BlkFeature.VIRTIO_BLK_F_FLUSH],
  steps: fc.oneof(
    fc.record({ kind: fc.constant('write' as const), sector: sectorArb, sectors: fc.integer({ min: 1, max: 4 }), seed: fc.nat(255), split: splitArb, indirect: fc.boolean() }),
    fc.record({ kind: fc.constant('read' as const), sector: sectorArb, sectors: fc.integer({ min: 1, max: 4 }), split: splitArb, indirect: fc.boolean() }),
    fc.constant({ kind: 'flush' as const }),
    fc.record({ kind: fc.constant('wce' as const), writeback: fc.boolean() }),
    fc.constant({ kind: 'config' as const }),
  ),
  create(ring, drop) {
    const backend = new MemoryBlockBackend(SECTORS * 512);
    const { defer, settle } = manualDefer();
    const driver = DriverMock.create(device(backend, { defer, later: defer }), { memorySize: 1 << 20, pci: { ring, deviceState: blkDevice.state } });
    driver.initRings({ features: driver.deviceFeatures() & ~drop });
    return { driver, backend, settle, ring };
  },
  rebuild(old) {
    // The disk goes on as it was when the state was saved (the lab's image file).
    const backend = new MemoryBlockBackend(old.backend.bytes.slice());
    const { defer, settle } = manualDefer();
    return { world: { driver: old.driver, backend, settle, ring: old.ring }, fn: blkFunction(device(backend, { defer, later: defer }), old.ring) };
  },
  step({ driver }, step, log) {
    const q = driver.queues[0]!;
    const indirect = 'indirect' in step && step.indirect && hasFeature(driver.features, Feature.VIRTIO_F_RING_INDIRECT_DESC);
    switch (step.kind) {
      case 'write': {
        const data = Uint8Array.from({ length: step.sectors * 512 }, (_, i) => (step.seed + i * 7) & 0xff);
        const readable = [outhdr(T.VIRTIO_BLK_T_OUT, step.sector), ...pieces(data, step.split)];
        if (q.freeDescriptors >= (indirect ? 1 : readable.length + 1)) q.add({ readable, writable: [1], indirect });
        return;
      }
      case 'read': {
        const writable = [...pieces(new Uint8Array(step.sectors * 512), step.split).map((p) => p.length), 1];
        if (q.freeDescriptors >= (indirect ? 1 : writable.length + 1)) q.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, step.sector)], writable, indirect });
        return;
      }
      case 'flush':
        if (q.freeDescriptors >= 2) q.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
        return;
      case 'wce':
        driver.writeConfig(BlkConfigOffset.WRITEBACK, 1, step.writeback ? 1 : 0);
        return;
      case 'config':
        log.push(`writeback ${driver.readConfig(BlkConfigOffset.WRITEBACK, 1)} generation ${driver.readCommon(CommonCfg.CONFIG_GENERATION, 1)}`);
        return;
    }
  },
  settle: (world) => world.settle(),
  finish: (world, log) => void log.push(`disk ${hex(world.backend.bytes)}`),
};

/** Save `t`'s function and restore it into a fresh blk over `backend` and a copy of t's RAM. */
function restoreInto(t: DriverMock, backend: MemoryBlockBackend, options: Partial<VirtioBlkOptions> = {}) {
  const state = JSON.parse(JSON.stringify(t.fn.saveState()));
  const memory = new ArrayMemory(t.memory.size);
  memory.bytes.set(t.memory.bytes);
  const blk = device(backend, options);
  const fn = blkFunction(blk);
  t.continueOn(fn, memory);
  fn.restoreState(state);
  return { blk, fn, state };
}

describe('virtio-blk snapshots', () => {
  for (const ring of RING_LAYOUTS) {
    it(onRing('traffic goes on after save/restore as if nothing happened', ring), async () => {
      await fc.assert(restoreProperty(blkSubject, ring), { numRuns: 60 });
    });
  }

  it('a disk of another size: the new capacity, and a config change notification once the guest runs', () => {
    const t = DriverMock.create(device(new MemoryBlockBackend(SECTORS * 512)), { pci: { deviceState: blkDevice.state } });
    t.initRings();
    const generation = t.readCommon(CommonCfg.CONFIG_GENERATION, 1);
    expect(t.readConfig(BlkConfigOffset.CAPACITY, 4)).toBe(SECTORS);
    const { fn } = restoreInto(t, new MemoryBlockBackend(2 * SECTORS * 512));
    expect(fn.isrStatus).toBe(IsrBit.CONFIG);
    expect(t.irq.level).toBe(true);
    expect(t.readIsr()).toBe(IsrBit.CONFIG);
    expect(t.readCommon(CommonCfg.CONFIG_GENERATION, 1)).toBe((generation + 1) & 0xff);
    expect(t.readConfig(BlkConfigOffset.CAPACITY, 4)).toBe(2 * SECTORS);
    // and the disk works at its new size
    const q = t.queues[0]!;
    q.add({ readable: [outhdr(T.VIRTIO_BLK_T_IN, 2 * SECTORS - 1)], writable: [512, 1] });
    q.kick();
    const [used] = q.used();
    expect(used?.data[512]).toBe(0); // VIRTIO_BLK_S_OK
  });

  it('the same size: no notification; a resize before DRIVER_OK: the new capacity without an interrupt', () => {
    const same = DriverMock.create(device(new MemoryBlockBackend(SECTORS * 512)), { pci: { deviceState: blkDevice.state } });
    same.initRings();
    const generation = same.readCommon(CommonCfg.CONFIG_GENERATION, 1);
    const { fn } = restoreInto(same, new MemoryBlockBackend(SECTORS * 512));
    expect(fn.isrStatus).toBe(0);
    expect(same.irq.level).toBe(false);
    expect(same.readCommon(CommonCfg.CONFIG_GENERATION, 1)).toBe(generation);

    const early = DriverMock.create(device(new MemoryBlockBackend(SECTORS * 512)), { pci: { deviceState: blkDevice.state } });
    expect(early.negotiate()).toBe(true);
    const before = early.readCommon(CommonCfg.CONFIG_GENERATION, 1);
    const restored = restoreInto(early, new MemoryBlockBackend(4 * SECTORS * 512));
    expect(restored.fn.deviceStatus & DeviceStatus.DRIVER_OK).toBe(0);
    expect(restored.fn.isrStatus).toBe(0);
    expect(early.irq.raises).toBe(0);
    expect(early.readConfig(BlkConfigOffset.CAPACITY, 4)).toBe(4 * SECTORS);
    // The driver may be between two reads of the config: the generation says it changed.
    expect(early.readCommon(CommonCfg.CONFIG_GENERATION, 1)).toBe((before + 1) & 0xff);
  });

  it('write-through set by the driver (CONFIG_WCE) comes back, without a flush or a config change', () => {
    const backend = new MemoryBlockBackend(SECTORS * 512);
    const t = DriverMock.create(device(backend), { pci: { deviceState: blkDevice.state } });
    t.initRings();
    t.writeConfig(BlkConfigOffset.WRITEBACK, 1, 0);
    const flushes = backend.counts.flush;
    const copy = new MemoryBlockBackend(backend.bytes.slice());
    const { blk, fn } = restoreInto(t, copy);
    expect(blk.writeback).toBe(false);
    expect(t.readConfig(BlkConfigOffset.WRITEBACK, 1)).toBe(0);
    expect(fn.isrStatus).toBe(0);
    expect(copy.counts.flush + backend.counts.flush).toBe(flushes);
    // write-through: a write is flushed before it completes
    const q = t.queues[0]!;
    q.add({ readable: [outhdr(T.VIRTIO_BLK_T_OUT, 0), new Uint8Array(512).fill(9)], writable: [1] });
    q.kick();
    expect(q.used()).toHaveLength(1);
    expect(copy.counts.flush).toBe(1);
  });

  it('saving with a pass still to run throws; quiesce() serves it first', async () => {
    // Two 16 MiB discards: one pass holds one (BLK_DRAIN_BYTES), the other waits for `later`.
    const backend = new MemoryBlockBackend(32768 * 512);
    const later = manualDefer();
    const t = DriverMock.create(device(backend, { later: later.defer }), { pci: { deviceState: blkDevice.state }, memorySize: 1 << 20 });
    const [q] = t.initRings();
    for (let i = 0; i < 2; i++) q!.add({ readable: [outhdr(T.VIRTIO_BLK_T_DISCARD), segment(0, 32768)], writable: [1] });
    q!.kick();
    expect(q!.used()).toHaveLength(1);
    expect(() => t.fn.saveState()).toThrow(FunctionStateError);
    expect(() => t.fn.saveState()).toThrow(/not quiesced \(1 requests waiting for a pass\)/);
    await t.fn.quiesce();
    expect(q!.used()).toHaveLength(1);
    const state = t.fn.saveState();
    expect(state.queues[0]!.engine).toMatchObject({ inFlight: [] });
    later.settle(); // the pass it replaced does nothing now
    expect(q!.used()).toHaveLength(0);
  });

  it('a deferred kick is served by quiesce()', async () => {
    const { defer, settle } = manualDefer();
    const t = DriverMock.create(device(new MemoryBlockBackend(SECTORS * 512), { defer }), { pci: { deviceState: blkDevice.state } });
    const [q] = t.initRings();
    q!.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    q!.kick();
    expect(() => t.fn.saveState()).toThrow(/not quiesced \(a deferred kick\)/);
    await t.fn.quiesce();
    expect(q!.used()).toHaveLength(1);
    expect(t.fn.saveState().status & DeviceStatus.DRIVER_OK).toBeTruthy();
    settle();
  });

  it('a ring that breaks in the middle of a drain leaves no request waiting: the function still saves', async () => {
    const t = DriverMock.create(device(new MemoryBlockBackend(SECTORS * 512)), { pci: { deviceState: blkDevice.state } });
    const [q] = t.init();
    q!.add({ readable: [outhdr(T.VIRTIO_BLK_T_FLUSH)], writable: [1] });
    // avail idx one past what the driver wrote: ring[1] still holds head 0, in flight by then.
    t.memory.writeU16(q!.addr.avail + 2, 2);
    q!.notify();
    expect(t.errors).toEqual(['queue 0: avail ring[1]: head 0 is already in flight']);
    expect(t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
    await t.fn.quiesce();
    expect(t.fn.saveState().queues[0]!.engine).toMatchObject({ broken: 'avail ring[1]: head 0 is already in flight', inFlight: [0] });
  });

  it('other limits (options) are refused, leaving the function untouched', () => {
    const t = DriverMock.create(device(new MemoryBlockBackend(SECTORS * 512)), { pci: { deviceState: blkDevice.state } });
    t.initRings();
    const state = JSON.parse(JSON.stringify(t.fn.saveState()));
    const fn = blkFunction(device(new MemoryBlockBackend(SECTORS * 512), { limits: { segMax: 100 } }));
    fn.connect({ memory: t.memory, irq: t.irq });
    expect(() => fn.restoreState(state)).toThrow(/virtio-blk\.device\.config: byte 12 is 254, this disk's is 100/);
    expect(fn.deviceStatus).toBe(0);
    expect(fn.queue(0)).toBeUndefined();
    // a read-only disk offers other features: refused before the device is asked
    const ro = blkFunction(device(new MemoryBlockBackend(SECTORS * 512, { readOnly: true })));
    ro.connect({ memory: t.memory, irq: t.irq });
    expect(() => ro.restoreState(state)).toThrow(/offeredFeatures: saved offering/);
  });
});
