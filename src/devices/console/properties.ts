/**
 * virtio-console under random guest behaviour (fast-check), shared by the unit tests and the
 * long campaign (bench/fuzz.ts): any mix of control messages (plausible or any bytes, in any
 * order, repeated), control and port receive buffers of any size, guest writes of any split,
 * host writes, resets. Nothing throws out of a BAR handler; the device never resets (nothing
 * here breaks a ring); it writes guest memory only inside posted receive buffers; every
 * control message it sends is well formed; each port's bytes arrive exactly and in order both
 * ways (guest buffers cut at MAX_TX_BUFFER; host writes beyond the backlog refused whole);
 * backlogs stay within their bounds; onOpen reports changes only. Then an honest handshake
 * and one message each way still work. On split rings and, named "… (packed)", on packed
 * ones (§2.8).
 */
import fc from 'fast-check';
import type { Region } from '../../virtio/queue/descriptor-chain.ts';
import { bump, checkInvariants, fail, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { concatBytes as concat, equalBytes } from '../testing/equal-bytes.ts';
import { manualDefer } from '../testing/manual-defer.ts';
import { MAX_PENDING_CONTROL, MAX_TX_BUFFER } from './console.ts';
import { encodeControl, parseControl } from './control.ts';
import { CONTROL_EVENT_NAMES, ConsoleControl as C } from './spec.ts';
import { ConsoleHarness, RUN_PORT } from './testing.ts';
import { consoleBoundedWorkProperty } from './bounded-work.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';

const BACKLOG = 4000;
const DRIVER_BOUND = new Set<number>([C.VIRTIO_CONSOLE_DEVICE_ADD, C.VIRTIO_CONSOLE_CONSOLE_PORT, C.VIRTIO_CONSOLE_PORT_NAME, C.VIRTIO_CONSOLE_PORT_OPEN]);

const bytesArb = (max: number) => fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: max }).map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff)));

const opArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('control' as const),
      msg: fc.oneof(
        {
          // Mostly what Linux sends (DEVICE_READY, PORT_READY, PORT_OPEN), so cases get past the handshake.
          weight: 4,
          arbitrary: fc
            .record({
              id: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.constant(0xffffffff)),
              event: fc.oneof(fc.constantFrom(C.VIRTIO_CONSOLE_DEVICE_READY, C.VIRTIO_CONSOLE_PORT_READY, C.VIRTIO_CONSOLE_PORT_OPEN), fc.integer({ min: 0, max: 8 })),
              value: fc.constantFrom(0, 1, 1, 1, 2),
            })
            .map((m) => encodeControl(m)),
        },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 20 }) },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('post-control' as const), sizes: fc.array(fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(64)), { minLength: 1, maxLength: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('guest-write' as const), port: fc.integer({ min: 0, max: 1 }), parts: fc.array(bytesArb(MAX_TX_BUFFER + 10), { minLength: 1, maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('post-rx' as const), port: fc.integer({ min: 0, max: 1 }), sizes: fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('host-write' as const), port: fc.integer({ min: 0, max: 1 }), bytes: bytesArb(3000) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
  // Linux's own sequence, whole: later ops then meet ready and open ports.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('handshake' as const), open: fc.boolean() }) },
);

export type ConsoleFuzzOp = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** One case (exported for regression tests). */
export function consoleCase(ops: readonly ConsoleFuzzOp[], deferred = false, coverage = new Map<string, number>(), ring: RingLayout = 'split'): void {
  // Deferred: named ports' transmit kicks are served when the "slice" ends (settle()).
  const later = deferred ? manualDefer() : undefined;
  const t = ConsoleHarness.create({ backlogBytes: BACKLOG, memorySize: 4 << 20, defer: later?.defer, ring });
  if (t.ctrlRx.layout !== ring) fail(`negotiated a ${t.ctrlRx.layout} ring, not ${ring}`);
  const ports = [0, 1];
  /** Per port: what the guest sent (as the host must see it), what the host saw. */
  const sent = ports.map((): Uint8Array[] => []);
  const seen = ports.map((): Uint8Array[] => []);
  /** Per port: bytes the host's writes queued (accepted) and the guest received, since the last reset. */
  const accepted = ports.map((): Uint8Array[] => []);
  const received = ports.map((): Uint8Array[] => []);
  const opens = ports.map((): boolean[] => []);
  /** Every receive buffer ever posted (written notices from before a reset stay valid). */
  const regions: Region[] = [];
  for (const p of ports) {
    t.device.ports[p].onData = (b) => seen[p].push(b);
    t.device.ports[p].onOpen = (open) => opens[p].push(open);
  }
  const collect = () => {
    for (const p of ports) received[p].push(...t.rxq(p).used().map((u) => u.data));
    for (const u of t.ctrlRx.used()) {
      // A buffer too small for the next message comes back empty (the message waits).
      if (u.len === 0) {
        bump(coverage, 'control buffer returned empty');
        continue;
      }
      const msg = parseControl(u.data);
      if (!msg) fail(`a ${u.len}-byte control message reached the driver`);
      if (!DRIVER_BOUND.has(msg.event)) fail(`the device sent ${CONTROL_EVENT_NAMES[msg.event] ?? msg.event}, a driver → device event`);
      if (msg.id >= t.device.ports.length) fail(`a control message for port ${msg.id}`);
      bump(coverage, `sent ${CONTROL_EVENT_NAMES[msg.event]}`);
    }
  };
  const checkReceived = () => {
    for (const p of ports) {
      const got = concat(received[p]);
      const want = concat(accepted[p]);
      if (!equalBytes(got, want.subarray(0, got.length))) fail(`port ${p}: the guest received bytes the host did not write, or out of order`);
      if (want.length - got.length !== t.device.ports[p].backlog.bytes) fail(`port ${p}: host bytes unaccounted for`);
    }
  };
  for (const o of ops) {
    switch (o.kind) {
      case 'control':
        if (t.ctrlTx.freeDescriptors < 1) break;
        t.ctrlTx.add({ readable: [o.msg] });
        t.ctrlTx.kick();
        t.ctrlTx.used();
        break;
      case 'handshake': {
        const msgs = [
          { id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 },
          { id: 0, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 },
          { id: 1, event: C.VIRTIO_CONSOLE_PORT_READY, value: 1 },
          { id: 1, event: C.VIRTIO_CONSOLE_PORT_OPEN, value: o.open ? 1 : 0 },
        ];
        if (t.ctrlTx.freeDescriptors < msgs.length) break;
        for (const msg of msgs) t.ctrlTx.add({ readable: [encodeControl(msg)] });
        t.ctrlTx.kick();
        t.ctrlTx.used();
        break;
      }
      case 'post-control':
        collect();
        if (t.ctrlRx.freeDescriptors < o.sizes.length) break;
        for (const size of o.sizes) regions.push(...t.ctrlRx.add({ writable: [size] }).writable);
        t.ctrlRx.kick();
        break;
      case 'guest-write': {
        const q = t.txq(o.port);
        if (q.freeDescriptors < o.parts.length) break;
        q.add({ readable: o.parts });
        q.kick();
        later?.settle();
        q.used();
        const all = concat(o.parts);
        if (all.length > 0) sent[o.port].push(all.subarray(0, MAX_TX_BUFFER));
        if (all.length > MAX_TX_BUFFER) bump(coverage, 'tx truncated');
        break;
      }
      case 'post-rx': {
        collect();
        const q = t.rxq(o.port);
        if (q.freeDescriptors < o.sizes.length) break;
        for (const size of o.sizes) regions.push(...q.add({ writable: [size] }).writable);
        q.kick();
        break;
      }
      case 'host-write':
        if (t.device.ports[o.port].write(o.bytes)) accepted[o.port].push(o.bytes);
        else bump(coverage, 'host write refused');
        break;
      case 'reset':
        collect();
        checkReceived();
        t.reinit();
        for (const p of ports) {
          accepted[p] = [];
          received[p] = [];
        }
        break;
    }
    checkInvariants(t.driver);
    if (t.driver.errors.length > 0) fail(`device reset: ${t.driver.errors[0]}`);
    if (t.device.controlBacklog > MAX_PENDING_CONTROL) fail(`${t.device.controlBacklog} control messages waiting`);
    for (const p of ports) {
      const port = t.device.ports[p];
      if (port.backlog.bytes > BACKLOG) fail(`port ${p}: backlog of ${port.backlog.bytes} bytes`);
      if (opens[p].some((open, i) => i > 0 && open === opens[p][i - 1])) fail(`port ${p}: onOpen(${opens[p].at(-1)}) twice in a row`);
      if (port.guestOpen !== (opens[p].at(-1) ?? false)) fail(`port ${p}: guestOpen disagrees with what onOpen said`);
    }
  }
  collect();
  checkReceived();
  for (const p of ports) if (!equalBytes(concat(seen[p]), concat(sent[p]))) fail(`port ${p}: the host saw other bytes than the guest sent`);
  for (const w of t.driver.memory.writtenNotices) {
    if (!regions.some((r) => w.addr >= r.addr && w.addr + w.len <= r.addr + r.len)) fail(`device wrote [0x${w.addr.toString(16)}, +${w.len}) outside posted buffers`);
  }
  for (const [k, v] of Object.entries(t.device.stats.toRecord())) if (v && /Ignored|Dropped|Drops|Truncated/.test(k)) bump(coverage, k, v);

  // An honest driver afterwards.
  t.reinit();
  t.handshake();
  t.openPort(1);
  const port = t.device.port(RUN_PORT)!;
  if (!port.guestOpen) fail('the honest handshake did not open the port');
  const before = seen[1].length;
  t.guestWrite(1, Uint8Array.of(1, 2, 3));
  later?.settle();
  if (seen[1].length !== before + 1 || !equalBytes(seen[1][before], Uint8Array.of(1, 2, 3))) fail('an honest guest write did not arrive');
  t.postRx(1, [64]);
  port.write(Uint8Array.of(9, 8, 7));
  if (!equalBytes(t.received(1), Uint8Array.of(9, 8, 7))) fail('an honest host write did not arrive');
  checkInvariants(t.driver);
}

export function consoleProperty(coverage = new Map<string, number>(), ring: RingLayout = 'split'): fc.IProperty<[ConsoleFuzzOp[], boolean]> {
  return fc.property(fc.array(opArb, { maxLength: 40 }), fc.boolean(), (ops, deferred) => consoleCase(ops, deferred, coverage, ring));
}

/** Every property on split rings, then on packed ones ("… (packed)"). */
export function consoleProperties(): NamedProperty[] {
  return RING_LAYOUTS.flatMap((ring) => {
    const coverage = new Map<string, number>();
    return [
      { name: onRing('console: random control messages, buffers and port traffic both ways, then an honest driver', ring), property: consoleProperty(coverage, ring), coverage },
      { name: onRing('console: bounded work per kick on aliased buffers in every queue', ring), property: consoleBoundedWorkProperty(ring) },
    ];
  });
}
