import { describe, expect, it } from 'vitest';
import type { AccessWidth } from '../bus.ts';
import { ConfigSpace } from '../config-space.ts';
import { DeviceStatus as S, Feature, IsrBit, PciCapType, featureBit, features } from '../constants.ts';
import type { DeviceContext, VirtioDevice } from '../device.ts';
import { ArrayMemory } from '../testing/array-memory.ts';
import { DriverMock } from '../testing/driver-mock.ts';
import { LoopbackDevice } from '../testing/loopback-device.ts';
import { PciConfigDriver } from '../testing/pci-config-driver.ts';
import { TestIrq } from '../testing/test-irq.ts';
import { ErrorCoalescer, errorKind, maxReportsFor } from './error-reports.ts';
import { CommonCfg as C } from './layout.ts';
import { VirtioPciFunction } from './virtio-pci-function.ts';

const V1 = featureBit(Feature.VIRTIO_F_VERSION_1);

function mock(opts: { byteAccess?: boolean; barKind?: 'io' | 'mem'; queues?: number; held?: boolean } = {}) {
  const device = new LoopbackDevice({ queues: opts.queues ?? 2, maxQueueSize: 16, autoComplete: !opts.held });
  const t = DriverMock.create(device, { memorySize: 1 << 16, byteAccess: opts.byteAccess, pci: { barKind: opts.barKind } });
  return { device, t };
}

describe('PCI configuration space', () => {
  it('identifies a modern virtio function with INTA and a capability list', () => {
    const fn = new VirtioPciFunction(new LoopbackDevice(), { barKind: 'io' });
    const c = fn.configSpace;
    const dv = new DataView(c.buffer);
    expect(c.length).toBe(256);
    expect(dv.getUint16(0x00, true)).toBe(0x1af4);
    expect(dv.getUint16(0x02, true)).toBe(0x1040 + 0x3f);
    expect(dv.getUint16(0x06, true) & 0x10).toBe(0x10);
    expect(c[0x08]).toBe(1);
    expect(dv.getUint32(0x08, true) >>> 8).toBe(0xff0000);
    expect(c[0x0e]).toBe(0);
    expect(dv.getUint32(0x10, true)).toBe(1); // I/O BAR type bit
    expect(dv.getUint16(0x2c, true)).toBe(0x1af4);
    expect(dv.getUint16(0x2e, true)).toBe(0x40 + 0x3f); // ≥ 0x40 for non-transitional devices (§4.1.2.1)
    expect(c[0x3d]).toBe(1);
    expect(c[0x34]).toBe(0x40);
    const caps = DriverMock.parseCaps(c);
    expect(caps.common).toEqual({ offset: 0, length: 0x38 });
    expect(caps.isr.offset).toBe(0x38);
    expect(caps.notify).toEqual({ offset: 0x3c, length: 4, multiplier: 4 });
    expect(caps.device).toEqual({ offset: 0x40, length: 8 });
    expect(fn.bars[0]).toMatchObject({ kind: 'io', size: 128 });
    // cap types in chain order
    const types: number[] = [];
    for (let at = c[0x34]; at; at = c[at + 1]) types.push(c[at + 3]);
    expect(types).toEqual([PciCapType.COMMON_CFG, PciCapType.NOTIFY_CFG, PciCapType.ISR_CFG, PciCapType.DEVICE_CFG, PciCapType.PCI_CFG]);
  });

  it('has a VIRTIO_PCI_CAP_PCI_CFG window into BAR0 (§4.1.4.9): negotiation and a request through config space only', () => {
    const { t, device } = mock({ queues: 1 });
    const pci = new PciConfigDriver(t.fn);
    expect(pci.read(pci.cap + 2, 1)).toBe(20); // cap_len: virtio_pci_cfg_cap
    const common = (reg: number) => t.caps.common.offset + reg;
    expect(pci.windowRead(common(C.NUM_QUEUES), 2)).toBe(1);
    pci.windowWrite(common(C.DEVICE_FEATURE_SELECT), 4, 1);
    expect(pci.windowRead(common(C.DEVICE_FEATURE), 4)).toBe(1); // VERSION_1
    expect(pci.windowRead(common(C.DEVICE_FEATURE) + 1, 1)).toBe(0);
    pci.windowWrite(common(C.DEVICE_STATUS), 1, S.ACKNOWLEDGE);
    expect(t.status).toBe(S.ACKNOWLEDGE);
    expect(pci.windowRead(t.caps.device!.offset, 4)).toBe(0x5a5a0001);
    // A request: rings set up directly, the kick and the ISR read through the window.
    const [q] = t.init();
    q.add({ writable: [2] });
    pci.windowWrite(t.caps.notify.offset, 2, 0);
    expect(device.popped).toHaveLength(1);
    expect(pci.interruptStatus()).toBe(true);
    expect(pci.windowRead(t.caps.isr.offset, 1)).toBe(IsrBit.QUEUE); // read-to-clear, as a direct read
    expect(t.irq.level).toBe(false);
    expect(t.fn.isrStatus).toBe(0);
    expect(t.errors).toEqual([]);
  });

  it('PCI_CFG window: settings §4.1.4.9.2 forbids make no BAR access and read as 0', () => {
    const { t } = mock();
    const pci = new PciConfigDriver(t.fn);
    t.status = S.ACKNOWLEDGE;
    const data = pci.cap + 16;
    const statusAt = t.caps.common.offset + C.DEVICE_STATUS;
    for (const [bar, offset, length] of [
      [1, statusAt, 1], // only BAR0 holds virtio structures
      [0, statusAt, 3], // length 1, 2 or 4
      [0, statusAt + 1, 2], // misaligned
      [0, t.fn.bars[0]!.size - 2, 4], // outside every structure
      [0, t.caps.isr.offset + 2, 4], // straddles ISR and notify
    ]) {
      pci.aim(bar!, offset!, length!);
      pci.write(data, 4, 0xff);
      expect(pci.read(data, 4)).toBe(0);
    }
    expect(t.status).toBe(S.ACKNOWLEDGE);
    expect(t.fn.pciCfg.rejected).toBe(10);
    expect(t.errors).toEqual([]);
    // Read-only config bytes stay; the window's own fields read back.
    pci.write(0, 4, 0);
    pci.write(0x2c, 4, 0);
    expect(pci.read(0, 2)).toBe(0x1af4);
    pci.aim(0, 0x12, 2);
    expect(pci.read(pci.cap + 8, 4)).toBe(0x12);
    expect(pci.read(pci.cap + 12, 4)).toBe(2);
    expect(pci.read(300, 4)).toBe(0);
    expect(pci.read(254, 4)).toBe(0);
  });

  it('the PCI status Interrupt Status bit mirrors ISR (§4.1.4.5.1)', () => {
    const { t, device } = mock();
    const pci = new PciConfigDriver(t.fn);
    const [q] = t.init();
    expect(pci.interruptStatus()).toBe(false);
    expect(pci.read(0x06, 2) & 0x10).toBe(0x10); // the capability list bit stays
    q.add({ writable: [1] });
    q.kick();
    expect(pci.interruptStatus()).toBe(true);
    expect(pci.read(0x04, 4) >>> 16 & 0x08).toBe(0x08); // in a 32-bit read of command + status too
    t.readIsr();
    expect(pci.interruptStatus()).toBe(false);
    device.ctx!.configChanged();
    expect(pci.interruptStatus()).toBe(true);
    pci.write(0x06, 2, 0xffff); // status bits are not the driver's to set or clear here
    expect(pci.interruptStatus()).toBe(true);
    t.status = 0;
    expect(pci.interruptStatus()).toBe(false);
  });

  it('memory BAR: type bits 0, 4 KiB by default; sizes are checked', () => {
    const fn = new VirtioPciFunction(new LoopbackDevice(), { barKind: 'mem' });
    expect(new DataView(fn.configSpace.buffer).getUint32(0x10, true)).toBe(0);
    expect(fn.bars[0]).toMatchObject({ kind: 'mem', size: 4096 });
    expect(() => new VirtioPciFunction(new LoopbackDevice(), { barKind: 'io', barSize: 512 })).toThrow(RangeError);
    expect(() => new VirtioPciFunction(new LoopbackDevice(), { barSize: 100 })).toThrow(RangeError);
    // A device with a big config and many queues still fits a 256-port I/O BAR.
    const big = new LoopbackDevice({ queues: 8, configSize: 64 });
    expect(new VirtioPciFunction(big, { barKind: 'io' }).bars[0]!.size).toBe(256);
  });
});

describe('common configuration', () => {
  it.each([false, true])('negotiates and sets up queues (byte-split accesses: %s)', (byteAccess) => {
    const { t, device } = mock({ byteAccess });
    expect(t.deviceFeatures()).toBe(
      V1 | features(Feature.VIRTIO_F_RING_INDIRECT_DESC, Feature.VIRTIO_F_RING_EVENT_IDX),
    );
    expect(t.readCommon(C.NUM_QUEUES, 2)).toBe(2);
    expect(t.readCommon(C.CONFIG_MSIX_VECTOR, 2)).toBe(0xffff);
    const [q0, q1] = t.init({ size: 8 });
    expect(t.status).toBe(S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
    expect(device.activations).toBe(1);
    t.writeCommon(C.QUEUE_SELECT, 2, 1);
    expect(t.readCommon(C.QUEUE_SIZE, 2)).toBe(8);
    expect(t.readCommon(C.QUEUE_ENABLE, 2)).toBe(1);
    expect(t.readCommon(C.QUEUE_NOTIFY_OFF, 2)).toBe(1);
    expect(t.readCommon(C.QUEUE_MSIX_VECTOR, 2)).toBe(0xffff);
    expect(t.readCommon(C.QUEUE_DESC_LO, 4)).toBe(q1.addr.desc);
    expect(t.readCommon(C.QUEUE_DEVICE_HI, 4)).toBe(0);
    for (const q of [q0, q1]) {
      q.add({ readable: [Uint8Array.of(q.index + 1)], writable: [1] });
      q.kick();
      expect(q.used()[0].data).toEqual(Uint8Array.of(q.index + 1));
    }
    expect(t.errors).toEqual([]);
  });

  it('handles every byte of every register independently', () => {
    const { t } = mock();
    t.writeCommon(C.QUEUE_SELECT, 1, 1); // low byte only
    t.writeCommon(C.QUEUE_SELECT + 1, 1, 0);
    expect(t.readCommon(C.QUEUE_SELECT, 2)).toBe(1);
    t.writeCommon(C.QUEUE_SIZE, 1, 0x04); // 16 → 0x0004 via two bytes
    t.writeCommon(C.QUEUE_SIZE + 1, 1, 0x00);
    expect(t.readCommon(C.QUEUE_SIZE, 2)).toBe(4);
    expect(t.readCommon(C.QUEUE_SIZE, 1)).toBe(4);
    expect(t.readCommon(C.QUEUE_SIZE + 1, 1)).toBe(0);
    for (let i = 0; i < 4; i++) t.writeCommon(C.QUEUE_DRIVER_LO + i, 1, 0x10 + i);
    expect(t.readCommon(C.QUEUE_DRIVER_LO, 4)).toBe(0x13121110);
    expect(t.readCommon(C.QUEUE_DRIVER_LO + 1, 2)).toBe(0x1211);
    // 32-bit read across device_status, config_generation and queue_select
    t.status = S.ACKNOWLEDGE;
    expect(t.readCommon(C.DEVICE_STATUS, 4)).toBe(S.ACKNOWLEDGE | (0 << 8) | (1 << 16));
    // device_feature, one byte at a time
    t.writeCommon(C.DEVICE_FEATURE_SELECT, 4, 1);
    expect([0, 1, 2, 3].map((i) => t.readCommon(C.DEVICE_FEATURE + i, 1))).toEqual([1, 0, 0, 0]);
    // read-only registers ignore writes
    t.writeCommon(C.NUM_QUEUES, 2, 7);
    t.writeCommon(C.DEVICE_FEATURE, 4, 0);
    expect(t.readCommon(C.NUM_QUEUES, 2)).toBe(2);
    expect(t.readCommon(C.DEVICE_FEATURE, 4)).toBe(1);
    // a queue that does not exist reads size 0
    t.writeCommon(C.QUEUE_SELECT, 2, 9);
    expect(t.readCommon(C.QUEUE_SIZE, 2)).toBe(0);
  });

  it('refuses FEATURES_OK for unoffered bits or without VERSION_1', () => {
    const { t } = mock();
    expect(t.negotiate(V1 | featureBit(Feature.VIRTIO_F_RING_PACKED))).toBe(false);
    expect(t.status & S.FEATURES_OK).toBe(0);
    expect(t.status).toBe(S.ACKNOWLEDGE | S.DRIVER);
    expect(t.negotiate(features(Feature.VIRTIO_F_RING_EVENT_IDX))).toBe(false);
    expect(t.negotiate(V1)).toBe(true);
    expect(t.fn.negotiatedFeatures).toBe(V1);
    // frozen after FEATURES_OK
    t.writeDriverFeatures(V1 | features(Feature.VIRTIO_F_RING_EVENT_IDX));
    expect(t.fn.negotiatedFeatures).toBe(V1);
    expect(t.errors).toEqual([]);
  });

  it('validates queue_size at queue_enable', () => {
    const { t } = mock();
    t.negotiate();
    t.writeCommon(C.QUEUE_SELECT, 2, 0);
    t.writeCommon(C.QUEUE_SIZE, 2, 6);
    t.writeCommon(C.QUEUE_ENABLE, 2, 1);
    expect(t.errors).toEqual(['queue 0: queue size 6 is not a power of 2 ≤ 16']);
    expect(t.status & S.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(t.readCommon(C.QUEUE_ENABLE, 2)).toBe(0);
  });

  it('queue_size presents only a power of 2 ≤ the maximum (§4.1.4.3.1), byte-split writes included', () => {
    for (const byteAccess of [false, true]) {
      const { t } = mock({ byteAccess });
      t.negotiate();
      t.writeCommon(C.QUEUE_SELECT, 2, 0);
      for (const bad of [6, 0, 32, 0xffff]) {
        t.writeCommon(C.QUEUE_SIZE, 2, bad);
        expect(t.readCommon(C.QUEUE_SIZE, 2)).toBe(16);
      }
      t.writeCommon(C.QUEUE_SIZE, 2, 8);
      expect(t.readCommon(C.QUEUE_SIZE, 2)).toBe(8);
      // 0x0100 → 0x0080 one byte at a time passes through 0x0180 and still lands on 0x80.
      const { t: big } = { t: DriverMock.create(new LoopbackDevice({ maxQueueSize: 256 }), { memorySize: 1 << 16, byteAccess }) };
      big.negotiate();
      big.writeCommon(C.QUEUE_SIZE, 1, 0x80);
      big.writeCommon(C.QUEUE_SIZE + 1, 1, 0x00);
      expect(big.readCommon(C.QUEUE_SIZE, 2)).toBe(0x80);
      expect(t.errors).toEqual([]);
    }
  });

  it('calls the device at FEATURES_OK with the accepted features; a hook that throws refuses them', () => {
    const seen: bigint[] = [];
    const device = new LoopbackDevice();
    const withHook = Object.assign(device, { featuresAccepted: (f: bigint) => void seen.push(f) });
    const t = DriverMock.create(withHook, { memorySize: 1 << 16 });
    expect(t.negotiate(V1)).toBe(true);
    expect(seen).toEqual([V1]);
    t.status = t.status; // writing FEATURES_OK again does not call it again
    expect(seen).toHaveLength(1);
    t.reset();
    expect(t.negotiate(V1 | featureBit(Feature.VIRTIO_F_RING_PACKED))).toBe(false); // refused by the transport: not called
    expect(seen).toHaveLength(1);

    const failing = Object.assign(new LoopbackDevice(), {
      featuresAccepted: () => {
        throw new Error('cannot take these');
      },
    });
    const f = DriverMock.create(failing, { memorySize: 1 << 16 });
    expect(f.negotiate(V1)).toBe(false);
    expect(f.status & S.FEATURES_OK).toBe(0);
    expect(f.status & S.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(f.errors).toEqual(['cannot take these']);
    expect(f.fn.negotiatedFeatures).toBe(0n);
  });

  it('rejects queue_enable before FEATURES_OK and DRIVER_OK without FEATURES_OK', () => {
    const { t } = mock();
    t.status = S.ACKNOWLEDGE | S.DRIVER;
    t.writeCommon(C.QUEUE_ENABLE, 2, 1);
    expect(t.errors).toEqual(['queue 0: enabled before FEATURES_OK']);
    expect(t.status & S.DEVICE_NEEDS_RESET).toBeTruthy();
    t.status = 0;
    t.status = S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK;
    expect(t.errors[1]).toBe('DRIVER_OK set without FEATURES_OK');
    expect(t.status & S.DEVICE_NEEDS_RESET).toBeTruthy();
  });

  it('ignores kicks before DRIVER_OK and for disabled queues', () => {
    const { t, device } = mock();
    t.negotiate();
    const q = t.setupQueue(0, { size: 4 });
    q.add({ writable: [1] });
    q.notify();
    expect(device.popped).toHaveLength(0);
    t.driverOk();
    t.write(t.caps.notify.offset + 4, 2, 1); // queue 1 not enabled
    q.notify();
    expect(device.popped).toHaveLength(1);
  });

  // Found through the real guest (bench/guest-abuse.ts): 0xff written to device_status under
  // fio set DEVICE_NEEDS_RESET and a later 0x01 cleared DRIVER_OK; every kick after that was
  // ignored, Linux's virtio_blk waited forever for its requests and unbinding hung.
  it('device_status only accumulates: garbage cannot clear bits or set DEVICE_NEEDS_RESET', () => {
    const { t, device } = mock();
    const [q] = t.init({ size: 8 });
    const running = S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK;
    t.status = 0xff;
    expect(t.status).toBe(running | S.FAILED); // reserved bits and DEVICE_NEEDS_RESET dropped
    for (const garbage of [S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK, S.DEVICE_NEEDS_RESET, S.ACKNOWLEDGE]) {
      t.status = garbage;
      expect(t.status).toBe(running | S.FAILED);
    }
    // FEATURES_OK still holds, so the feature windows stay frozen.
    const negotiated = t.fn.negotiatedFeatures;
    t.writeDriverFeatures(0n);
    t.status = running | S.FEATURES_OK;
    expect(t.fn.negotiatedFeatures).toBe(negotiated);
    q.add({ writable: [4] });
    expect(q.kick()).toBe(true);
    expect(q.used()).toHaveLength(1);
    expect(device.activations).toBe(1);
    expect(t.errors).toEqual([]);
    // Only a reset clears it all.
    t.status = 0;
    expect(t.status).toBe(0);
    t.status = S.ACKNOWLEDGE | S.DEVICE_NEEDS_RESET;
    expect(t.status).toBe(S.ACKNOWLEDGE);
  });
});

describe('ISR and interrupts', () => {
  it('reading ISR returns and clears it and lowers the line, once', () => {
    const { t } = mock();
    const [q] = t.init();
    q.add({ writable: [1] });
    q.kick();
    expect(t.irq.level).toBe(true);
    expect(t.fn.isrStatus).toBe(IsrBit.QUEUE);
    expect(t.readIsr()).toBe(IsrBit.QUEUE);
    expect(t.irq.level).toBe(false);
    const lowers = t.irq.lowers;
    expect(t.readIsr()).toBe(0);
    expect(t.irq.lowers).toBe(lowers); // never touches a line it did not raise
  });

  it('config change bumps config_generation and raises ISR bit 1', () => {
    const { t, device } = mock();
    t.init();
    const gen = t.readCommon(C.CONFIG_GENERATION, 1);
    device.ctx!.configChanged();
    expect(t.readCommon(C.CONFIG_GENERATION, 1)).toBe(gen + 1);
    expect(t.readIsr()).toBe(IsrBit.CONFIG);
  });

  it('a device-side config change before DRIVER_OK still changes config_generation (§4.1.4.3.1), without an interrupt', () => {
    const { t, device } = mock();
    t.negotiate();
    const gen = t.readCommon(C.CONFIG_GENERATION, 1);
    device.deviceConfig.setU32(0, 0x5a5a0002); // e.g. net's link going down during probe
    expect(t.readConfig(0, 4)).toBe(0x5a5a0002);
    expect(t.readCommon(C.CONFIG_GENERATION, 1)).not.toBe(gen);
    expect(t.irq.raises).toBe(0);
    // Unchanged bytes are no change; and one bump per batch the driver can see, not per setter.
    const seen = t.readCommon(C.CONFIG_GENERATION, 1);
    device.deviceConfig.setU32(0, 0x5a5a0002);
    expect(t.readCommon(C.CONFIG_GENERATION, 1)).toBe(seen);
    for (let i = 0; i < 256; i++) device.deviceConfig.setU32(0, i);
    expect(t.readCommon(C.CONFIG_GENERATION, 1)).toBe((seen + 1) & 0xff);
  });

  it('config-change interrupts coalesce: at most one pending until the driver reads ISR', () => {
    const { t, device } = mock();
    t.init();
    for (let i = 0; i < 5; i++) device.ctx!.configChanged();
    for (let i = 0; i < 5; i++) device.deviceConfig.setU32(0, 0x100 + i);
    expect(t.irq.raises).toBe(1);
    expect(t.readIsr()).toBe(IsrBit.CONFIG);
    device.deviceConfig.setU32(0, 7);
    expect(t.irq.raises).toBe(2);
    expect(t.errors).toEqual([]);
  });

  it('device config: reads at any width, writes only to writable bytes', () => {
    const { t } = mock({ byteAccess: true });
    expect(t.readConfig(0, 4)).toBe(0x5a5a0001);
    expect(t.readConfig(2, 2)).toBe(0x5a5a);
    t.writeConfig(0, 4, 0); // read-only part
    t.writeConfig(4, 4, 0xdeadbeef);
    expect(t.readConfig(0, 4)).toBe(0x5a5a0001);
    expect(t.readConfig(4, 4)).toBe(0xdeadbeef);
    expect(t.readConfig(7, 1)).toBe(0xde);
  });
});

describe('reset', () => {
  it('mid-flight: drops queues, features, ISR; late completions touch nothing', () => {
    const { t, device } = mock({ held: true });
    const [q] = t.init();
    q.add({ writable: [4] });
    q.kick();
    device.ctx!.configChanged();
    expect(t.irq.level).toBe(true);
    const oldQueue = t.fn.queue(0)!;
    const ctx = device.ctx!;
    const usedBefore = q.usedIdx;
    const resets = device.resets;
    t.status = 0;
    expect(t.status).toBe(0);
    expect(t.fn.isrStatus).toBe(0);
    expect(t.irq.level).toBe(false);
    expect(t.fn.negotiatedFeatures).toBe(0n);
    expect(t.fn.queue(0)).toBeUndefined();
    expect(device.resets).toBe(resets + 1);
    // A device that kept its old context/queue cannot write the old rings any more.
    const chain = device.popped[0].chain;
    oldQueue.pushUsed(chain.headIndex, 0);
    expect(ctx.signalUsed(oldQueue)).toBe(false);
    expect(q.usedIdx).toBe(usedBefore);
    expect(oldQueue.pop()).toBeNull();
    // and the device comes back
    device.autoComplete = true;
    const [fresh] = t.init();
    fresh.add({ writable: [2] });
    fresh.kick();
    expect(fresh.used()).toHaveLength(1);
    expect(t.errors).toEqual([]);
  });
});

describe('the BAR boundary', () => {
  class ThrowingDevice implements VirtioDevice {
    readonly name = 'thrower';
    readonly deviceId = 4;
    readonly deviceFeatures = 0n;
    readonly queueMaxSizes = [4];
    readonly deviceConfig = new (class extends ConfigSpace {
      override read(_o: number, _w: AccessWidth): number {
        throw new Error('config read exploded');
      }
      override write(): void {
        throw new Error('config write exploded');
      }
    })(4);
    activate(_ctx: DeviceContext): void {}
    notify(): void {
      throw new TypeError('device bug');
    }
    reset(): void {}
  }

  it('turns device exceptions into DEVICE_NEEDS_RESET + onError, never a throw', () => {
    const fn = new VirtioPciFunction(new ThrowingDevice());
    const t = new DriverMock(fn, new ArrayMemory(1 << 16), new TestIrq());
    const [q] = t.init();
    q.add({ writable: [1] });
    expect(() => q.notify()).not.toThrow();
    expect(() => t.readConfig(0, 4)).not.toThrow();
    expect(t.readConfig(0, 4)).toBe(0);
    expect(t.errors[0]).toBe('device bug');
    expect(t.errors).toHaveLength(3);
    expect(fn.deviceStatus & S.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(fn.lastError).toBe('config read exploded');
  });

  it('DEVICE_NEEDS_RESET: one config interrupt per episode, and only once DRIVER_OK is set (§2.1.2)', () => {
    const fn = new VirtioPciFunction(new ThrowingDevice());
    const t = new DriverMock(fn, new ArrayMemory(1 << 16), new TestIrq());
    t.negotiate();
    t.readConfig(0, 4); // fails before DRIVER_OK: status tells, no interrupt
    expect(fn.deviceStatus & S.DEVICE_NEEDS_RESET).toBeTruthy();
    expect(t.irq.raises).toBe(0);
    t.init();
    for (let i = 0; i < 3; i++) {
      t.readConfig(0, 4);
      t.readIsr();
    }
    expect(t.irq.raises).toBe(1);
    expect(fn.deviceStatus & S.DEVICE_NEEDS_RESET).toBeTruthy();
  });

  it('ignores malformed accesses from the host', () => {
    const fn = new VirtioPciFunction(new LoopbackDevice());
    const bar = fn.bars[0]!;
    expect(bar.read(-1, 4)).toBe(0);
    expect(bar.read(bar.size - 2, 4)).toBe(0);
    expect(bar.read(0.5, 1)).toBe(0);
    expect(bar.read(0, 3 as AccessWidth)).toBe(0);
    expect(() => bar.write(0x14, 1, 1)).not.toThrow(); // not connected yet: still no throw
    expect(() => bar.write(0x1c, 2, 1)).not.toThrow();
  });

  it('an error listener that throws does not break the device', () => {
    const { t } = mock();
    t.fn.onError(() => {
      throw new Error('listener bug');
    });
    t.status = S.ACKNOWLEDGE | S.DRIVER_OK;
    expect(t.errors).toHaveLength(1);
  });

  it('onError returns an unsubscribe function', () => {
    const { t } = mock();
    const seen: string[] = [];
    const off = t.fn.onError((r) => seen.push(r));
    t.status = S.DRIVER_OK;
    off();
    t.status = 0;
    t.status = S.DRIVER_OK;
    expect(seen).toHaveLength(1);
    expect(t.errors).toHaveLength(2);
  });
});

describe('error reports cannot flood', () => {
  it('a guest repeating one bad write in a loop: listeners hear 1 + log2(N) reports', () => {
    const { t } = mock();
    const N = 1000;
    for (let i = 0; i < N; i++) {
      t.status = 0;
      t.status = S.ACKNOWLEDGE | S.DRIVER_OK; // DRIVER_OK without FEATURES_OK, every time
    }
    expect(t.fn.stats.errors).toBe(N);
    expect(t.errors).toHaveLength(1 + Math.floor(Math.log2(N)));
    expect(t.errors[0]).toBe('DRIVER_OK set without FEATURES_OK');
    expect(t.errors[1]).toBe('DRIVER_OK set without FEATURES_OK (2 errors of this kind so far)');
    expect(t.errors.at(-1)).toMatch(/\(512 errors/);
    expect(t.fn.lastError).toBe('DRIVER_OK set without FEATURES_OK');
    expect(t.fn.errorReports.suppressed).toBe(N - t.errors.length);
  });

  it('errors that differ only in their numbers are one kind; the table of kinds is bounded', () => {
    const { t } = mock();
    t.negotiate();
    for (let size = 3; size < 3 + 64; size += 2) {
      t.writeCommon(C.QUEUE_SIZE, 2, size);
      t.writeCommon(C.QUEUE_ENABLE, 2, 1);
    }
    expect(t.errors[0]).toBe('queue 0: queue size 3 is not a power of 2 ≤ 16');
    expect(t.errors).toHaveLength(1 + Math.floor(Math.log2(32)));
  });
});

describe('ErrorCoalescer', () => {
  it('reports at most maxReportsFor(N) of N errors of any mix of kinds', () => {
    const c = new ErrorCoalescer();
    let reports = 0;
    const N = 5000;
    for (let i = 0; i < N; i++) if (c.admit(`kind ${String.fromCharCode(65 + (i % 40))} #${i}`) !== undefined) reports++;
    expect(reports).toBeLessThanOrEqual(maxReportsFor(N));
    expect(reports).toBeGreaterThanOrEqual(40);
    expect(errorKind('x'.repeat(10_000)).length).toBe(200);
  });
});
