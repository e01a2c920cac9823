import { describe, expect, it } from 'vitest';
import { memoryLinkPair } from './memory-frame-link.ts';

describe('memoryLinkPair', () => {
  it('delivers copies both ways and shares link state', async () => {
    const [a, b] = memoryLinkPair();
    const atA: Uint8Array[] = [];
    const atB: Uint8Array[] = [];
    const changes: string[] = [];
    a.attach({ onFrame: (f) => atA.push(f), onLinkChange: (up) => changes.push(`a:${up}`) });
    b.attach({ onFrame: (f) => atB.push(f), onLinkChange: (up) => changes.push(`b:${up}`) });
    const f = Uint8Array.of(1, 2, 3);
    expect(a.send(f)).toBe(true);
    f[0] = 9;
    expect(atB).toEqual([Uint8Array.of(1, 2, 3)]);
    b.send(Uint8Array.of(4));
    expect(atA).toEqual([Uint8Array.of(4)]);
    a.setUp(false);
    expect(b.up).toBe(false);
    expect(changes).toEqual(['a:false', 'b:false']);
    expect(b.send(f)).toBe(false);
    expect(b.dropped).toBe(1);

    const [c, d] = memoryLinkPair({ delivery: 'microtask' });
    const got: Uint8Array[] = [];
    d.attach({ onFrame: (x) => got.push(x), onLinkChange: () => {} });
    c.send(Uint8Array.of(5));
    expect(got).toEqual([]);
    await Promise.resolve();
    expect(got).toEqual([Uint8Array.of(5)]);
  });
});
