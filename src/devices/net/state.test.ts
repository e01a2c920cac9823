import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryLinkPair, type MemoryFrameLink } from '../../backends/memory-frame-link.ts';
import { DeviceStatus, Feature, IsrBit, NetFeature, hasFeature } from '../../virtio/constants.ts';
import { CommonCfg } from '../../virtio/pci/layout.ts';
import type { FunctionState } from '../../virtio/pci/function-state.ts';
import { VirtioPciFunction } from '../../virtio/pci/virtio-pci-function.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { FunctionStateError } from '../../virtio/state/state-reader.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { DriverMock, type DriverQueue } from '../../virtio/testing/driver-mock.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';
import { hex, restoreProperty, type RestoreSubject, type RestoreWorld } from '../testing/restore-property.ts';
import { NetConfigOffset, formatMac } from './config.ts';
import { parseNetHdr } from './hdr.ts';
import { netDevice } from './index.ts';
import { VirtioNet, type VirtioNetOptions } from './net.ts';
import { NET_RECEIVEQ, NET_TRANSMITQ, VIRTIO_NET_HDR_SIZE } from './spec.ts';
import { GUEST_MAC, PEER_MAC, ethernet } from './testing.ts';

const OTHER_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x0d, 0x0e, 0x0f);

interface NetWorld extends RestoreWorld {
  readonly peer: MemoryFrameLink;
  readonly settle: () => void;
  readonly ring: RingLayout;
}

type NetStep =
  | { kind: 'inject'; len: number; seed: number }
  | { kind: 'post'; sizes: number[]; kick: boolean }
  | { kind: 'send'; len: number; seed: number; split: number; indirect: boolean }
  | { kind: 'link'; up: boolean }
  | { kind: 'status' };

function frame(len: number, seed: number, dst = GUEST_MAC, src = PEER_MAC): Uint8Array {
  const payload = Uint8Array.from({ length: len - 14 }, (_, i) => (seed + i * 13) & 0xff);
  return ethernet(payload, 0x0800, dst, src);
}

/**
 * Small queues and backlog so rings fill and frames wait; kicks and passes deferred. Without
 * the control queue (its state and the announce after a restore: ctrl-state.test.ts).
 */
function device(link: MemoryFrameLink, options: Partial<VirtioNetOptions> = {}): VirtioNet {
  return new VirtioNet({ link, mac: GUEST_MAC, queueSize: 16, rxBacklogFrames: 3, rxBacklogBytes: 4000, ctrlVq: false, ...options });
}

function netFunction(net: VirtioNet, ring: RingLayout = 'split'): VirtioPciFunction {
  return new VirtioPciFunction(net, { ring, deviceState: netDevice.state });
}

/** The far end of a new link, logging what reaches it. */
function wire(up: boolean, log: string[]): { near: MemoryFrameLink; peer: MemoryFrameLink } {
  const [near, peer] = memoryLinkPair({ up });
  peer.attach({ onFrame: (f) => log.push(`wire ${hex(f)}`), onLinkChange: () => {} });
  return { near, peer };
}

const netSubject: RestoreSubject<NetWorld, NetStep> = {
  name: 'virtio-net',
  queues: 2,
  optionalFeatures: [NetFeature.VIRTIO_NET_F_MRG_RXBUF, NetFeature.VIRTIO_NET_F_GUEST_CSUM],
  // Mostly small rx buffers and large frames: with MRG_RXBUF the device then holds the buffers
  // of a frame that does not fit yet, the case a snapshot must carry over.
  steps: fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('inject' as const), len: fc.oneof(fc.integer({ min: 14, max: 1514 }), fc.integer({ min: 900, max: 1514 })), seed: fc.nat(255) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('post' as const),
        sizes: fc.array(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 20, max: 400 }) }, { weight: 1, arbitrary: fc.constant(1526) }), { minLength: 1, maxLength: 3 }),
        kick: fc.boolean(),
      }),
    },
    fc.record({ kind: fc.constant('send' as const), len: fc.integer({ min: 14, max: 600 }), seed: fc.nat(255), split: fc.integer({ min: 1, max: 40 }), indirect: fc.boolean() }),
    // Mostly back up: a link left down would stop all rx traffic.
    fc.record({ kind: fc.constant('link' as const), up: fc.constantFrom(true, true, true, false) }),
    fc.constant({ kind: 'status' as const }),
  ),
  create(ring, drop, log) {
    const { near, peer } = wire(true, log);
    const { defer, settle } = manualDefer();
    const driver = DriverMock.create(device(near, { defer, later: defer }), { memorySize: 1 << 20, pci: { ring, deviceState: netDevice.state } });
    driver.initRings({ features: driver.deviceFeatures() & ~drop });
    return { driver, peer, settle, ring };
  },
  rebuild(old, log) {
    // The network goes on (up or down as it was); frames now come through the new NIC.
    const { near, peer } = wire(old.peer.up, log);
    const { defer, settle } = manualDefer();
    return { world: { driver: old.driver, peer, settle, ring: old.ring }, fn: netFunction(device(near, { defer, later: defer }), old.ring) };
  },
  step({ driver, peer }, step, log) {
    const rxq = driver.queues[NET_RECEIVEQ]!;
    const txq = driver.queues[NET_TRANSMITQ]!;
    switch (step.kind) {
      case 'inject':
        log.push(`inject ${peer.send(frame(step.len, step.seed))}`);
        return;
      case 'post':
        for (const size of step.sizes) if (rxq.freeDescriptors > 0) rxq.add({ writable: [size] });
        if (step.kick) rxq.kick();
        return;
      case 'send': {
        const bytes = new Uint8Array(VIRTIO_NET_HDR_SIZE + step.len);
        bytes.set(frame(step.len, step.seed, PEER_MAC, GUEST_MAC), VIRTIO_NET_HDR_SIZE);
        const readable = [bytes.subarray(0, step.split), bytes.subarray(step.split)];
        const indirect = step.indirect && hasFeature(driver.features, Feature.VIRTIO_F_RING_INDIRECT_DESC);
        if (txq.freeDescriptors >= (indirect ? 1 : 2)) txq.add({ readable, indirect });
        return;
      }
      case 'link':
        peer.setUp(step.up);
        return;
      case 'status':
        log.push(`status ${driver.readConfig(NetConfigOffset.STATUS, 2)} generation ${driver.readCommon(CommonCfg.CONFIG_GENERATION, 1)}`);
        return;
    }
  },
  settle: (world) => world.settle(),
};

/** A running NIC whose rx queue holds `posted` small buffers, with a frame waiting for more room. */
function holdingRx(ring: RingLayout, posted: number) {
  const [near, peer] = memoryLinkPair();
  const t = DriverMock.create(device(near), { pci: { ring, deviceState: netDevice.state } });
  t.initRings();
  const rxq = t.queues[NET_RECEIVEQ]!;
  for (let i = 0; i < posted; i++) rxq.add({ writable: [200] });
  rxq.kick();
  const big = frame(500, 7);
  peer.send(big); // needs 12 + 500 bytes: three 200-byte buffers with MRG_RXBUF
  return { t, peer, big };
}

/** Save `t`'s function; restore it into a fresh NIC on a new link, over a copy of t's RAM. */
function restoreInto(t: DriverMock, state: FunctionState, ring: RingLayout, options: Partial<VirtioNetOptions> = {}, up = true) {
  const memory = new ArrayMemory(t.memory.size);
  memory.bytes.set(t.memory.bytes);
  const [near, peer] = memoryLinkPair({ up });
  const wireFrames: Uint8Array[] = [];
  peer.attach({ onFrame: (f) => wireFrames.push(f), onLinkChange: () => {} });
  const net = device(near, options);
  const fn = netFunction(net, ring);
  t.continueOn(fn, memory);
  fn.restoreState(JSON.parse(JSON.stringify(state)));
  return { net, fn, peer, wireFrames };
}

describe('virtio-net snapshots', () => {
  for (const ring of RING_LAYOUTS) {
    it(onRing('traffic goes on after save/restore as if nothing happened', ring), async () => {
      await fc.assert(restoreProperty(netSubject, ring), { numRuns: 150 });
    });

    it(onRing('rx chains the device held are completed after a restore, with the frame that waited', ring), () => {
      const { t, big } = holdingRx(ring, 2);
      const state = t.fn.saveState();
      const held = (state.device as { rxHeld: number[] }).rxHeld;
      expect(held).toHaveLength(2);
      expect((state.device as { rxBacklog: string[] }).rxBacklog).toHaveLength(1);
      expect(t.fn.queue(NET_RECEIVEQ)!.inFlightIds()).toEqual([...held].sort((a, b) => a - b));
      const { net } = restoreInto(t, state, ring);
      expect(net.heldRxChains.map((c) => c.headIndex)).toEqual(held);
      expect(t.fn.queue(NET_RECEIVEQ)!.inFlightIds()).toEqual([...held].sort((a, b) => a - b));
      const rxq = t.queues[NET_RECEIVEQ]!;
      rxq.add({ writable: [200] });
      rxq.kick();
      const used = rxq.used();
      expect(used.map((u) => u.head)).toEqual([...held, used[2]!.head]);
      const bytes = new Uint8Array(used.reduce((n, u) => n + u.len, 0));
      let at = 0;
      for (const u of used) {
        bytes.set(u.data, at);
        at += u.len;
      }
      expect(parseNetHdr(bytes).numBuffers).toBe(3);
      expect(bytes.subarray(VIRTIO_NET_HDR_SIZE)).toEqual(big);
      expect(t.fn.isrStatus & IsrBit.QUEUE).toBe(IsrBit.QUEUE);
    });
  }

  it("keeps the new options' MAC, with no config change for it; the link status comes back", () => {
    const [near, peer] = memoryLinkPair();
    const t = DriverMock.create(device(near), { pci: { deviceState: netDevice.state } });
    t.initRings();
    peer.setUp(false);
    expect(t.readIsr()).toBe(IsrBit.CONFIG);
    const generation = t.readCommon(CommonCfg.CONFIG_GENERATION, 1);
    const { fn, net } = restoreInto(t, t.fn.saveState(), 'split', { mac: OTHER_MAC }, false);
    expect(formatMac(net.config.space.bytes)).toBe(formatMac(OTHER_MAC));
    expect(Array.from({ length: 6 }, (_, i) => t.readConfig(NetConfigOffset.MAC + i, 1))).toEqual([...OTHER_MAC]);
    expect(t.readConfig(NetConfigOffset.STATUS, 2)).toBe(0);
    expect(fn.isrStatus).toBe(0);
    expect(t.irq.raises).toBe(0);
    expect(t.readCommon(CommonCfg.CONFIG_GENERATION, 1)).toBe(generation);
  });

  it('a link that changed across the snapshot is reported as a flap would be', () => {
    const [near] = memoryLinkPair();
    const t = DriverMock.create(device(near), { pci: { deviceState: netDevice.state } });
    t.initRings();
    const generation = t.readCommon(CommonCfg.CONFIG_GENERATION, 1);
    const { fn } = restoreInto(t, t.fn.saveState(), 'split', {}, false);
    expect(fn.isrStatus).toBe(IsrBit.CONFIG);
    expect(t.irq.level).toBe(true);
    expect(t.readConfig(NetConfigOffset.STATUS, 2)).toBe(0);
    expect(t.readCommon(CommonCfg.CONFIG_GENERATION, 1)).toBe((generation + 1) & 0xff);
  });

  it('a receive ring that breaks drops the chains held for a frame, so the state round trips', () => {
    const { t, peer } = holdingRx('split', 2);
    const net = t.fn.device as VirtioNet;
    expect(net.heldRxChains).toHaveLength(2);
    const rxq = t.queues[NET_RECEIVEQ] as DriverQueue;
    t.memory.writeU16(rxq.addr.avail + 2, 100); // avail idx far ahead of a 16-entry ring
    rxq.notify();
    expect(t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(net.heldRxChains).toHaveLength(0);
    peer.send(frame(100, 3));
    const state = JSON.parse(JSON.stringify(t.fn.saveState()));
    expect(state.device.rxHeld).toEqual([]);
    expect(state.queues[NET_RECEIVEQ].engine.broken).toMatch(/avail idx 100 is 98 entries ahead/);
    const { fn } = restoreInto(t, state, 'split');
    expect(JSON.parse(JSON.stringify(fn.saveState()))).toEqual(state);
  });

  it('held chains must match the chains in flight: anything else is refused and changes nothing', () => {
    const { t } = holdingRx('split', 2);
    const state = JSON.parse(JSON.stringify(t.fn.saveState()));
    const fresh = () => {
      const fn = netFunction(device(memoryLinkPair()[0]));
      fn.connect({ memory: t.memory, irq: t.irq });
      return fn;
    };
    const held: number[] = state.device.rxHeld;
    const notInFlight = fresh();
    expect(() => notInFlight.restoreState({ ...state, device: { ...state.device, rxHeld: [...held, 15] } })).toThrow(/chain 15 of queue 0, which is not in flight/);
    expect(notInFlight.deviceStatus).toBe(0);
    const twice = fresh();
    expect(() => twice.restoreState({ ...state, device: { ...state.device, rxHeld: [held[0], held[0]] } })).toThrow(FunctionStateError);
    const dropped = fresh();
    expect(() => dropped.restoreState({ ...state, device: { ...state.device, rxHeld: held.slice(1) } })).toThrow(
      new RegExp(`queue 0: chain ${held[0]} is in flight but the device state does not hold it`),
    );
    expect(dropped.queue(NET_RECEIVEQ)).toBeUndefined();
    const oversized = fresh();
    const runt = btoa('x'.repeat(10));
    expect(() => oversized.restoreState({ ...state, device: { ...state.device, rxBacklog: [runt] } })).toThrow(/rxBacklog\[0\]: a 10-byte frame/);
    const mtu = netFunction(device(memoryLinkPair()[0], { mtu: 9000 }));
    mtu.connect({ memory: t.memory, irq: t.irq });
    expect(() => mtu.restoreState(state)).toThrow(/saved with another MTU/);
  });
});
