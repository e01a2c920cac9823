import type { DescriptorChain } from '../../virtio/queue/descriptor-chain.ts';

/** A chain as the queue hands it out, from [addr, len] pairs (for decoder tests). */
export const chain = (readable: [number, number][], writable: [number, number][]): DescriptorChain => ({
  headIndex: 3,
  readable: readable.map(([addr, len]) => ({ addr, len })),
  writable: writable.map(([addr, len]) => ({ addr, len })),
  readableLength: readable.reduce((s, [, l]) => s + l, 0),
  writableLength: writable.reduce((s, [, l]) => s + l, 0),
  indirect: false,
});
