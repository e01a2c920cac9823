/**
 * virtio-rng's fuzz campaign (`npm run fuzz -- --only rng`): the "bounded work" property. Up
 * to a queue's worth of chains whose writable descriptors all alias one guest buffer (up to
 * 63 × 1 MiB each): one kick fills at most RNG_MAX_BYTES_PER_REQUEST per chain, stays within
 * the descriptor's kickBudget and WORK_MS_BOUND, and returns each chain with exactly the bytes
 * it filled (§5.4.6.1: fewer than the buffer holds is allowed). On split rings and, named
 * "… (packed)", on packed ones (§2.8).
 */
import fc from 'fast-check';
import { fail, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { DriverMock, type Submitted } from '../../virtio/testing/driver-mock.ts';
import { assertWithinBudget, measure, worstCases } from '../../virtio/testing/work-meter.ts';
import type { RingLayout } from '../../virtio/queue/virtqueue.ts';
import { addAliasedIndirect } from '../testing/aliased-chain.ts';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';
import { rngDevice } from './index.ts';
import { RNG_MAX_BYTES_PER_REQUEST, RNG_QUEUE_SIZE, VirtioRng } from './rng.ts';

const MiB = 1 << 20;

const chainArb = fc.record({
  n: fc.integer({ min: 1, max: RNG_QUEUE_SIZE - 1 }),
  piece: fc.oneof(fc.constant(MiB), fc.integer({ min: 0, max: MiB }), fc.integer({ min: 0, max: 64 })),
  /** Driver-readable junk first (the device ignores it). */
  readable: fc.boolean(),
});
type ChainCase = typeof chainArb extends fc.Arbitrary<infer C> ? C : never;

export function rngBoundedWorkProperty(ring: RingLayout = 'split'): fc.IProperty<[ChainCase[]]> {
  const prefix = ring === 'packed' ? 'rng packed: per kick' : 'rng: per kick';
  return fc.property(fc.array(chainArb, { minLength: 1, maxLength: RNG_QUEUE_SIZE, size: 'max' }), (chains) => {
    let asked = 0;
    const t = DriverMock.create(
      new VirtioRng((buf) => {
        asked += buf.length;
        buf.fill(0xa5);
      }),
      { memorySize: 4 * MiB, pci: { ring } },
    );
    const [q] = t.initRings();
    if (q.layout !== ring) fail(`rng: negotiated a ${q.layout} ring, not ${ring}`);
    const region = t.buffers.alloc(MiB);
    const subs: Array<{ sub: Submitted; total: number }> = [];
    let descriptors = 0;
    for (const c of chains) {
      const sub = addAliasedIndirect(t, q, { head: c.readable ? [new Uint8Array(8)] : [], count: c.n, addr: region, len: c.piece, write: true });
      subs.push({ sub, total: c.n * c.piece });
      descriptors += c.n + 2;
    }
    const ringBytes = 16 * descriptors + 32 * subs.length + 64;
    const budgets = { bytes: rngDevice.kickBudget!.bytes + ringBytes, randomBytes: RNG_QUEUE_SIZE * RNG_MAX_BYTES_PER_REQUEST };
    const work = measure(t.memory, () => q.kick(), () => ({ randomBytes: asked }));
    const where = `${chains.length} chains of ≤ ${Math.max(...chains.map((c) => c.n * c.piece))} bytes`;
    worstCases.noteWork(prefix, work, where, budgets);
    assertWithinBudget('rng kick', work, budgets);
    if (t.errors.length > 0) fail(`rng: device reset: ${t.errors[0]}`);
    const used = new Map(q.used().map((u) => [u.head, u.len]));
    for (const { sub, total } of subs) {
      const len = used.get(sub.head);
      if (len !== Math.min(total, RNG_MAX_BYTES_PER_REQUEST)) fail(`rng: chain of ${total} bytes came back with ${len}`);
    }
  });
}

export function rngProperties(): NamedProperty[] {
  return RING_LAYOUTS.map((ring) => ({ name: onRing('rng: bounded work per kick on aliased buffers of any size', ring), property: rngBoundedWorkProperty(ring) }));
}
