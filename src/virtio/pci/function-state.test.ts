import { describe, expect, it } from 'vitest';
import { DeviceStatus as S, Feature, IsrBit, VIRTQ_DESC_F_NEXT, featureBit } from '../constants.ts';
import type { RingLayout } from '../queue/virtqueue.ts';
import type { DeviceStateHooks } from '../state/device-state.ts';
import { FunctionStateError } from '../state/state-reader.ts';
import { ArrayMemory } from '../testing/array-memory.ts';
import { DriverMock } from '../testing/driver-mock.ts';
import { LoopbackDevice, loopbackOutput } from '../testing/loopback-device.ts';
import { PciConfigDriver } from '../testing/pci-config-driver.ts';
import { TestIrq } from '../testing/test-irq.ts';
import type { FunctionState } from './function-state.ts';
import { CommonCfg as C } from './layout.ts';
import { VirtioPciFunction } from './virtio-pci-function.ts';

/** The loopback device's held chains as its state: [queue, id] pairs, in order. */
const loopbackState: DeviceStateHooks<LoopbackDevice> = {
  busy: () => undefined,
  quiesce: () => {},
  save: (d) => d.held.map((h) => [h.queueIndex, h.chain.headIndex]),
  restore(d, state, host) {
    const held = state.items(64).flatMap((item) => {
      const [queueIndex, id] = item.tuple(2).map((v) => v.int(0, 0xffff));
      const chain = host.takeChain(queueIndex!, id!);
      return chain ? [{ queueIndex: queueIndex!, chain }] : [];
    });
    return () => void d.held.push(...held);
  },
};

const MEMORY = 1 << 16;

function loopback(held = true): LoopbackDevice {
  return new LoopbackDevice({ queues: 2, maxQueueSize: 16, autoComplete: !held });
}

/** `hooks` null: a function without state hooks. */
function fn(device = loopback(), ring: RingLayout = 'split', hooks: DeviceStateHooks<LoopbackDevice> | null = loopbackState): VirtioPciFunction {
  return new VirtioPciFunction(device, { ring, deviceState: (hooks ?? undefined) as DeviceStateHooks | undefined });
}

function running(ring: RingLayout = 'split', held = true) {
  const device = loopback(held);
  const t = new DriverMock(fn(device, ring), new ArrayMemory(MEMORY), new TestIrq());
  const queues = t.initRings();
  return { t, device, queues };
}

/** A fresh function of the same kind, connected to a copy of `t`'s RAM, with its own line. */
function fresh(t: DriverMock, ring: RingLayout = 'split', hooks: DeviceStateHooks<LoopbackDevice> | null = loopbackState) {
  const device = loopback();
  const f = fn(device, ring, hooks);
  const memory = new ArrayMemory(t.memory.size);
  memory.bytes.set(t.memory.bytes);
  const irq = new TestIrq();
  f.connect({ memory, irq });
  return { f, device, memory, irq };
}

/** Nothing about the function or its device moved. */
function expectUntouched(f: VirtioPciFunction, device: LoopbackDevice, irq: TestIrq): void {
  expect(f.deviceStatus).toBe(0);
  expect(f.negotiatedFeatures).toBe(0n);
  expect(f.isrStatus).toBe(0);
  expect([0, 1].map((i) => f.queue(i))).toEqual([undefined, undefined]);
  expect(irq.raises).toBe(0);
  expect(device.activations).toBe(0);
  expect(device.held).toEqual([]);
  expect(f.configSpace[0x06]! & 0x08).toBe(0);
}

type Mutable = Record<string, any>;
const copy = (s: FunctionState): Mutable => JSON.parse(JSON.stringify(s));

describe('saving and restoring a virtio-pci function', () => {
  for (const ring of ['split', 'packed'] as const) {
    it(`chains in flight are completed after a restore, out of order, from the saved state (${ring})`, () => {
      const { t, device, queues } = running(ring);
      const q = queues[0]!;
      const subs = [q.add({ readable: [Uint8Array.of(1, 2, 3)], writable: [3] }), q.add({ writable: [5] }), q.add({ readable: [Uint8Array.of(9)], writable: [4], indirect: true })];
      q.kick();
      expect(device.held).toHaveLength(3);
      device.complete((h) => h.chain.headIndex === subs[1]!.head); // the middle one first
      expect(q.used().map((u) => u.head)).toEqual([subs[1]!.head]);
      const state = JSON.parse(JSON.stringify(t.fn.saveState()));
      expect(state.device).toEqual([
        [0, subs[0]!.head],
        [0, subs[2]!.head],
      ]);
      const { f, memory, device: restored } = fresh(t, ring);
      t.continueOn(f, memory);
      // The ring slot of the first chain now holds the middle one's used descriptor (packed):
      // a restore that re-read it would find no chain there. Scribble on it to be sure.
      if (ring === 'packed') memory.bytes.fill(0x5a, q.deviceWritableAreas()[0]![0], q.deviceWritableAreas()[0]![0] + 12);
      f.restoreState(state);
      expect(restored.held.map((h) => h.chain.headIndex)).toEqual([subs[0]!.head, subs[2]!.head]);
      expect(f.queue(0)!.inFlightIds()).toEqual([subs[0]!.head, subs[2]!.head].sort((a, b) => a - b));
      restored.complete();
      const used = q.used();
      expect(used.map((u) => [u.head, u.len])).toEqual([
        [subs[0]!.head, 3],
        [subs[2]!.head, 1],
      ]);
      expect(used[0]!.data).toEqual(Uint8Array.of(1, 2, 3));
      expect(used[1]!.data).toEqual(Uint8Array.of(9));
      // and the ring goes on: new chains, new ids
      q.add({ writable: [2] });
      q.kick();
      restored.complete();
      const [next] = q.used();
      expect(next!.data).toEqual(loopbackOutput(next!.head, new Uint8Array(), 2));
      expect(t.errors).toEqual([]);
    });

    it(`the interrupt line is raised again when ISR was set (${ring})`, () => {
      const { t, device, queues } = running(ring);
      queues[0]!.add({ writable: [1] });
      queues[0]!.kick();
      device.complete();
      expect(t.fn.isrStatus).toBe(IsrBit.QUEUE);
      const state = t.fn.saveState();
      const { f, memory, irq } = fresh(t, ring);
      t.continueOn(f, memory, irq);
      f.restoreState(state);
      expect(irq.level).toBe(true);
      expect(irq.raises).toBe(1);
      expect(new PciConfigDriver(f).interruptStatus()).toBe(true);
      expect(t.readIsr()).toBe(IsrBit.QUEUE);
      expect(irq.level).toBe(false);
      expect(queues[0]!.used()).toHaveLength(1);
    });
  }

  it('no interrupt when ISR was clear, and none for restoring a config the driver already saw', () => {
    const { t } = running();
    t.writeConfig(4, 4, 0x01020304); // driver-writable loopback config
    const generation = t.readCommon(C.CONFIG_GENERATION, 1);
    const state = t.fn.saveState();
    const { f, memory, irq } = fresh(t);
    t.continueOn(f, memory, irq);
    f.restoreState(state);
    expect(irq.raises).toBe(0);
    expect(t.readCommon(C.CONFIG_GENERATION, 1)).toBe(generation);
    expect(t.status).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  });

  it('mid-negotiation: selectors and the driver features written so far come back, and the driver finishes', () => {
    const t = new DriverMock(fn(), new ArrayMemory(MEMORY), new TestIrq());
    t.status = S.ACKNOWLEDGE | S.DRIVER;
    const wanted = featureBit(Feature.VIRTIO_F_VERSION_1) | featureBit(Feature.VIRTIO_F_RING_EVENT_IDX);
    t.writeDriverFeatures(wanted);
    t.writeCommon(C.QUEUE_SELECT, 2, 1);
    t.writeCommon(C.QUEUE_SIZE, 2, 8);
    t.writeCommon(C.DEVICE_FEATURE_SELECT, 4, 1);
    const state = t.fn.saveState();
    expect(state).toMatchObject({ status: S.ACKNOWLEDGE | S.DRIVER, activated: false, acceptedFeatures: '0x0', queueSelect: 1, deviceFeatureSelect: 1, driverFeatureSelect: 1 });
    const { f, memory } = fresh(t);
    t.continueOn(f, memory);
    f.restoreState(state);
    expect(t.readCommon(C.QUEUE_SELECT, 2)).toBe(1);
    expect(t.readCommon(C.QUEUE_SIZE, 2)).toBe(8);
    expect(t.readCommon(C.DEVICE_FEATURE, 4)).toBe(1); // window 1: VERSION_1
    t.status = S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK;
    expect(t.status & S.FEATURES_OK).toBe(S.FEATURES_OK);
    expect(f.negotiatedFeatures).toBe(wanted);
  });

  it('the PCI_CFG window registers come back', () => {
    const { t } = running();
    const pci = new PciConfigDriver(t.fn);
    pci.aim(0, t.caps.common.offset + C.NUM_QUEUES, 2);
    expect(pci.read(pci.cap + 16, 4)).toBe(2);
    const state = t.fn.saveState();
    const { f } = fresh(t);
    f.restoreState(state);
    expect(Array.from(f.configSpace.subarray(pci.cap, pci.cap + 20))).toEqual(Array.from(t.fn.configSpace.subarray(pci.cap, pci.cap + 20)));
    expect(new PciConfigDriver(f).read(pci.cap + 16, 2)).toBe(2); // reading pci_cfg_data reads BAR0 again
  });

  it('a device that needed a reset still needs it; its broken queue stays broken until the driver resets', () => {
    const { t, queues } = running();
    const avail = (queues[0] as unknown as { addr: { avail: number } }).addr.avail;
    t.memory.writeU16(avail + 2, 0x7777); // avail idx far ahead of what the device consumed
    queues[0]!.notify();
    expect(t.fn.deviceStatus & S.DEVICE_NEEDS_RESET).toBeTruthy();
    const state = t.fn.saveState();
    expect(state.queues[0]!.engine).toMatchObject({ broken: expect.stringContaining('avail idx') });
    const { f, memory, irq } = fresh(t);
    t.continueOn(f, memory, irq);
    f.restoreState(state);
    expect(f.deviceStatus & S.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(f.queue(0)!.live).toBe(false);
    expect(f.queue(0)!.broken?.reason).toBe(state.queues[0]!.engine!.broken);
    expect(f.isrStatus).toBe(IsrBit.CONFIG);
    expect(irq.level).toBe(true);
    const [q] = t.initRings();
    q!.add({ writable: [1] });
    q!.kick();
    expect(f.deviceStatus).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  });

  it('a bad state is a FunctionStateError and leaves the function untouched', () => {
    const { t, device, queues } = running();
    const q = queues[0]!;
    q.add({ writable: [4] });
    q.add({ readable: [Uint8Array.of(1)], writable: [1] });
    q.kick();
    expect(device.held).toHaveLength(2);
    const good = t.fn.saveState();
    const engine = good.queues[0]!.engine as Mutable;
    const cases: Array<[string, (s: Mutable) => unknown, RegExp]> = [
      ['not an object', () => 'state', /expected an object/],
      ['null', () => null, /expected an object/],
      ['another format', (s) => ({ ...s, format: 'qemu' }), /format: "qemu" is not "virtio-pci-function"/],
      ['a later version', (s) => ({ ...s, version: 2 }), /version/],
      ['another function', (s) => ({ ...s, name: 'virtio-net' }), /saved from "virtio-net"/],
      ['another device id', (s) => ({ ...s, deviceId: 1 }), /deviceId: 1 is not an integer in 63\.\.63/],
      ['other features offered', (s) => ({ ...s, offeredFeatures: '0x1' }), /offeredFeatures: saved offering 0x1/],
      ['status missing', (s) => (delete s.status, s), /missing "status"/],
      ['status out of range', (s) => ({ ...s, status: 0x100 }), /status: 256 is not an integer in 0\.\.255/],
      ['status with unknown bits', (s) => ({ ...s, status: s.status | 0x10 }), /bits no one sets/],
      ['status as a string', (s) => ({ ...s, status: '15' }), /status: "15" is not an integer/],
      ['features not hex', (s) => ({ ...s, acceptedFeatures: '0xZZ' }), /acceptedFeatures/],
      ['features not offered', (s) => ({ ...s, acceptedFeatures: '0xffffffffffffffff' }), /not a set of offered features/],
      ['active without DRIVER_OK', (s) => ({ ...s, status: S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK }), /active without DRIVER_OK/],
      ['DRIVER_OK but inactive', (s) => ({ ...s, activated: false }), /DRIVER_OK without an active device/],
      ['ISR out of range', (s) => ({ ...s, isr: 4 }), /isr: 4/],
      ['config_generation out of range', (s) => ({ ...s, configGeneration: 256 }), /configGeneration/],
      ['a queue missing', (s) => ({ ...s, queues: s.queues.slice(1) }), /1 queues, this function has 2/],
      ['a queue too large', (s) => (s.queues[1].size = 32, s), /queues\[1\]\.size: 32 is not an integer in 1\.\.16/],
      ['a split queue of 6', (s) => (s.queues[1].size = 6, s), /not a valid size for a split queue/],
      ['enabled without an engine', (s) => (s.queues[0].engine = null, s), /enabled but no engine state/],
      ['a packed engine on a split queue', (s) => (s.queues[0].engine.layout = 'packed', s), /layout: "packed" is not "split"/],
      ['an index past 16 bits', (s) => (s.queues[0].engine.usedIdx = 70000, s), /usedIdx: 70000/],
      ['in flight and indices disagree', (s) => (s.queues[0].engine.lastAvailIdx = engine.lastAvailIdx + 1, s), /avail and used indices say 3/],
      ['a head twice', (s) => (s.queues[0].engine.inFlight = [engine.inFlight[0], engine.inFlight[0]], s), /in flight twice/],
      ['a head past the queue', (s) => (s.queues[0].engine.inFlight = [engine.inFlight[0], 16], s), /inFlight\[1\]: 16 is not an integer in 0\.\.15/],
      ['a ring outside RAM', (s) => (s.queues[0].desc = [MEMORY - 16, 0], s), /queue 0: descriptor table .* outside guest RAM/],
      ['a ring above 4 GiB', (s) => (s.queues[0].device = [0, 1], s), /outside guest RAM/],
      ['a huge reason', (s) => (s.queues[0].engine.broken = 'x'.repeat(2000), s), /broken: string of 2000 characters/],
      ['the device part missing', (s) => ({ ...s, device: null }), /no device state, but this device keeps one/],
      ['a chain the device does not hold', (s) => ({ ...s, device: s.device.slice(1) }), /is in flight but the device state does not hold it/],
      ['a chain held twice', (s) => ({ ...s, device: [s.device[0], s.device[0]] }), /not in flight \(or held twice\)/],
      ['a chain of a queue that does not exist', (s) => ({ ...s, device: [...s.device, [5, 0]] }), /queue 5, which is not enabled/],
    ];
    for (const [what, mutate, message] of cases) {
      const { f, device: d, irq } = fresh(t);
      let error: unknown;
      try {
        f.restoreState(mutate(copy(good)) as FunctionState);
      } catch (e) {
        error = e;
      }
      expect(error, what).toBeInstanceOf(FunctionStateError);
      expect((error as Error).message, what).toMatch(message);
      expectUntouched(f, d, irq);
    }
    // the same state, unharmed, restores
    const { f } = fresh(t);
    f.restoreState(good);
    expect(f.deviceStatus).toBe(good.status);
  });

  it('a chain that no longer reads as one in guest RAM is refused (split re-reads its chains)', () => {
    const { t, queues } = running();
    const q = queues[0]!;
    const sub = q.add({ writable: [4] });
    q.kick();
    const state = t.fn.saveState();
    const { f, memory, device, irq } = fresh(t);
    // descriptor `head`: NEXT to a descriptor past the table
    const desc = (q as unknown as { addr: { desc: number } }).addr.desc + 16 * sub.head;
    memory.writeU16(desc + 12, VIRTQ_DESC_F_NEXT | 2);
    memory.writeU16(desc + 14, 99);
    expect(() => f.restoreState(state)).toThrow(/chain in flight at head \d+ no longer reads as one: descriptor \d+: next 99/);
    expectUntouched(f, device, irq);
  });

  it('packed: a saved buffer outside guest RAM or slots that do not add up are refused', () => {
    const { t, queues } = running('packed');
    queues[0]!.add({ writable: [4] });
    queues[0]!.kick();
    const good = copy(t.fn.saveState());
    const outside = copy(good as FunctionState);
    outside.queues[0].engine.inFlight[0].writable = [MEMORY - 2, 4];
    const slots = copy(good as FunctionState);
    slots.queues[0].engine.inFlight[0].slots = 2;
    for (const [bad, message] of [
      [outside, /buffer id 0 in flight has a buffer \[0xfffe, \+4\) outside guest RAM/],
      [slots, /chains hold 2 ring slots, but the avail and used positions are 1 apart/],
    ] as const) {
      const { f, device, irq } = fresh(t, 'packed');
      expect(() => f.restoreState(bad as FunctionState)).toThrow(message);
      expectUntouched(f, device, irq);
    }
  });

  it('restores only into a fresh, connected function', () => {
    const { t } = running();
    const state = t.fn.saveState();
    const unplugged = fn();
    expect(() => unplugged.restoreState(state)).toThrow(/before the function was connected/);
    const { f } = fresh(t);
    f.restoreState(state);
    expect(() => f.restoreState(state)).toThrow(/already in use/);
  });

  it('prepareRestore changes nothing until its step runs', () => {
    const { t } = running();
    const { f, device, irq } = fresh(t);
    const apply = f.prepareRestore(t.fn.saveState());
    expectUntouched(f, device, irq);
    apply();
    expect(f.deviceStatus).toBe(t.fn.deviceStatus);
    expect(device.activations).toBe(1);
  });

  it('a device whose restore step throws leaves the function reset, not half-restored', () => {
    const failing: DeviceStateHooks<LoopbackDevice> = {
      ...loopbackState,
      restore: (d, s, host) => {
        loopbackState.restore(d, s, host);
        return () => {
          throw new Error('device bug');
        };
      },
    };
    const { t, queues } = running();
    queues[0]!.add({ writable: [1] });
    queues[0]!.kick();
    const { f, irq } = fresh(t, 'split', failing);
    expect(() => f.restoreState(t.fn.saveState())).toThrow(/applying the device state failed: device bug/);
    expect(f.deviceStatus).toBe(0);
    expect(f.queue(0)).toBeUndefined();
    expect(irq.level).toBe(false);
  });

  it('without state hooks only a reset function can be saved', () => {
    const t = new DriverMock(fn(loopback(), 'split', null), new ArrayMemory(MEMORY), new TestIrq());
    expect(t.fn.saveState().device).toBeNull();
    t.initRings();
    expect(() => t.fn.saveState()).toThrow(/no state hooks/);
  });

  it('saving refuses a device that is still busy, and quiesce() asks it to finish', async () => {
    let busy: string | undefined = 'a pass to run';
    const hooks: DeviceStateHooks<LoopbackDevice> = { ...loopbackState, busy: () => busy, quiesce: () => void (busy = undefined) };
    const t = new DriverMock(fn(loopback(), 'split', hooks), new ArrayMemory(MEMORY), new TestIrq());
    t.initRings();
    expect(() => t.fn.saveState()).toThrow(/not quiesced \(a pass to run\)/);
    await t.fn.quiesce();
    expect(t.fn.saveState().status & S.DRIVER_OK).toBeTruthy();
    const stuck = new DriverMock(fn(loopback(), 'split', { ...hooks, busy: () => 'stuck', quiesce: () => {} }), new ArrayMemory(MEMORY), new TestIrq());
    await expect(stuck.fn.quiesce()).rejects.toThrow(FunctionStateError);
  });
});
