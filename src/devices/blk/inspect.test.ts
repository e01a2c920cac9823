import { describe, expect, it } from 'vitest';
import { GuardedMemory } from '../../virtio/inspect/guarded-memory.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { chain } from '../testing/chain.ts';
import { blkDecoder } from './inspect.ts';

describe('virtio-blk inspector decoder', () => {
  it('blk: type, sector and length at pop, the status byte at completion', () => {
    const mem = new ArrayMemory(1 << 16);
    mem.writeU32(0x100, 0); // IN
    mem.writeU32(0x108, 1600); // sector lo
    const c = chain([[0x100, 16]], [[0x1000, 4096], [0x2000, 1]]);
    const g = new GuardedMemory(mem);
    expect(blkDecoder.popped!(g, 0, c)).toEqual({ detail: 'IN sector 1600 · 4096 B', fields: { type: 'IN', sector: 1600, length: 4096 } });
    mem.writeU8(0x2000, 0);
    expect(blkDecoder.completed!(g, 0, c, 4097)!.detail).toBe('IN sector 1600 · 4096 B → OK');
    mem.writeU8(0x2000, 2);
    expect(blkDecoder.completed!(g, 0, c, 1)!.fields).toMatchObject({ status: 'UNSUPP' });
    // A header outside RAM is not a crash, just no decode.
    expect(blkDecoder.popped!(g, 0, chain([[0xfffff0, 16]], [[0x2000, 1]]))!.detail).toMatch(/short chain/);
  });
});
