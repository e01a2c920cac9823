import { describe, expect, it } from 'vitest';
import type { FunctionSnapshot, TimelineEvent } from '../../virtio/inspect/types.ts';
import { RateHistory } from './rates.ts';

const fn = (requests: number[], events: Partial<TimelineEvent>[] = []) =>
  ({
    name: 'virtio-blk',
    queues: requests.map((r) => ({ counters: { kicks: 0, requests: r, interrupts: 0, completions: 0 } })),
    events: events as TimelineEvent[],
  }) as unknown as FunctionSnapshot;

describe('RateHistory', () => {
  it('samples once a second and turns counters into per-second rates', () => {
    const h = new RateHistory();
    h.add(0, fn([0, 0]));
    h.add(500, fn([50, 0], [{ kind: 'pop', len: 4096 }])); // within the second: bytes count, no sample
    h.add(1000, fn([100, 20], [{ kind: 'pop', len: 4096 }, { kind: 'complete', len: 4097 }]));
    h.add(3000, fn([300, 20]));
    expect(h.rates().requestsPerSecond).toEqual([120, 100]);
    expect(h.rates().bytesPerSecond).toEqual([8192, 0]);
  });

  it('never reports negative rates after a reset zeroes the counters', () => {
    const h = new RateHistory();
    h.add(0, fn([500]));
    h.add(1000, fn([3]));
    expect(h.rates().requestsPerSecond).toEqual([0]);
  });

  it('keeps at most a minute', () => {
    const h = new RateHistory();
    for (let s = 0; s <= 100; s++) h.add(s * 1000, fn([s]));
    expect(h.rates().requestsPerSecond).toHaveLength(60);
  });
});
