import { describe, expect, it } from 'vitest';
import { Timeline } from './timeline.ts';

describe('Timeline', () => {
  it("tells the decoder of a device reset (it drops state carried between completions), and records the reset", () => {
    let resets = 0;
    const t = new Timeline({ reset: () => void resets++ });
    t.transport('status', -1, undefined, 0x0f);
    expect(resets).toBe(0);
    t.transport('reset', -1, undefined, 0);
    expect(resets).toBe(1);
    expect(t.takeNew().map((e) => e.kind)).toEqual(['status', 'reset']);
  });

  it("a decoder's failing reset costs nothing but itself", () => {
    const t = new Timeline({ reset: () => { throw new Error('boom'); } });
    expect(() => t.transport('reset', -1, undefined, 0)).not.toThrow();
    expect(t.takeNew()).toHaveLength(1);
  });
});
