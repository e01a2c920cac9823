/** WriteBackCache: which flushes reach the medium, and the host time it reports (mocked clock). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBlockBackend } from './memory-block-backend.ts';
import { CACHE_BLOCK, WriteBackCache, type CacheTimer } from './write-back-cache.ts';

const block = (seed: number) => new Uint8Array(CACHE_BLOCK).fill(seed);

function setup(fault?: MemoryBlockBackend['fault']) {
  const medium = new MemoryBlockBackend(1 << 20, { trackDurability: true, fault });
  let fire: (() => void) | undefined;
  const timer: CacheTimer = (job) => ((fire = job), () => (fire = undefined));
  const cache = new WriteBackCache(medium, { timer, maxAgeMs: 500, bypassBytes: 64 * 1024 });
  return { medium, cache, fireTimer: () => fire?.() };
}

afterEach(() => vi.restoreAllMocks());

describe('WriteBackCache: flushes the medium only when it has something to keep', () => {
  it('the first flush after opening reaches the medium; a second with no write in between does not', () => {
    const { medium, cache } = setup();
    cache.flush();
    expect(medium.counts.flush).toBe(1);
    cache.flush();
    cache.flush();
    expect(medium.counts.flush).toBe(1);
    expect(cache.stats.flushesSkipped).toBe(2);
  });

  it('every path that changes the medium makes the next flush reach it', () => {
    const { medium, cache, fireTimer } = setup();
    cache.flush();
    const changes: Array<() => void> = [
      () => cache.write(0, block(1)), // cached, written out by the flush
      () => (cache.write(8 * CACHE_BLOCK, block(2)), fireTimer()), // written out by the timer
      () => cache.write(0, new Uint8Array(64 * 1024).fill(3)), // bypasses the cache
      () => cache.discard(4 * CACHE_BLOCK, CACHE_BLOCK),
      () => cache.writeZeroes(12 * CACHE_BLOCK, 512),
    ];
    let flushes = medium.counts.flush;
    for (const change of changes) {
      change();
      cache.flush();
      expect(medium.counts.flush).toBe(++flushes);
      expect(Buffer.compare(medium.durable!, medium.bytes)).toBe(0);
      cache.flush(); // nothing new
      expect(medium.counts.flush).toBe(flushes);
    }
  });

  it('a flush that failed is retried by the next one, as is a write that failed part-way', () => {
    let failFlush = true;
    let failWrite = false;
    const { medium, cache } = setup((op) => (op === 'flush' && failFlush ? 'io' : op === 'write' && failWrite ? 'quota' : undefined));
    cache.write(0, block(5));
    expect(() => cache.flush()).toThrow(/io/);
    failFlush = false;
    cache.flush();
    expect(medium.durable![0]).toBe(5);
    failWrite = true;
    expect(() => cache.write(0, new Uint8Array(64 * 1024))).toThrow(/quota/);
    const before = medium.counts.flush;
    cache.flush(); // the failed write may have changed the medium: not skipped
    expect(medium.counts.flush).toBe(before + 1);
  });
});

describe('WriteBackCache: host time of timer write-outs', () => {
  it('counts the timer write-out in backgroundMs and nothing else there', () => {
    let now = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const medium = new MemoryBlockBackend(1 << 20);
    const slowWrite = medium.write.bind(medium);
    medium.write = (offset, src) => ((now += 3), slowWrite(offset, src));
    let fire: (() => void) | undefined;
    const cache = new WriteBackCache(medium, { timer: (job) => ((fire = job), () => undefined) });
    cache.write(0, block(1));
    cache.write(2 * CACHE_BLOCK, block(2));
    cache.flush(); // a FLUSH's write-out is the request's time, not background
    expect(cache.backgroundMs).toBe(0);
    cache.write(0, block(3));
    cache.write(2 * CACHE_BLOCK, block(4));
    fire!();
    expect(cache.backgroundMs).toBe(6); // two medium writes of 3 ms each
    expect(medium.bytes[2 * CACHE_BLOCK]).toBe(4);
  });
});
