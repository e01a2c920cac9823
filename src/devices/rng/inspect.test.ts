import { describe, expect, it } from 'vitest';
import { GuardedMemory } from '../../virtio/inspect/guarded-memory.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { rngDecoder } from './inspect.ts';

describe('virtio-rng inspector decoder', () => {
  it('rng: the bytes returned', () => {
    const g = new GuardedMemory(new ArrayMemory(64));
    expect(rngDecoder.completed!(g, 0, undefined, 64)).toEqual({ detail: '64 random bytes', fields: { bytes: 64 } });
  });
});
