import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RING_LAYOUTS, onRing } from '../testing/ring-layout.ts';
import { netCtrlBoundedCase, type CtrlCase } from './bounded-work.ts';
import { CTRL_MAX_REQUEST_BYTES, CTRL_QUEUE_SIZE, ctrlKickBudget } from './ctrl-budget.ts';

const worst: CtrlCase[] = [
  // A full ring of requests just within the byte bound: each is read whole.
  { chains: CTRL_QUEUE_SIZE, readLen: CTRL_MAX_REQUEST_BYTES, pieces: 1, request: 'table', ackLen: 1, indirect: true, seed: 1 },
  // 63 descriptors of 1 MiB each per chain, all over one buffer: refused unread.
  { chains: CTRL_QUEUE_SIZE, readLen: 1 << 20, pieces: CTRL_QUEUE_SIZE - 1, request: 'lying-table', ackLen: 64, indirect: true, seed: 2 },
  // A table claiming 2^32-1 entries in 4 KiB, and requests with no room for their ack.
  { chains: 32, readLen: 2048, pieces: 2, request: 'lying-table', ackLen: 0, indirect: false, seed: 3 },
];

describe('virtio-net control queue: bounded work per kick', () => {
  it('the budget is a ring of requests at the byte bound plus the ring walk', () => {
    const b = ctrlKickBudget(CTRL_QUEUE_SIZE);
    expect(b.requests).toBe(CTRL_QUEUE_SIZE);
    expect(b.bytes).toBeGreaterThan(CTRL_QUEUE_SIZE * CTRL_MAX_REQUEST_BYTES);
    expect(b.bytes).toBeLessThan(2 * CTRL_QUEUE_SIZE * CTRL_MAX_REQUEST_BYTES);
  });

  for (const ring of RING_LAYOUTS) {
    it(onRing('adversarial rings stay within the budget, every request answered in the kick', ring), () => {
      for (const c of worst) netCtrlBoundedCase(c, ring);
    });
  }

  it('random rings (property)', () => {
    const arb = fc.record({
      chains: fc.integer({ min: 1, max: CTRL_QUEUE_SIZE }),
      readLen: fc.oneof(fc.integer({ min: 0, max: 2 * CTRL_MAX_REQUEST_BYTES }), fc.constant(1 << 20)),
      pieces: fc.integer({ min: 1, max: 8 }),
      request: fc.constantFrom('table' as const, 'lying-table' as const, 'noise' as const),
      ackLen: fc.constantFrom(0, 1, 64),
      indirect: fc.boolean(),
      seed: fc.nat(),
    });
    fc.assert(fc.property(arb, fc.constantFrom(...RING_LAYOUTS), (c, ring) => netCtrlBoundedCase(c, ring)), { numRuns: 60 });
  });
});
