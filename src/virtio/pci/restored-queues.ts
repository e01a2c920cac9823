/**
 * A restore's live queues before they are committed: each rebuilt engine with the chains
 * that were in flight, which the device's state claims one by one (DeviceRestoreHost.takeChain).
 * A chain in flight that nobody claims would never be returned to the driver, which would
 * wait for it forever: that state is refused.
 */
import type { DescriptorChain } from '../queue/descriptor-chain.ts';
import type { Virtqueue } from '../queue/virtqueue.ts';
import { FunctionStateError } from '../state/state-reader.ts';

export interface RestoredQueue {
  readonly engine: Virtqueue;
  /** Chains in flight by id, not claimed yet. */
  readonly chains: Map<number, DescriptorChain>;
}

export class RestoredQueues {
  constructor(
    private readonly name: string,
    /** By queue index; undefined for a queue the driver did not enable. */
    private readonly queues: ReadonlyArray<RestoredQueue | undefined>,
  ) {}

  engine(index: number): Virtqueue | undefined {
    return this.queues[index]?.engine;
  }

  /** See DeviceRestoreHost.takeChain. */
  take(queueIndex: number, id: number): DescriptorChain | undefined {
    const queue = this.queues[queueIndex];
    if (!queue) throw new FunctionStateError(`${this.name}: the device state holds a chain of queue ${queueIndex}, which is not enabled`);
    if (!queue.engine.live) return undefined; // a broken queue's chains are gone with it
    const chain = queue.chains.get(id);
    if (!chain) throw new FunctionStateError(`${this.name}: the device state holds chain ${id} of queue ${queueIndex}, which is not in flight (or held twice)`);
    queue.chains.delete(id);
    return chain;
  }

  /** Every chain in flight on a live queue was claimed. */
  requireAllTaken(): void {
    this.queues.forEach((queue, index) => {
      if (!queue?.engine.live) return;
      const [left] = queue.chains.keys();
      if (left !== undefined) throw new FunctionStateError(`${this.name}: queue ${index}: chain ${left} is in flight but the device state does not hold it`);
    });
  }
}
