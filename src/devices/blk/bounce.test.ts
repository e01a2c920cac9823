import { describe, expect, it } from 'vitest';
import { BounceBuffer } from './bounce.ts';

describe('BounceBuffer', () => {
  it('hands out views of one buffer that grows to the largest request, never past its cap', () => {
    const b = new BounceBuffer(1 << 20);
    const a = b.take(4096)!;
    expect(a.length).toBe(4096);
    const big = b.take(1 << 20)!;
    expect(big.length).toBe(1 << 20);
    expect(b.take(512)!.buffer).toBe(big.buffer); // reused, not reallocated
    expect(b.take((1 << 20) + 1)).toBeUndefined();
  });
});
