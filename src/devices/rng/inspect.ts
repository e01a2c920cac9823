/** virtio-rng's requests for the inspector's timeline (§5.4.6): how much the driver asked for, how much it got. */
import type { RequestDecoder } from '../../virtio/inspect/timeline.ts';

export const rngDecoder: RequestDecoder = {
  popped: (_mem, _queue, chain) => ({ detail: `asks for ${chain.writableLength} B` }),
  completed: (_mem, _queue, _chain, len) => ({ detail: `${len} random bytes`, fields: { bytes: len } }),
};
