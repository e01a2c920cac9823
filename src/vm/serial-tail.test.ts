import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SerialTail } from './serial-tail.ts';

describe('SerialTail', () => {
  it('keeps exactly the newest `limit` bytes of any sequence of pushes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 30 }), (limit, pushes) => {
        const tail = new SerialTail(limit);
        const all: number[] = [];
        for (const p of pushes) {
          tail.push(p);
          all.push(...p);
        }
        expect([...tail.bytes()]).toEqual(all.slice(Math.max(0, all.length - limit)));
      }),
    );
  });

  it('copies what it is given (the worker transfers the original away)', () => {
    const tail = new SerialTail(8);
    const b = Uint8Array.of(1, 2, 3);
    tail.push(b);
    b[0] = 9;
    expect([...tail.bytes()]).toEqual([1, 2, 3]);
  });
});
