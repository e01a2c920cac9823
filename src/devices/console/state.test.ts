import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtioPciFunction } from '../../virtio/pci/virtio-pci-function.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { FunctionStateError } from '../../virtio/state/state-reader.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { concatBytes } from '../testing/equal-bytes.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';
import { hex, restoreProperty, type RestoreSubject, type RestoreWorld } from '../testing/restore-property.ts';
import { VirtioConsole, type VirtioConsoleOptions } from './console.ts';
import { encodeControl, parseControl } from './control.ts';
import { consoleDevice } from './index.ts';
import { CONTROL_RECEIVEQ, CONTROL_TRANSMITQ, ConsoleControl as C, receiveqOf, transmitqOf } from './spec.ts';
import { RUN_PORT } from './testing.ts';

const PORTS = 2; // the console and run()'s port
const text = (s: string) => new TextEncoder().encode(s);

/** The host's side of the ports: what it heard, and whether it thinks the guest has each open. */
interface ConsoleHost {
  readonly open: boolean[];
}

interface ConsoleWorld extends RestoreWorld {
  readonly device: VirtioConsole;
  readonly host: ConsoleHost;
  readonly settle: () => void;
  readonly ring: RingLayout;
}

type ConsoleStep =
  | { kind: 'control'; event: number; id: number; value: number }
  | { kind: 'post-control'; sizes: number[]; kick: boolean }
  | { kind: 'guest-write'; port: number; len: number; seed: number; kick: boolean }
  | { kind: 'host-write'; port: number; len: number; seed: number }
  | { kind: 'post-rx'; port: number; sizes: number[]; kick: boolean };

function device(options: VirtioConsoleOptions = {}): VirtioConsole {
  return new VirtioConsole({ ports: [RUN_PORT], queueSize: 16, backlogBytes: 2048, ...options });
}

function consoleFunction(con: VirtioConsole, ring: RingLayout = 'split'): VirtioPciFunction {
  return new VirtioPciFunction(con, { ring, deviceState: consoleDevice.state });
}

/** Wire the host's ends: data and open/close go to `log` (an open it already knew of is no news). */
function wireHost(con: VirtioConsole, host: ConsoleHost, log: string[]): void {
  for (const port of con.ports) {
    port.onData = (bytes) => log.push(`port ${port.id} data ${hex(bytes)}`);
    port.onOpen = (open) => {
      if (host.open[port.id] === open) return;
      host.open[port.id] = open;
      log.push(`port ${port.id} open ${open}`);
    };
  }
}

function bytes(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (seed + i * 5) & 0xff);
}

/** What Linux does at probe: control buffers, DEVICE_READY, every port ready (5 answers). */
function handshake(driver: DriverMock, buffers = 8): void {
  const rx = driver.queues[CONTROL_RECEIVEQ]!;
  const tx = driver.queues[CONTROL_TRANSMITQ]!;
  for (let i = 0; i < buffers; i++) rx.add({ writable: [64] });
  rx.kick();
  tx.add({ readable: [encodeControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 })] });
  for (let id = 0; id < PORTS; id++) tx.add({ readable: [encodeControl({ id, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 })] });
  tx.kick();
}

const portArb = fc.integer({ min: 0, max: PORTS - 1 });

const consoleSubject: RestoreSubject<ConsoleWorld, ConsoleStep> = {
  name: 'virtio-console',
  queues: 2 + 2 * PORTS,
  steps: fc.oneof(
    fc.record({
      kind: fc.constant('control' as const),
      event: fc.constantFrom(C.VIRTIO_CONSOLE_PORT_OPEN, C.VIRTIO_CONSOLE_PORT_OPEN, C.VIRTIO_CONSOLE_PORT_READY, C.VIRTIO_CONSOLE_DEVICE_READY, 99),
      id: fc.integer({ min: 0, max: PORTS }),
      value: fc.constantFrom(0, 1),
    }),
    fc.record({ kind: fc.constant('post-control' as const), sizes: fc.array(fc.integer({ min: 4, max: 64 }), { minLength: 1, maxLength: 3 }), kick: fc.boolean() }),
    fc.record({ kind: fc.constant('guest-write' as const), port: portArb, len: fc.integer({ min: 1, max: 200 }), seed: fc.nat(255), kick: fc.boolean() }),
    fc.record({ kind: fc.constant('host-write' as const), port: portArb, len: fc.integer({ min: 1, max: 700 }), seed: fc.nat(255) }),
    fc.record({ kind: fc.constant('post-rx' as const), port: portArb, sizes: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 3 }), kick: fc.boolean() }),
  ),
  create(ring, drop, log) {
    const { defer, settle } = manualDefer();
    const con = device({ defer });
    const host: ConsoleHost = { open: [] };
    wireHost(con, host, log);
    const driver = DriverMock.create(con, { memorySize: 1 << 20, pci: { ring, deviceState: consoleDevice.state } });
    driver.initRings({ features: driver.deviceFeatures() & ~drop });
    // Too few control buffers: answers wait in the device until the traffic posts more.
    handshake(driver, 3);
    return { driver, device: con, host, settle, ring };
  },
  rebuild(old, log) {
    // A new machine's host side is wired before the restore, as the lab's worker does.
    const { defer, settle } = manualDefer();
    const con = device({ defer });
    wireHost(con, old.host, log);
    return { world: { driver: old.driver, device: con, host: old.host, settle, ring: old.ring }, fn: consoleFunction(con, old.ring) };
  },
  step({ driver, device: con }, step, log) {
    const add = (queue: number, spec: { readable?: Uint8Array[]; writable?: number[] }, kick: boolean) => {
      const q = driver.queues[queue]!;
      if (q.freeDescriptors === 0) return;
      q.add(spec);
      if (kick) q.kick();
    };
    switch (step.kind) {
      case 'control':
        return add(CONTROL_TRANSMITQ, { readable: [encodeControl(step)] }, true);
      case 'post-control':
        for (const size of step.sizes) add(CONTROL_RECEIVEQ, { writable: [size] }, false);
        if (step.kick) driver.queues[CONTROL_RECEIVEQ]!.kick();
        return;
      case 'guest-write':
        return add(transmitqOf(step.port), { readable: [bytes(step.len, step.seed)] }, step.kick);
      case 'host-write':
        log.push(`host write ${step.port} ${con.ports[step.port]!.write(bytes(step.len, step.seed))}`);
        return;
      case 'post-rx':
        for (const size of step.sizes) add(receiveqOf(step.port), { writable: [size] }, false);
        if (step.kick) driver.queues[receiveqOf(step.port)]!.kick();
        return;
    }
  },
  settle: (world) => world.settle(),
};

/** Save `t`'s function and restore it into a fresh console (its host side wired first) over a copy of t's RAM. */
function restoreInto(t: DriverMock, ring: RingLayout = 'split', options: VirtioConsoleOptions = {}) {
  const state = JSON.parse(JSON.stringify(t.fn.saveState()));
  const memory = new ArrayMemory(t.memory.size);
  memory.bytes.set(t.memory.bytes);
  const con = device(options);
  const opened: boolean[] = [];
  const data: Uint8Array[] = [];
  const run = con.port(RUN_PORT)!;
  run.onOpen = (open) => opened.push(open);
  run.onData = (b) => data.push(b);
  const fn = consoleFunction(con, ring);
  t.continueOn(fn, memory);
  fn.restoreState(state);
  return { con, fn, opened, data, state };
}

/** A console through the handshake, its run() port opened by the guest, control buffers collected. */
function agentUp(ring: RingLayout = 'split') {
  const t = DriverMock.create(device(), { pci: { ring, deviceState: consoleDevice.state } });
  t.initRings();
  handshake(t);
  t.queues[CONTROL_TRANSMITQ]!.add({ readable: [encodeControl({ id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 })] });
  t.queues[CONTROL_TRANSMITQ]!.kick();
  t.queues[CONTROL_TRANSMITQ]!.used();
  t.queues[CONTROL_RECEIVEQ]!.used();
  return t;
}

describe('virtio-console snapshots', () => {
  for (const ring of RING_LAYOUTS) {
    it(onRing('traffic goes on after save/restore as if nothing happened', ring), async () => {
      await fc.assert(restoreProperty(consoleSubject, ring), { numRuns: 100 });
    });

    it(onRing("run()'s port stays open: the host hears it again and both directions work", ring), () => {
      const t = agentUp(ring);
      const rx = t.queues[receiveqOf(1)]!;
      rx.add({ writable: [64] }); // the agent's read, pending across the snapshot
      rx.kick();
      const { con, opened, data } = restoreInto(t, ring);
      const run = con.port(RUN_PORT)!;
      expect(run.guestOpen).toBe(true);
      expect(run.ready).toBe(true);
      expect(opened).toEqual([true]);
      expect(con.stats.openPorts).toBe(1);
      expect(run.write(text('echo hi\n'))).toBe(true);
      expect(new TextDecoder().decode(concatBytes(rx.used().map((u) => u.data)))).toBe('echo hi\n');
      const tx = t.queues[transmitqOf(1)]!;
      tx.add({ readable: [text('hi\n')] });
      tx.kick();
      expect(new TextDecoder().decode(concatBytes(data))).toBe('hi\n');
      // and it closes as it would have
      t.queues[CONTROL_TRANSMITQ]!.add({ readable: [encodeControl({ id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 0 })] });
      t.queues[CONTROL_TRANSMITQ]!.kick();
      expect(opened).toEqual([true, false]);
    });
  }

  it('bytes waiting for the guest and control messages waiting for buffers come across', () => {
    const t = DriverMock.create(device(), { pci: { deviceState: consoleDevice.state } });
    t.initRings();
    // DEVICE_READY with no control buffers posted: the DEVICE_ADD answers wait in the device.
    t.queues[CONTROL_TRANSMITQ]!.add({ readable: [encodeControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 })] });
    t.queues[CONTROL_TRANSMITQ]!.kick();
    expect(t.fn.saveState().device).toMatchObject({ deviceReady: true, controlPending: [expect.any(String), expect.any(String)] });
    const { con } = restoreInto(t);
    const waiting = con.port(RUN_PORT)!;
    expect(waiting.write(text('queued'))).toBe(true); // guest not ready: held in the backlog
    const again = JSON.parse(JSON.stringify(t.fn.saveState()));
    expect(again.device.ports[1].backlog).toBe(btoa('queued'));
    const ctrl = t.queues[CONTROL_RECEIVEQ]!;
    for (let i = 0; i < 4; i++) ctrl.add({ writable: [64] });
    ctrl.kick();
    expect(ctrl.used().map((u) => parseControl(u.data))).toEqual([
      { id: 0, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 0 },
      { id: 1, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 0 },
    ]);
    // the backlog survives a second snapshot too
    const second = restoreInto(t);
    const rx = t.queues[receiveqOf(1)]!;
    rx.add({ writable: [64] });
    rx.kick();
    expect(new TextDecoder().decode(rx.used()[0]!.data)).toBe('queued');
    expect(second.con.port(RUN_PORT)!.backlog.bytes).toBe(0);
  });

  it('other ports or another console size are refused, leaving the function untouched', () => {
    const t = agentUp();
    const state = JSON.parse(JSON.stringify(t.fn.saveState()));
    const renamed = consoleFunction(device({ ports: ['org.other'] }));
    renamed.connect({ memory: t.memory, irq: t.irq });
    expect(() => renamed.restoreState(state)).toThrow(/ports\[1\]\.name: port 1 was "org\.virtio-lab\.run", here it is "org\.other"/);
    expect(renamed.deviceStatus).toBe(0);
    const wider = consoleFunction(device({ cols: 132 }));
    wider.connect({ memory: t.memory, irq: t.irq });
    expect(() => wider.restoreState(state)).toThrow(FunctionStateError);
    const tooMuch = consoleFunction(device());
    tooMuch.connect({ memory: t.memory, irq: t.irq });
    const big = btoa('x'.repeat(3000));
    state.device.ports[1].backlog = big;
    expect(() => tooMuch.restoreState(state)).toThrow(/ports\[1\]\.backlog: string of 4000 characters, at most 2732/);
    expect(tooMuch.queue(0)).toBeUndefined();
  });
});
