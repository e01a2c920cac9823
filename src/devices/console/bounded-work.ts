/**
 * virtio-console's "bounded work" property (README, Reliability): bursts of chains whose
 * descriptors all alias one guest buffer, on every kind of queue — port transmitqs (guest
 * output up to 63 MiB per chain), receiveqs with a full host backlog waiting, control
 * messages with huge trailers, control receive buffers of any size — and every job the device
 * runs for them (each kick, each deferred transmit drain) stays within the descriptor's
 * kickBudget (guest RAM bytes beyond the ring walk) and WORK_MS_BOUND; the device never resets.
 * On either ring layout.
 */
import fc from 'fast-check';
import { fail } from '../../virtio/testing/invariants.ts';
import type { DriverRing } from '../../virtio/testing/driver-mock.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { assertWithinBudget, measure, worstCases } from '../../virtio/testing/work-meter.ts';
import { addAliasedIndirect } from '../testing/aliased-chain.ts';
import { CONSOLE_BACKLOG_BYTES, CONSOLE_QUEUE_SIZE } from './console.ts';
import { encodeControl } from './control.ts';
import { ConsoleControl as C } from './spec.ts';
import { ConsoleHarness } from './testing.ts';
import { consoleDevice } from './index.ts';

const MiB = 1 << 20;

const burstArb = fc.record({
  queue: fc.constantFrom('tx0' as const, 'tx1' as const, 'rx0' as const, 'rx1' as const, 'ctrl-tx' as const, 'ctrl-rx' as const),
  chains: fc.integer({ min: 1, max: CONSOLE_QUEUE_SIZE }),
  /** Aliased descriptors per chain (an indirect table of at most the queue size). */
  n: fc.integer({ min: 1, max: CONSOLE_QUEUE_SIZE - 1 }),
  piece: fc.oneof(fc.constant(MiB), fc.integer({ min: 0, max: MiB }), fc.integer({ min: 0, max: 16 })),
  /** Host bytes queued for the port first (rx bursts): up to the whole backlog. */
  hostBytes: fc.oneof(fc.constant(CONSOLE_BACKLOG_BYTES), fc.integer({ min: 0, max: CONSOLE_BACKLOG_BYTES })),
});
type Burst = typeof burstArb extends fc.Arbitrary<infer B> ? B : never;

export function consoleBoundedWorkProperty(ring: RingLayout = 'split'): fc.IProperty<[Burst[], boolean]> {
  const prefix = ring === 'packed' ? 'console packed: per kick' : 'console: per kick';
  return fc.property(fc.array(burstArb, { minLength: 1, maxLength: 6 }), fc.boolean(), (bursts, handshake) => {
    const jobs: Array<() => void> = [];
    const t = ConsoleHarness.create({ memorySize: 8 * MiB, defer: (job) => void jobs.push(job), ring });
    if (t.ctrlRx.layout !== ring) fail(`console: negotiated a ${t.ctrlRx.layout} ring, not ${ring}`);
    if (handshake) t.handshake();
    const region = t.driver.buffers.alloc(MiB);
    const host = new Uint8Array(CONSOLE_BACKLOG_BYTES).fill(0x42);
    for (const b of bursts) {
      const port = b.queue.endsWith('1') ? 1 : 0;
      const q: DriverRing = b.queue.startsWith('tx') ? t.txq(port) : b.queue.startsWith('rx') ? t.rxq(port) : b.queue === 'ctrl-tx' ? t.ctrlTx : t.ctrlRx;
      if (b.queue.startsWith('rx')) t.device.ports[port].write(host.subarray(0, Math.min(b.hostBytes, t.device.ports[port].backlog.maxBytes - t.device.ports[port].backlog.bytes)));
      const chains = Math.min(b.chains, q.freeDescriptors);
      let descriptors = 0;
      for (let i = 0; i < chains; i++) {
        const writable = b.queue.startsWith('rx') || b.queue === 'ctrl-rx';
        // A control message first (DEVICE_READY, so answers are due), then the aliased trailer.
        const head = b.queue === 'ctrl-tx' ? [encodeControl({ id: 0, event: C.VIRTIO_CONSOLE_DEVICE_READY, value: 1 })] : [];
        addAliasedIndirect(t.driver, q, { head, count: b.n, addr: region, len: b.piece, write: writable });
        descriptors += b.n + head.length + 1;
      }
      const ringBytes = 16 * descriptors + 32 * chains + 64;
      const budgets = { bytes: consoleDevice.kickBudget!.bytes + ringBytes };
      const where = `${chains} × ${b.n} × ${b.piece} bytes on ${b.queue}`;
      const step = (what: string, action: () => void) => {
        const work = measure(t.driver.memory, action);
        worstCases.noteWork(prefix, work, where, budgets);
        assertWithinBudget(`console ${what} (${where})`, work, budgets);
      };
      step('kick', () => q.notify());
      for (let n = 0; jobs.length > 0; n++) {
        if (n > 4) fail(`console: ${n} deferred jobs after one kick`);
        step('deferred drain', jobs.shift()!);
      }
      if (t.driver.errors.length > 0) fail(`console: device reset: ${t.driver.errors[0]}`);
      // Buffers are not recycled: a reused one could overlap the aliased region.
      for (const queue of t.queues) queue.used();
    }
  });
}
