import { describe, expect, it } from 'vitest';
import { ArrayMemory } from './array-memory.ts';
import { assertWithinBudget, measure, WorstCases } from './work-meter.ts';

describe('work meter', () => {
  it('counts the accesses and bytes of one action, not earlier ones', () => {
    const memory = new ArrayMemory(4096);
    memory.read(0, 100);
    const work = measure(memory, () => {
      memory.readU32(8);
      memory.view(16, 1000);
      memory.write(2000, new Uint8Array(10));
    }, () => ({ frames: 3 }));
    expect(work.accesses).toBe(3);
    expect(work.bytes).toBe(4 + 1000 + 10);
    expect(work.extra.frames).toBe(3);
  });

  it('fails over a budget and names the metric', () => {
    const work = { accesses: 5, bytes: 70000, ms: 1, extra: { frames: 2 } };
    expect(() => assertWithinBudget('kick', work, { bytes: 65536 })).toThrow(/bytes 70000 over its budget 65536/);
    expect(() => assertWithinBudget('kick', work, { frames: 1 })).toThrow(/frames 2 over its budget 1/);
    expect(() => assertWithinBudget('kick', { ...work, ms: 5000 }, {})).toThrow(/took 5000.0 ms/);
    expect(() => assertWithinBudget('kick', work, { bytes: 70000, frames: 2 })).not.toThrow();
  });

  it('keeps the largest value per metric with where it was seen', () => {
    const worst = new WorstCases();
    worst.note('ring: bytes per kick', 10, 'case a', 100);
    worst.note('ring: bytes per kick', 50, 'case b', 100);
    worst.note('ring: bytes per kick', 20, 'case c', 100);
    expect(worst.entries()).toEqual([['ring: bytes per kick', { value: 50, budget: 100, where: 'case b' }]]);
  });
});
