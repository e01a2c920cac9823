import { describe, expect, it } from 'vitest';
import { DeviceStatus, Feature, featureBit } from '../../virtio/constants.ts';
import { DriverMock } from '../../virtio/testing/driver-mock.ts';
import { MAX_PENDING_CONTROL, MAX_TX_BUFFER, VirtioConsole } from './console.ts';
import { ConsoleConfigOffset } from './config.ts';
import { encodeControl } from './control.ts';
import { ConsoleControl as C, ConsoleFeature, consoleQueueNames } from './spec.ts';
import { ConsoleHarness, RUN_PORT } from './testing.ts';
import { manualDefer } from '../testing/manual-defer.ts';

const enc = new TextEncoder();
const bytes = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** A driver past the handshake, and the run port's onOpen reports. */
function readyRunPort() {
  const t = ConsoleHarness.create();
  t.handshake();
  const port = t.device.port(RUN_PORT)!;
  const seen: boolean[] = [];
  port.onOpen = (open) => seen.push(open);
  return { t, port, seen };
}

describe('virtio-console', () => {
  it('is a modern PCI function with device id 3, a queue pair per port plus the control pair, and its config', () => {
    const t = DriverMock.create(new VirtioConsole({ ports: [RUN_PORT], cols: 100, rows: 40 }));
    expect(new DataView(t.fn.configSpace.buffer).getUint16(2, true)).toBe(0x1043);
    expect(t.fn.numQueues).toBe(6);
    expect(t.readConfig(ConsoleConfigOffset.COLS, 2)).toBe(100);
    expect(t.readConfig(ConsoleConfigOffset.ROWS, 2)).toBe(40);
    expect(t.readConfig(ConsoleConfigOffset.MAX_NR_PORTS, 4)).toBe(2);
    t.writeConfig(ConsoleConfigOffset.MAX_NR_PORTS, 4, 9); // read-only
    expect(t.readConfig(ConsoleConfigOffset.MAX_NR_PORTS, 4)).toBe(2);
    const offered = t.deviceFeatures();
    expect(offered & featureBit(ConsoleFeature.VIRTIO_CONSOLE_F_MULTIPORT)).not.toBe(0n);
    expect(offered & featureBit(ConsoleFeature.VIRTIO_CONSOLE_F_EMERG_WRITE)).toBe(0n);
    expect(consoleQueueNames(2)).toEqual(['receiveq0', 'transmitq0', 'control receiveq', 'control transmitq', 'receiveq1', 'transmitq1']);
  });

  it('refuses bad or repeated port names', () => {
    expect(() => new VirtioConsole({ ports: ['has space'] })).toThrow(/bad port name/);
    expect(() => new VirtioConsole({ ports: [''] })).toThrow(/bad port name/);
    expect(() => new VirtioConsole({ ports: ['a', 'a'] })).toThrow(/differ/);
  });

  it('refuses a queue size or backlog that would let one kick touch more than CONSOLE_KICK_BYTES', () => {
    expect(() => new VirtioConsole({ queueSize: 128 })).toThrow(/kick budget/);
    expect(() => new VirtioConsole({ backlogBytes: 4 << 20 })).toThrow(/kick budget/);
    expect(() => new VirtioConsole({ queueSize: 64, backlogBytes: 2 << 20 })).not.toThrow();
  });

  it('runs the control handshake as Linux drives it: ports added, console port, name, host end open', () => {
    const t = ConsoleHarness.create();
    t.postControl(16);
    t.sendControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 });
    expect(t.controls()).toEqual([
      { id: 0, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 0 },
      { id: 1, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 0 },
    ]);
    t.sendControl({ id: 0, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 });
    expect(t.controls()).toEqual([{ id: 0, event: C.VIRTIO_CONSOLE_CONSOLE_PORT, value: 1 }]);
    t.sendControl({ id: 1, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 });
    expect(t.controls()).toEqual([
      { id: 1, event: C.VIRTIO_CONSOLE_PORT_NAME, value: 1, name: RUN_PORT },
      { id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 },
    ]);
    expect(t.device.ports.map((p) => p.ready)).toEqual([true, true]);
    expect(t.driver.errors).toEqual([]);
  });

  it('tracks PORT_OPEN from the guest and tells the host on each change only', () => {
    const { t, port, seen } = readyRunPort();
    t.openPort(1);
    t.openPort(1); // repeated: no news
    expect(port.guestOpen).toBe(true);
    expect(t.device.stats.openPorts).toBe(1);
    t.openPort(1, false);
    expect(seen).toEqual([true, false]);
    expect(t.device.stats.controlIgnored).toBe(1);
  });

  it('hands the guest bytes of a port to the host exactly, whatever the descriptor split', () => {
    const t = ConsoleHarness.create({ features: undefined });
    t.handshake();
    const got: Uint8Array[] = [];
    t.device.port(RUN_PORT)!.onData = (b) => got.push(b);
    const console: Uint8Array[] = [];
    t.device.ports[0].onData = (b) => console.push(b);
    t.guestWrite(1, bytes(5), bytes(300, 1), bytes(1, 2));
    t.guestWrite(0, enc.encode('hvc0\r\n'));
    expect(got).toHaveLength(1);
    expect([...got[0]]).toEqual([...bytes(5), ...bytes(300, 1), ...bytes(1, 2)]);
    expect(new TextDecoder().decode(console[0])).toBe('hvc0\r\n');
    expect(t.device.stats.txBytes).toBe(312);
  });

  it('with defer, serves a named port\'s writes in one batch per slice (kicks suppressed meanwhile), hvc0 inline', () => {
    const later = manualDefer();
    const t = ConsoleHarness.create({ defer: later.defer });
    t.handshake();
    const got: Uint8Array[] = [];
    t.device.port(RUN_PORT)!.onData = (b) => got.push(b);
    const hvc: Uint8Array[] = [];
    t.device.ports[0].onData = (b) => hvc.push(b);
    const q = t.txq(1);
    q.add({ readable: [bytes(10)] });
    expect(q.kick()).toBe(true);
    q.add({ readable: [bytes(20, 1)] });
    expect(q.kick()).toBe(false); // the device asked for no kicks while a drain is scheduled
    expect(got).toEqual([]);
    t.guestWrite(0, enc.encode('x')); // hvc0: at once
    expect(hvc).toHaveLength(1);
    later.settle();
    expect(got.map((b) => b.length)).toEqual([10, 20]);
    expect(q.used()).toHaveLength(2);
    q.add({ readable: [bytes(5)] });
    expect(q.kick()).toBe(true); // kicks wanted again
  });

  it('reads at most 64 KiB of one transmit buffer', () => {
    const t = ConsoleHarness.create({ memorySize: 4 << 20 });
    t.handshake();
    const got: Uint8Array[] = [];
    t.device.port(RUN_PORT)!.onData = (b) => got.push(b);
    t.guestWrite(1, bytes(MAX_TX_BUFFER + 100));
    expect(got[0].length).toBe(MAX_TX_BUFFER);
    expect(t.device.stats.txTruncated).toBe(1);
  });

  it('queues host bytes until the guest posts buffers, then spreads them over as many as it takes', () => {
    const t = ConsoleHarness.create();
    t.handshake();
    const port = t.device.port(RUN_PORT)!;
    expect(port.write(bytes(100))).toBe(true);
    expect(port.write(bytes(50, 7))).toBe(true);
    expect(port.backlog.bytes).toBe(150);
    t.postRx(1, [64, 64]);
    expect([...t.received(1)]).toEqual([...bytes(100), ...bytes(50, 7)].slice(0, 128));
    t.postRx(1, [4096]);
    expect([...t.received(1)]).toEqual([...bytes(100), ...bytes(50, 7)].slice(128));
    // With buffers already posted, a write goes in at once.
    t.postRx(1, [4096]);
    port.write(enc.encode('echo hi\n'));
    expect(new TextDecoder().decode(t.received(1))).toBe('echo hi\n');
    expect(t.device.stats.rxBytes).toBe(158);
  });

  it('refuses host writes beyond the backlog bound, whole', () => {
    const t = ConsoleHarness.create({ backlogBytes: 1000 });
    t.handshake();
    const port = t.device.port(RUN_PORT)!;
    expect(port.write(bytes(900))).toBe(true);
    expect(port.write(bytes(101))).toBe(false);
    expect(port.write(bytes(100))).toBe(true);
    expect(port.backlog.bytes).toBe(1000);
    expect(t.device.stats.rxDropsBacklogFull).toBe(1);
  });

  it('ignores short, unknown, out-of-range and repeated control messages, and bounds its answers', () => {
    const t = ConsoleHarness.create();
    t.sendControl({ id: 1, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 }); // before DEVICE_READY
    t.sendControl({ id: 0, event: 0, value: 0 }, new Uint8Array(5)); // short
    t.sendControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 });
    t.sendControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 }); // repeated
    t.sendControl({ id: 7, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 }); // no port 7
    t.sendControl({ id: 0xffffffff, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: 1 });
    t.sendControl({ id: 1, event: 99, value: 1 }); // unknown event
    t.sendControl({ id: 1, event: C.VIRTIO_CONSOLE_RESIZE, value: 1 }); // device → driver only
    expect(t.device.stats.controlIgnored).toBe(7);
    expect(t.device.stats.controlIn).toBe(8);
    // No control buffers were posted: the two DEVICE_ADDs wait, then arrive.
    t.postControl(4);
    expect(t.controls().map((m) => m.event)).toEqual([C.VIRTIO_CONSOLE_DEVICE_ADD, C.VIRTIO_CONSOLE_DEVICE_ADD]);
    expect(t.driver.errors).toEqual([]);
    expect(MAX_PENDING_CONTROL).toBeGreaterThanOrEqual(2 * t.device.ports.length + 1);
  });

  it('returns a control buffer too small for the message empty and keeps the message for the next', () => {
    const t = ConsoleHarness.create();
    t.sendControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 });
    t.ctrlRx.add({ writable: [4] });
    t.ctrlRx.add({ writable: [8] });
    t.ctrlRx.add({ writable: [8] });
    t.ctrlRx.kick();
    const used = t.ctrlRx.used();
    expect(used.map((u) => u.len)).toEqual([0, 8, 8]);
    expect(encodeControl({ id: 1, event: C.VIRTIO_CONSOLE_DEVICE_ADD, value: 0 })).toEqual(used[2].data);
  });

  it('a reset closes open ports towards the host and drops what waited for the old driver', () => {
    const { t, port, seen } = readyRunPort();
    t.openPort(1);
    port.write(bytes(10));
    t.driver.reset();
    expect(seen).toEqual([true, false]);
    expect(port.ready).toBe(false);
    expect(port.backlog.bytes).toBe(0);
    // A new driver starts over.
    t.driver.init();
    expect(t.device.ports.every((p) => !p.ready)).toBe(true);
  });

  it('without MULTIPORT, port 0 alone works on the first queue pair', () => {
    const features = featureBit(Feature.VIRTIO_F_VERSION_1);
    const t = ConsoleHarness.create({ features });
    const got: Uint8Array[] = [];
    t.device.ports[0].onData = (b) => got.push(b);
    t.guestWrite(0, enc.encode('early'));
    expect(new TextDecoder().decode(got[0])).toBe('early');
    t.device.ports[0].write(enc.encode('typed'));
    t.postRx(0, [16]);
    expect(new TextDecoder().decode(t.received(0))).toBe('typed');
    // The control queues are there but say nothing.
    t.sendControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 });
    expect(t.device.stats.controlIn).toBe(0);
  });

  it('survives a guest that breaks a ring while the host writes', () => {
    const t = ConsoleHarness.create();
    t.handshake();
    t.rxq(1).publish(500); // head ≥ queue size
    expect(t.device.port(RUN_PORT)!.write(bytes(4))).toBe(true);
    expect(t.driver.errors).toEqual(['queue 4: avail ring[0]: head 500 ≥ queue size 64']);
    expect(t.driver.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET).toBeTruthy();
  });
});
