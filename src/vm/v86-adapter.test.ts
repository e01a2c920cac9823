/**
 * The adapter against the real v86 (its PCI and port I/O code, CPU not started): guest config
 * cycles through 0xcf8/0xcfc reach our function's config hooks, and v86 keeps what it owns.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceStatus as S, IsrBit, PciCapType } from '../virtio/constants.ts';
import { CommonCfg as C } from '../virtio/pci/layout.ts';
import { VirtioPciFunction } from '../virtio/pci/virtio-pci-function.ts';
import { LoopbackDevice } from '../virtio/testing/loopback-device.ts';
import { loadGuestImageFromDir } from './node/node-machine.ts';
import { V86Host } from './v86-adapter.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- reaching into v86 to play the guest CPU */
describe('V86PciBus: config space through the real v86', () => {
  let host: V86Host;
  let io: any;
  const device = new LoopbackDevice({ queues: 1, maxQueueSize: 16 });
  const fn = new VirtioPciFunction(device, { barKind: 'io' });
  let slot = 0;

  const address = (dev: number, offset: number) => (0x80000000 | (dev << 11) | (offset & 0xfc)) | 0;
  const cfgRead = (offset: number, width: 1 | 2 | 4, dev = slot): number => {
    io.port_write32(0xcf8, address(dev, offset));
    if (width === 1) return io.port_read8(0xcfc + (offset & 3));
    if (width === 2) return io.port_read16(0xcfc + (offset & 2));
    return io.port_read32(0xcfc) >>> 0;
  };
  const cfgWrite = (offset: number, width: 1 | 2 | 4, value: number): void => {
    io.port_write32(0xcf8, address(slot, offset));
    if (width === 1) io.port_write8(0xcfc + (offset & 3), value);
    else if (width === 2) io.port_write16(0xcfc + (offset & 2), value);
    else io.port_write32(0xcfc, value | 0);
  };
  let cap = 0;
  const windowAccess = (barOffset: number, length: 1 | 2 | 4, value?: number): number => {
    cfgWrite(cap + 4, 1, 0);
    cfgWrite(cap + 8, 4, barOffset);
    cfgWrite(cap + 12, 4, length);
    if (value === undefined) return cfgRead(cap + 16, 4) & (length === 4 ? 0xffffffff : (1 << (8 * length)) - 1);
    cfgWrite(cap + 16, 4, value);
    return 0;
  };

  beforeAll(async () => {
    const image = await loadGuestImageFromDir();
    const wasm = await WebAssembly.compile(await readFile(createRequire(import.meta.url).resolve('v86/build/v86.wasm')));
    host = await V86Host.create({ ...image, cmdline: image.manifest.cmdline, memoryMiB: image.manifest.memoryMiB, wasm, onSerialByte: () => {} });
    io = (host as any).emulator.v86.cpu.io;
    fn.connect(host.pciBus.attach(fn));
    slot = fn.location()!.slot;
    for (let at = cfgRead(0x34, 1); at !== 0; at = cfgRead(at + 1, 1)) if (cfgRead(at + 3, 1) === PciCapType.PCI_CFG) cap = at;
  }, 60_000);

  afterAll(async () => {
    await host?.destroy();
  });

  it('reads our header and capability list through 0xcfc, other devices as before', () => {
    expect(cfgRead(0, 4)).toBe(0x1040_1af4 + (0x3f << 16));
    expect(cfgRead(0x2e, 2)).toBe(0x40 + 0x3f);
    expect(cap).toBeGreaterThanOrEqual(0x40);
    expect(cfgRead(0, 2, 0)).toBe(0x8086); // v86's host bridge, untouched
  });

  it('the PCI_CFG window reaches BAR0 (§4.1.4.9)', () => {
    expect(windowAccess(C.NUM_QUEUES, 2)).toBe(1);
    windowAccess(C.DEVICE_STATUS, 1, S.ACKNOWLEDGE);
    expect(fn.deviceStatus).toBe(S.ACKNOWLEDGE);
    windowAccess(C.DEVICE_STATUS, 1, 0);
    expect(fn.deviceStatus).toBe(0);
  });

  it('the status register shows Interrupt Status while ISR is set (§4.1.4.5.1)', () => {
    for (const [select, value] of [
      [0, 0],
      [1, 1], // VERSION_1
    ]) {
      windowAccess(C.DRIVER_FEATURE_SELECT, 4, select);
      windowAccess(C.DRIVER_FEATURE, 4, value);
    }
    for (const status of [S.ACKNOWLEDGE, S.DRIVER, S.FEATURES_OK, S.DRIVER_OK]) windowAccess(C.DEVICE_STATUS, 1, fn.deviceStatus | status);
    expect(fn.deviceStatus & S.DRIVER_OK).toBeTruthy();
    expect(cfgRead(0x06, 2) & 0x08).toBe(0);
    device.deviceConfig.setU32(0, 0x5a5a0003);
    expect(cfgRead(0x06, 2) & 0x08).toBe(0x08);
    expect((cfgRead(0x04, 4) >>> 16) & 0x18).toBe(0x18);
    windowAccess(fn.layout.isr.offset, 1, 0); // a write (ISR ignores it) must not read, so must not clear
    expect(fn.isrStatus).toBe(IsrBit.CONFIG);
    expect(windowAccess(fn.layout.isr.offset, 1)).toBe(IsrBit.CONFIG);
    expect(cfgRead(0x06, 2) & 0x08).toBe(0);
    expect(fn.stats.errors).toBe(0);
  });

  it('v86 keeps the bytes it owns: BAR relocation, command, interrupt line; the pin survives a dword write', () => {
    cfgWrite(0x10, 4, 0xc001);
    expect(cfgRead(0x10, 4)).toBe(0xc001);
    expect(fn.location()!.bar0).toBe(0xc000);
    expect(io.port_read16(0xc000 + C.NUM_QUEUES)).toBe(1); // BAR0 answers at its new place
    cfgWrite(0x04, 2, 0x0005);
    expect(cfgRead(0x04, 2)).toBe(0x0005);
    cfgWrite(0x3c, 4, 0xffff_ff0b); // line 11; pin, min_gnt, max_lat are read-only
    expect(cfgRead(0x3c, 1)).toBe(0x0b);
    expect(cfgRead(0x3d, 1)).toBe(1);
    const live = (host as any).emulator.v86.cpu.devices.pci.device_spaces[slot << 3] as Int32Array;
    expect((live[15]! >>> 8) & 0xff).toBe(1); // v86 routes the IRQ from its copy of the pin
  });
});
