import { describe, expect, it } from 'vitest';
import { MemoryBlockBackend } from '../backends/memory-block-backend.ts';
import { memoryLinkPair } from '../backends/memory-frame-link.ts';
import { RUN_PORT } from '../devices/console/testing.ts';
import { manualDefer } from '../devices/testing/manual-defer.ts';
import type { PciBus } from '../virtio/bus.ts';
import { DeviceStatus as S } from '../virtio/constants.ts';
import { FunctionStateError } from '../virtio/state/state-reader.ts';
import { ArrayMemory } from '../virtio/testing/array-memory.ts';
import { DriverMock } from '../virtio/testing/driver-mock.ts';
import type { VirtioNet } from '../devices/net/net.ts';
import { TestIrq } from '../virtio/testing/test-irq.ts';
import { plugLabDevices, type LabDeviceOptions, type LabDevices } from './lab-devices.ts';
import { announceRestoredGuest, quiesceLabDevices, restoreLabDevices, saveLabDevices, type LabDevicesState } from './lab-devices-state.ts';

const RUNNING = S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK;

/** Each function on its own RAM (enough for the driver mock's rings). */
const bus: PciBus = { attach: () => ({ memory: new ArrayMemory(1 << 20), irq: new TestIrq() }) };

function options(extra: Partial<LabDeviceOptions> = {}): LabDeviceOptions {
  return {
    onDeviceError() {},
    blk: { backend: new MemoryBlockBackend(64 * 512), name: 'disk' },
    net: { link: memoryLinkPair()[0], mac: '02:00:00:00:00:01' },
    console: { ports: [RUN_PORT] },
    serveKicksInline: true,
    ...extra,
  };
}

/** A driver on every function, each brought up to DRIVER_OK. */
function boot(devices: LabDevices): DriverMock[] {
  return devices.all.map((fn) => {
    const t = new DriverMock(fn, new ArrayMemory(1 << 20), new TestIrq());
    t.initRings();
    return t;
  });
}

/** The drivers go on with `devices`' functions, over copies of their RAM (what v86 restores). */
function moveDrivers(drivers: DriverMock[], devices: LabDevices): void {
  drivers.forEach((t, i) => {
    const memory = new ArrayMemory(t.memory.size);
    memory.bytes.set(t.memory.bytes);
    t.continueOn(devices.all[i]!, memory);
  });
}

const roundTrip = (state: LabDevicesState): LabDevicesState => JSON.parse(JSON.stringify(state));

describe('saving and restoring the lab devices', () => {
  it('restores every function of a machine with the same devices (a new MAC, a larger disk)', async () => {
    const a = plugLabDevices(bus, options());
    const drivers = boot(a);
    await quiesceLabDevices(a);
    const state = roundTrip(saveLabDevices(a));
    expect(state.functions.map((f) => f.name)).toEqual(['virtio-rng', 'virtio-blk', 'virtio-net', 'virtio-console']);

    const b = plugLabDevices(bus, options({ net: { link: memoryLinkPair()[0], mac: '02:00:00:00:00:99' }, blk: { backend: new MemoryBlockBackend(128 * 512), name: 'disk' } }));
    moveDrivers(drivers, b);
    restoreLabDevices(b, state);
    expect(b.all.map((fn) => fn.deviceStatus)).toEqual([RUNNING, RUNNING, RUNNING, RUNNING]);
    expect(b.blk!.isrStatus).toBe(2); // the disk grew: a config change for the driver
    expect(b.net!.isrStatus).toBe(0); // the new MAC is no change
    // Then the NIC asks the guest to announce itself (GUEST_ANNOUNCE): ANNOUNCE and a config interrupt.
    expect(announceRestoredGuest(b)).toBe(true);
    expect(b.net!.isrStatus).toBe(2);
    expect((b.net!.device as VirtioNet).config.announcePending).toBe(true);
    // and a device works: the rng answers a request on its restored queue
    const rng = drivers[0]!.queues[0]!;
    rng.add({ writable: [8] });
    rng.kick();
    expect(rng.used().map((u) => u.len)).toEqual([8]);
  });

  it('refuses a machine with other functions or another order, naming both', () => {
    const state = roundTrip(saveLabDevices(plugLabDevices(bus, options())));
    const fewer = plugLabDevices(bus, { ...options(), blk: undefined });
    expect(() => restoreLabDevices(fewer, state)).toThrow(
      'lab devices: saved with [virtio-rng, virtio-blk, virtio-net, virtio-console] in slot order, this machine has [virtio-rng, virtio-net, virtio-console]',
    );
    expect(() => restoreLabDevices(fewer, { ...state, format: 'other' } as never)).toThrow(FunctionStateError);
    expect(() => restoreLabDevices(fewer, { ...state, functions: {} } as never)).toThrow(/functions: an object is not an array/);
  });

  it('checks every function before changing any', () => {
    const a = plugLabDevices(bus, options());
    const drivers = boot(a);
    const state = JSON.parse(JSON.stringify(saveLabDevices(a)));
    state.functions[3]!.isr = 9; // the last one is bad
    const b = plugLabDevices(bus, options());
    moveDrivers(drivers, b);
    expect(() => restoreLabDevices(b, state)).toThrow(/virtio-console\.isr: 9/);
    expect(b.all.map((fn) => fn.deviceStatus)).toEqual([0, 0, 0, 0]);
  });

  it('saving refuses outstanding work until quiesceLabDevices() has run it', async () => {
    const { defer } = manualDefer();
    const a = plugLabDevices(bus, options({ serveKicksInline: false, defer }));
    const drivers = boot(a);
    const blk = drivers[1]!.queues[0]!;
    blk.add({ readable: [new Uint8Array(16)], writable: [512, 1] }); // a read of sector 0
    blk.kick();
    expect(() => saveLabDevices(a)).toThrow(/virtio-blk: not quiesced \(a deferred kick\)/);
    await quiesceLabDevices(a);
    expect(blk.used().map((u) => u.len)).toEqual([513]);
    expect(saveLabDevices(a).functions).toHaveLength(4);
  });
});
