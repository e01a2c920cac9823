/**
 * virtio-rng's fuzz campaign (`npm run fuzz -- --only rng`):
 *  - random requests: batches of chains with any writable sizes (zero-length and readable-only
 *    ones too), direct or indirect, with or without EVENT_IDX, resets between batches. Every
 *    chain comes back exactly once with min(its capacity, RNG_MAX_BYTES_PER_REQUEST) bytes,
 *    the source's bytes in submission order; the device writes guest RAM only inside the
 *    chains' writable buffers; a batch that completed something raised the interrupt.
 *  - the "bounded work" property. Up to a queue's worth of chains whose writable descriptors all alias one guest buffer (up to
 * 63 × 1 MiB each): one kick fills at most RNG_MAX_BYTES_PER_REQUEST per chain, stays within
 * the descriptor's kickBudget and WORK_MS_BOUND, and returns each chain with exactly the bytes
 * it filled (§5.4.6.1: fewer than the buffer holds is allowed). On split rings and, named
 * "… (packed)", on packed ones (§2.8).
 */
import fc from 'fast-check';
import { Feature, featureBit } from '../../virtio/constants.ts';
import { checkInvariants, fail, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { DriverMock, type Submitted } from '../../virtio/testing/driver-mock.ts';
import { equalBytes } from '../testing/equal-bytes.ts';
import { ringFeatures } from '../testing/ring-layout.ts';
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

const requestArb = fc.record({
  /** Driver-readable junk first: the device ignores it. */
  readable: fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 2 }),
  writable: fc.array(fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: RNG_MAX_BYTES_PER_REQUEST + 1000 })), { maxLength: 3 }),
  indirect: fc.boolean(),
});

const trafficArb = fc.record({
  eventIdx: fc.boolean(),
  indirect: fc.boolean(),
  batches: fc.array(fc.record({ requests: fc.array(requestArb, { minLength: 1, maxLength: 12 }), resetAfter: fc.boolean() }), { minLength: 1, maxLength: 5 }),
});

const sourceByte = (n: number) => (n * 7 + 3) & 0xff;

/** Random requests on `ring`: each chain back once, with the source's next bytes, written only where it may be. */
export function rngTrafficProperty(ring: RingLayout = 'split'): fc.IProperty<any> {
  return fc.property(trafficArb, ({ eventIdx, indirect, batches }) => {
    // The source's n-th byte is a function of n: the bytes the guest gets say which ones it got.
    let served = 0;
    const t = DriverMock.create(
      new VirtioRng((buf) => {
        for (let i = 0; i < buf.length; i++) buf[i] = sourceByte(served++);
      }),
      { memorySize: 1 << 20, pci: { ring } },
    );
    const features = ringFeatures(
      featureBit(Feature.VIRTIO_F_VERSION_1) | (indirect ? featureBit(Feature.VIRTIO_F_RING_INDIRECT_DESC) : 0n) | (eventIdx ? featureBit(Feature.VIRTIO_F_RING_EVENT_IDX) : 0n),
      ring,
    );
    let [q] = t.initRings({ features });
    if (q.layout !== ring) fail(`rng: negotiated a ${q.layout} ring, not ${ring}`);
    for (const batch of batches) {
      q.armInterrupt();
      const subs: Array<{ sub: Submitted; capacity: number }> = [];
      for (const r of batch.requests) {
        const parts = r.readable.length + r.writable.length;
        const asIndirect = r.indirect && indirect && parts <= q.size;
        if (parts === 0 || q.freeDescriptors < (asIndirect ? 1 : parts)) continue;
        subs.push({ sub: q.add({ readable: r.readable, writable: r.writable, indirect: asIndirect }), capacity: r.writable.reduce((a, b) => a + b, 0) });
      }
      if (subs.length === 0) continue;
      const from = served;
      const notices = t.memory.writtenNotices.length;
      q.kick();
      const used = new Map(q.used().map((u) => [u.head, u]));
      if (used.size !== subs.length) fail(`rng: ${used.size} chains came back of ${subs.length}`);
      let at = from;
      for (const { sub, capacity } of subs) {
        const u = used.get(sub.head) ?? fail(`rng: chain ${sub.head} never came back (or came back twice)`);
        const want = Math.min(capacity, RNG_MAX_BYTES_PER_REQUEST);
        if (u.len !== want) fail(`rng: chain of ${capacity} bytes came back with len ${u.len}, expected ${want}`);
        const expected = Uint8Array.from({ length: want }, (_, i) => sourceByte(at + i));
        if (!equalBytes(u.data, expected)) fail(`rng: chain ${sub.head} holds other bytes than the source gave it`);
        at += want;
      }
      const allowed = subs.flatMap(({ sub }) => sub.writable);
      for (const w of t.memory.writtenNotices.slice(notices)) {
        if (!allowed.some((r) => w.addr >= r.addr && w.addr + w.len <= r.addr + r.len)) fail(`rng: device wrote [0x${w.addr.toString(16)}, +${w.len}) outside the chains`);
      }
      if (!t.irq.level || (t.readIsr() & 1) === 0) fail('rng: no queue interrupt after completions');
      checkInvariants(t);
      t.recycleBuffers();
      if (batch.resetAfter) [q] = t.initRings({ features });
    }
    if (t.errors.length > 0) fail(`rng: unexpected error: ${t.errors[0]}`);
  });
}

/** Each property on split rings, then on packed ones ("… (packed)"). */
export function rngProperties(): NamedProperty[] {
  return RING_LAYOUTS.flatMap((ring) => [
    { name: onRing('rng: random requests come back once each with the source bytes, written only into the chains', ring), property: rngTrafficProperty(ring) },
    { name: onRing('rng: bounded work per kick on aliased buffers of any size', ring), property: rngBoundedWorkProperty(ring) },
  ]);
}
