/**
 * Register-level fuzzing of the virtio-pci transport (§4.1.4): any BAR0 offset (odd
 * alignments and straddles included), width, value and order against the status machine,
 * mixed with half-honest macros (a queue set up with wild addresses and sizes, an honest
 * bring-up mid-sequence, chains on whatever queues are live, garbage aimed at live rings,
 * kicks a deferring device serves later).
 *
 * PCI configuration space too: any offset, width and value through the function's config
 * hooks, and the VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9) aimed at BAR0 (mostly valid settings,
 * sometimes not), so every BAR path is also reached the slow way.
 *
 * Invariants: nothing throws out of a BAR or config access; reads return a value of their width, and
 * registers with a known answer (device_feature windows, num_queues, a missing queue, the
 * notify offset) give it in every access shape; the device never touches memory outside
 * guest RAM (ArrayMemory refuses and records it); IRQ level follows ISR; an error always
 * comes with DEVICE_NEEDS_RESET; a reset returns the power-on state; read-only device
 * config never changes; the PCI header changes only in the window's fields and the status
 * register's Interrupt Status bit, which mirrors ISR (§4.1.4.5.1); error reports stay within
 * the flood budget (≤ maxReportsFor(errors) listener calls) and config-change interrupts within
 * one per ISR read or reset (coalesced, one per DEVICE_NEEDS_RESET episode); the inspector's
 * snapshot comes out whole; and after all of it, a
 * reset and an honest driver's bring-up make valid work complete correctly.
 *
 * Generic over the device (a TransportSubject): the loopback device here, the real ones
 * from each registered device's descriptor (src/devices/testing/transport-subjects.ts), each on
 * split rings and offering packed ones (`create({ ring })`).
 */
import fc from 'fast-check';
import { DeviceStatus, Feature, PciStatus, featureBit } from '../constants.ts';
import { PciHeader } from '../pci/config-header.ts';
import { errorKind, maxReportsFor } from '../pci/error-reports.ts';
import { CommonCfg } from '../pci/layout.ts';
import { DriverMock } from './driver-mock.ts';
import { PackedQueue } from '../queue/packed-queue.ts';
import { SplitQueue } from '../queue/split-queue.ts';
import { bump, checkInspector, checkInvariants, errorsSinceReset, fail, recordReasons, type NamedProperty } from './invariants.ts';
import { LoopbackDevice, loopbackOutput } from './loopback-device.ts';
import { PciConfigDriver } from './pci-config-driver.ts';
import type { RingLayout } from '../queue/virtqueue.ts';

/** One device on one function, on fresh memory, as a fuzz case needs it. */
export interface TransportRig {
  readonly t: DriverMock;
  /** Device config bytes the driver may change; every other byte must read back as built. */
  configWritable(offset: number): boolean;
  /** Reset, an honest bring-up, and one unit of work checked end to end (fail() if wrong). */
  validWork(): void;
  /** Run the kicks a deferring device scheduled (the end of the emulator's time slice). */
  settle?(): void;
}

export interface TransportSubject {
  readonly name: string;
  /** `ring: 'packed'` asks the function to offer VIRTIO_F_RING_PACKED too (subjects may ignore it). */
  create(options: { barKind: 'io' | 'mem'; memorySize: number; byteAccess: boolean; deferred: boolean; ring?: RingLayout }): TransportRig;
}

/** Guest RAM of every case: room for a 256-entry queue's rings and some buffers. */
export const TRANSPORT_MEM = 1 << 18;

const VERSION_1 = featureBit(Feature.VIRTIO_F_VERSION_1);

type Region = 'common' | 'isr' | 'notify' | 'device' | 'bar';

const widthArb = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(1, 2, 4) },
  { weight: 1, arbitrary: fc.constantFrom(0, 3, 8) }, // never from v86; the boundary must still hold
);
const STATUS_VALUES = [0, 1, 3, 0x0b, 0x0f, 0x07, 0x4f, 0x80, 0xff, 0x08, 0x04];
const valueArb = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.integer({ min: 0, max: 0xff }),
  fc.constantFrom(...STATUS_VALUES, 0xffff, 0x8000, 0x10000, -1, 1.5, Number.NaN, 2 ** 40),
);
const regionArb = fc.constantFrom<Region>('common', 'common', 'common', 'isr', 'notify', 'device', 'bar');
/** Offset inside (or just around) a region: every alignment, straddles at both ends. */
const relArb = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: -3, max: 0x40 }) }, { weight: 1, arbitrary: fc.integer({ min: -8, max: 0x1004 }) });
/** An address for a queue area: -1 = a plausible layout, else anything. */
const queueAddrArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(-1) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: TRANSPORT_MEM + 64 }) },
  { weight: 1, arbitrary: fc.integer({ min: TRANSPORT_MEM - 0x200, max: TRANSPORT_MEM }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
);

const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('read' as const), region: regionArb, rel: relArb, width: widthArb }) },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('write' as const), region: regionArb, rel: relArb, width: widthArb, value: valueArb }),
  },
  // Less random, so sequences reach deep states: status values, feature windows, queue setup.
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('status' as const), value: fc.oneof(fc.constantFrom(...STATUS_VALUES), fc.integer({ min: 0, max: 0xff })) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('features' as const), select: fc.constantFrom(0, 1, 2, 0xffffffff), value: valueArb }) },
  // Reset, ACKNOWLEDGE, DRIVER, FEATURES_OK with some of the offered features (or garbage).
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('negotiate' as const), mask: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), garbage: fc.boolean() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('queue' as const),
      select: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.constant(0xffff) }),
      // -1: leave queue_size at the device's maximum.
      size: fc.oneof(
        { weight: 4, arbitrary: fc.constant(-1) },
        { weight: 2, arbitrary: fc.constantFrom(1, 2, 4, 8, 16, 64, 256) },
        { weight: 1, arbitrary: fc.oneof(fc.constantFrom(0, 3, 512, 32768, 0xffff), fc.integer({ min: 0, max: 0xffff })) },
      ),
      desc: queueAddrArb,
      driver: queueAddrArb,
      device: queueAddrArb,
      hi: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xffffffff }) }),
      enable: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('driver-ok' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('notify' as const),
      queue: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('poke' as const),
      // Mostly where plausible rings lie, so live queues see garbage descriptors and indices.
      addr: fc.oneof(fc.integer({ min: 0x1000, max: 0x3000 }), fc.integer({ min: 0, max: TRANSPORT_MEM - 4 })),
      value: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0x40 })),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('ring' as const),
      // Garbage aimed at a live queue's structures, wherever the driver put them.
      queue: fc.integer({ min: 0, max: 2 }),
      area: fc.constantFrom<'desc' | 'avail' | 'used'>('desc', 'avail', 'avail', 'used'),
      offset: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 0x400 })),
      value: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 8 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('init' as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('work' as const),
      queue: fc.integer({ min: 0, max: 2 }),
      readable: fc.uint8Array({ maxLength: 80 }),
      writable: fc.integer({ min: 0, max: 80 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reset' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('settle' as const) }) },
  // PCI config space: anywhere, any width; and the PCI_CFG window aimed at a BAR0 structure.
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('config' as const),
      write: fc.boolean(),
      offset: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 0xff }) }, { weight: 1, arbitrary: fc.integer({ min: -4, max: 0x104 }) }),
      width: widthArb,
      value: valueArb,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('window' as const),
      bar: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xff }) }),
      region: regionArb,
      rel: relArb,
      length: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(1, 2, 4) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) }),
      write: fc.boolean(),
      value: valueArb,
    }),
  },
  // A guest repeating one bad thing in a loop: the error-flood budget must hold.
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('flood' as const),
      kind: fc.constantFrom<'bring-up' | 'enable'>('bring-up', 'enable'),
      times: fc.integer({ min: 1, max: 300 }),
    }),
  },
  // Read-backs with a known answer, in the shapes drivers use (one access, halves, bytes).
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('probe' as const),
      select: fc.oneof(fc.constantFrom(0, 1, 2, 3, 0xffff), fc.integer({ min: 0, max: 0xffffffff })),
      shape: fc.constantFrom<1 | 2 | 4>(1, 2, 4),
    }),
  },
);

export type TransportOp = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

export const transportCaseArb = fc.record({
  /** Where the garbage starts: power-on, features negotiated, or live queues with chains posted. */
  start: fc.constantFrom<'cold' | 'negotiated' | 'live'>('cold', 'negotiated', 'live'),
  barKind: fc.constantFrom<'io' | 'mem'>('io', 'mem'),
  byteAccess: fc.boolean(),
  /** Devices that can serve kicks later do (as in the lab's machine), drained by 'settle'. */
  deferred: fc.boolean(),
  ops: fc.array(opArb, { maxLength: 60 }),
});

function regionBase(t: DriverMock, region: Region): number {
  switch (region) {
    case 'common':
      return t.caps.common.offset;
    case 'isr':
      return t.caps.isr.offset;
    case 'notify':
      return t.caps.notify.offset;
    case 'device':
      return t.caps.device?.offset ?? t.fn.layout.device.offset;
    case 'bar':
      return 0;
  }
}

function checkRead(value: number, width: number, where: string): void {
  const valid = width === 1 || width === 2 || width === 4;
  const ok = valid ? Number.isInteger(value) && value >= 0 && value < 2 ** (8 * width) : value === 0;
  if (!ok) fail(`${where}: ${width}-byte read returned ${value}`);
}

/** After a driver reset: the power-on state (§2.1.1). */
function checkPowerOn(t: DriverMock): void {
  const fn = t.fn;
  if (fn.deviceStatus !== 0) fail(`status 0x${fn.deviceStatus.toString(16)} after reset`);
  if (fn.isrStatus !== 0 || t.irq.level) fail('ISR or IRQ line still set after reset');
  if (fn.negotiatedFeatures !== 0n) fail('features still negotiated after reset');
  for (let i = 0; i < fn.numQueues; i++) if (fn.queue(i)) fail(`queue ${i} still live after reset`);
}

function plausibleLayout(size: number): { desc: number; driver: number; device: number } {
  const desc = 0x1000;
  const driver = desc + 16 * size;
  return { desc, driver, device: (driver + 6 + 2 * size + 3) & ~3 };
}

function runOp(rig: TransportRig, op: TransportOp, pci: PciConfigDriver): void {
  const { t } = rig;
  const bar = t.fn.bars[0]!;
  switch (op.op) {
    case 'config':
      if (op.write) t.fn.configWrite(op.offset, op.width as 1 | 2 | 4, op.value);
      else checkRead(t.fn.configRead(op.offset, op.width as 1 | 2 | 4), op.width, `config 0x${op.offset.toString(16)}`);
      return;
    case 'flood':
      for (let i = 0; i < op.times; i++) {
        if (op.kind === 'bring-up') {
          t.writeCommon(CommonCfg.DEVICE_STATUS, 1, 0);
          t.writeCommon(CommonCfg.DEVICE_STATUS, 1, DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER_OK); // no FEATURES_OK
        } else {
          t.writeCommon(CommonCfg.QUEUE_SIZE, 2, 3);
          t.writeCommon(CommonCfg.QUEUE_ENABLE, 2, 1);
        }
      }
      return;
    case 'window': {
      pci.aim(op.bar, regionBase(t, op.region) + op.rel, op.length);
      const data = pci.cap + 16;
      if (op.write) pci.write(data, 4, op.value);
      else checkRead(pci.read(data, 4), 4, 'pci_cfg_data');
      return;
    }
    case 'settle':
      rig.settle?.();
      return;
    case 'read': {
      const offset = regionBase(t, op.region) + op.rel;
      checkRead(bar.read(offset, op.width as 1 | 2 | 4), op.width, `BAR0+0x${offset.toString(16)}`);
      return;
    }
    case 'write':
      bar.write(regionBase(t, op.region) + op.rel, op.width as 1 | 2 | 4, op.value);
      return;
    case 'status':
      t.writeCommon(CommonCfg.DEVICE_STATUS, 1, op.value);
      if (op.value === 0) checkPowerOn(t);
      return;
    case 'features':
      t.writeCommon(CommonCfg.DRIVER_FEATURE_SELECT, 4, op.select);
      t.writeCommon(CommonCfg.DRIVER_FEATURE, 4, op.value);
      return;
    case 'queue': {
      t.writeCommon(CommonCfg.QUEUE_SELECT, 2, op.select);
      if (op.size >= 0) t.writeCommon(CommonCfg.QUEUE_SIZE, 2, op.size);
      const layout = plausibleLayout(t.readCommon(CommonCfg.QUEUE_SIZE, 2));
      const pick = (addr: number, fallback: number) => (addr < 0 ? fallback : addr);
      for (const [reg, addr] of [
        [CommonCfg.QUEUE_DESC_LO, pick(op.desc, layout.desc)],
        [CommonCfg.QUEUE_DRIVER_LO, pick(op.driver, layout.driver)],
        [CommonCfg.QUEUE_DEVICE_LO, pick(op.device, layout.device)],
      ] as const) {
        t.writeCommon(reg, 4, addr);
        t.writeCommon(reg + 4, 4, op.hi);
      }
      t.writeCommon(CommonCfg.QUEUE_ENABLE, 2, op.enable);
      return;
    }
    case 'driver-ok':
      t.driverOk();
      return;
    case 'notify':
      t.write(t.caps.notify.offset + (op.queue % 4) * t.caps.notify.multiplier, 2, op.queue);
      return;
    case 'poke':
      t.memory.writeU32(op.addr, op.value);
      return;
    case 'negotiate': {
      const offered = t.deviceFeatures();
      const wanted = op.garbage ? op.mask : (offered & op.mask) | (offered & VERSION_1);
      t.negotiate(wanted);
      return;
    }
    case 'ring': {
      const q = t.fn.queue(op.queue % t.fn.numQueues);
      if (!q) return;
      const areas = q instanceof SplitQueue ? [q.descTable, q.availRing, q.usedRing] : q instanceof PackedQueue ? [q.descRing, q.driverEvent, q.deviceEvent] : [0, 0, 0];
      const base = areas[op.area === 'desc' ? 0 : op.area === 'avail' ? 1 : 2]!;
      const addr = base + (op.offset & ~1);
      if (addr + 2 <= t.memory.size) t.memory.writeU16(addr, op.value);
      return;
    }
    case 'init':
      t.initRings();
      return;
    case 'work': {
      // On the driver's own (possibly stale) view of a queue: the device must cope either way.
      const q = t.queues[op.queue];
      if (!q || q.freeDescriptors < 2 || (op.readable.length === 0 && op.writable === 0)) return;
      q.add({ readable: op.readable.length ? [op.readable] : [], writable: op.writable ? [op.writable] : [] });
      q.notify();
      return;
    }
    case 'reset':
      t.reset();
      checkPowerOn(t);
      return;
    case 'probe': {
      const read = (reg: number, width: 2 | 4) => {
        const piece = Math.min(op.shape, width) as 1 | 2 | 4;
        let value = 0;
        for (let i = width - piece; i >= 0; i -= piece) value = value * 2 ** (8 * piece) + bar.read(t.caps.common.offset + reg + i, piece);
        return value;
      };
      t.writeCommon(CommonCfg.DEVICE_FEATURE_SELECT, 4, op.select);
      const window = op.select <= 1 ? Number((t.fn.offeredFeatures >> BigInt(32 * op.select)) & 0xffffffffn) : 0;
      if (read(CommonCfg.DEVICE_FEATURE, 4) !== window) fail(`device_feature window ${op.select} reads wrong in ${op.shape}-byte accesses`);
      t.writeCommon(CommonCfg.QUEUE_SELECT, 2, op.select);
      const selected = op.select & 0xffff;
      if (selected >= t.fn.numQueues) {
        if (read(CommonCfg.QUEUE_SIZE, 2) !== 0 || read(CommonCfg.QUEUE_ENABLE, 2) !== 0) fail(`queue ${selected} does not exist but reads as one`);
      } else if (read(CommonCfg.QUEUE_NOTIFY_OFF, 2) !== selected) fail(`queue ${selected}: queue_notify_off wrong`);
      return;
    }
  }
}

/** PCI header bytes as built, to compare: the window's fields excepted, Interrupt Status masked. */
function headerBytes(t: DriverMock): number[] {
  return Array.from(t.fn.configSpace, (byte, at) =>
    t.fn.pciCfg.writable(at) ? 0 : at === PciHeader.STATUS ? byte & ~PciStatus.INTERRUPT_STATUS : byte,
  );
}

/** What must hold of PCI config space and of error and interrupt floods after every step. */
function checkPciBounds(t: DriverMock, header: readonly number[]): void {
  const fn = t.fn;
  const mirrored = (fn.configRead(PciHeader.STATUS, 2) & PciStatus.INTERRUPT_STATUS) !== 0;
  if (mirrored !== (fn.isrStatus !== 0)) fail(`PCI Interrupt Status ${mirrored} but ISR 0x${fn.isrStatus.toString(16)}`);
  const now = headerBytes(t);
  const changed = now.findIndex((b, i) => b !== header[i]);
  if (changed >= 0) fail(`read-only PCI config byte 0x${changed.toString(16)} changed: ${header[changed]} → ${now[changed]}`);
  // Per kind of error, 1 + log2(N) reports at most (and never more than maxReportsFor overall).
  const kinds = new Set(t.errors.map((r) => errorKind(r.replace(/ \(\d+ errors of this kind so far\)$/, '')))).size;
  const budget = Math.min(maxReportsFor(fn.stats.errors), kinds * (1 + Math.floor(Math.log2(Math.max(1, fn.stats.errors)))));
  if (t.errors.length > budget) fail(`${t.errors.length} error reports for ${fn.stats.errors} errors of ${kinds} kinds: over the flood budget ${budget}`);
  const queueInterrupts = fn.queueCounters.reduce((n, c) => n + c.interrupts, 0);
  const configInterrupts = fn.stats.interrupts - queueInterrupts;
  if (configInterrupts > 1 + fn.stats.isrReads + fn.stats.resets) {
    fail(`${configInterrupts} config-change interrupts with ${fn.stats.isrReads} ISR reads and ${fn.stats.resets} resets: not coalesced`);
  }
}

function configBytes(t: DriverMock): number[] {
  return Array.from(t.fn.device.deviceConfig?.bytes ?? []);
}

/** How deep a case got: live queues, chains the device popped, errors by reason. */
function recordCoverage(t: DriverMock, coverage: Map<string, number>): void {
  for (let i = 0; i < t.fn.numQueues; i++) {
    const q = t.fn.queue(i);
    if (!q) continue;
    bump(coverage, 'queue live at the end');
    if (q.requests > 0) bump(coverage, 'chains popped', q.requests);
  }
  if (t.fn.deviceStatus & DeviceStatus.DEVICE_NEEDS_RESET) bump(coverage, 'ended in DEVICE_NEEDS_RESET');
  if (t.fn.deviceStatus & DeviceStatus.DRIVER_OK) bump(coverage, 'ended with DRIVER_OK');
  recordReasons(t, coverage);
}

/** `ring: 'packed'`: every case's function also offers VIRTIO_F_RING_PACKED, so bring-ups take packed rings. */
export function transportProperty(subject: TransportSubject, coverage = new Map<string, number>(), ring: RingLayout = 'split'): fc.IProperty<any> {
  return fc.property(transportCaseArb, ({ start, barKind, byteAccess, deferred, ops }) => {
    const rig = subject.create({ barKind, memorySize: TRANSPORT_MEM, byteAccess, deferred, ring });
    const { t } = rig;
    const config = configBytes(t);
    if (start === 'negotiated') t.negotiate();
    if (start === 'live') for (const q of t.initRings()) q.add({ readable: [Uint8Array.of(1, 2, 3)], writable: [16] });
    const numQueues = t.fn.numQueues;
    const pci = new PciConfigDriver(t.fn);
    const header = headerBytes(t);
    const rejectedBefore = t.fn.pciCfg.rejected;
    for (const op of ops) {
      runOp(rig, op, pci);
      checkInvariants(t);
      checkPciBounds(t, header);
      if (t.readCommon(CommonCfg.NUM_QUEUES, 2) !== numQueues) fail('num_queues changed');
    }
    if (ops.some((op) => op.op === 'window')) bump(coverage, 'pci_cfg window used');
    if (t.fn.pciCfg.rejected > rejectedBefore) bump(coverage, 'pci_cfg window settings refused');
    if (t.fn.errorReports.suppressed > 0) bump(coverage, 'repeated errors coalesced');
    const after = configBytes(t);
    for (let i = 0; i < config.length; i++) {
      if (!rig.configWritable(i) && after[i] !== config[i]) fail(`read-only config byte ${i} changed: ${config[i]} → ${after[i]}`);
    }
    recordCoverage(t, coverage);
    checkInspector(t);
    rig.validWork();
    if (errorsSinceReset(t) > 0) fail(`error during honest work after garbage: ${t.errors.at(-1)}`);
    checkInvariants(t);
  });
}

/**
 * The loopback device: 1–3 queues, 8 bytes of config of which bytes 4.. are writable; `ring:
 * 'packed'` offers the packed layout on every case (whatever the case asks).
 */
export function loopbackSubject(queues: number, ring: RingLayout = 'split'): TransportSubject {
  return {
    name: `loopback (${queues} queue${queues > 1 ? 's' : ''}${ring === 'packed' ? ', packed offered' : ''})`,
    create({ barKind, memorySize, byteAccess, ring: asked }) {
      const device = new LoopbackDevice({ queues, maxQueueSize: 16, configSize: 8 });
      const t = DriverMock.create(device, { memorySize, byteAccess, pci: { barKind, ring: asked === 'packed' ? 'packed' : ring } });
      return {
        t,
        configWritable: (offset) => offset >= 4,
        validWork() {
          device.autoComplete = true;
          for (const q of t.initRings()) {
            const input = Uint8Array.of(q.index, 0xa5, 0x5a, 0x0f);
            const sub = q.add({ readable: [input], writable: [4] });
            q.kick();
            const used = q.used();
            const want = loopbackOutput(sub.head, input, 4);
            if (used.length !== 1 || used[0].head !== sub.head || used[0].len !== 4 || !used[0].data.every((b, i) => b === want[i])) {
              fail(`queue ${q.index}: honest request did not complete correctly after garbage`);
            }
          }
        },
      };
    },
  };
}

/** The transport property on one subject; `ring: 'packed'` names it "… (packed)" and asks the subject to offer packed rings. */
export function transportSubjectProperty(subject: TransportSubject, ring: RingLayout = 'split'): NamedProperty {
  const coverage = new Map<string, number>();
  const name = `pci transport: ${subject.name}${ring === 'packed' ? ' (packed)' : ''}`;
  return { name, property: transportProperty(subject, coverage, ring), coverage };
}

export function transportProperties(): NamedProperty[] {
  return [loopbackSubject(1), loopbackSubject(3), loopbackSubject(3, 'packed')].map((subject) => transportSubjectProperty(subject));
}
