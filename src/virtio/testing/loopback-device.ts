/**
 * A device for transport and queue tests: each chain's readable bytes are copied into
 * its writable buffers (or, with nothing to read, a pattern derived from the head fills
 * them). Chains can be held back to test completion order, resets mid-flight, batching.
 */
import { ConfigSpace } from '../config-space.ts';
import type { DeviceContext, VirtioDevice } from '../device.ts';
import { RegionCursor, gatherReadable, type DescriptorChain } from '../queue/descriptor-chain.ts';

export interface LoopbackOptions {
  queues?: number;
  maxQueueSize?: number;
  deviceFeatures?: bigint;
  configSize?: number;
  /** false: chains stay in `held` until complete() (default true). */
  autoComplete?: boolean;
}

export interface HeldChain {
  queueIndex: number;
  chain: DescriptorChain;
}

/** What the loopback device writes for a chain with `readable` input and `capacity` writable bytes. */
export function loopbackOutput(head: number, readable: Uint8Array, capacity: number): Uint8Array {
  if (readable.length > 0) return readable.subarray(0, capacity);
  const out = new Uint8Array(capacity);
  for (let i = 0; i < capacity; i++) out[i] = (head * 31 + i * 7) & 0xff;
  return out;
}

export class LoopbackDevice implements VirtioDevice {
  readonly name = 'loopback';
  readonly deviceId = 0x3f;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: number[];
  readonly deviceConfig: ConfigSpace;
  readonly held: HeldChain[] = [];
  /** Every chain popped, in order. */
  readonly popped: HeldChain[] = [];
  autoComplete: boolean;
  activations = 0;
  resets = 0;
  ctx: DeviceContext | undefined;

  constructor(options: LoopbackOptions = {}) {
    this.queueMaxSizes = new Array(options.queues ?? 1).fill(options.maxQueueSize ?? 256);
    this.deviceFeatures = options.deviceFeatures ?? 0n;
    const configSize = options.configSize ?? 8;
    // Config: bytes 0..3 read-only magic, the rest writable by the driver.
    this.deviceConfig = new ConfigSpace(configSize, (offset) => offset >= 4);
    if (configSize >= 4) this.deviceConfig.setU32(0, 0x5a5a0001);
    this.autoComplete = options.autoComplete ?? true;
  }

  activate(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.activations++;
  }
  reset(): void {
    this.ctx = undefined;
    this.held.length = 0;
    this.resets++;
  }

  notify(queueIndex: number): void {
    const queue = this.ctx?.queue(queueIndex);
    if (!queue) return;
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      const item = { queueIndex, chain };
      this.popped.push(item);
      if (this.autoComplete) this.finish(item);
      else this.held.push(item);
    }
    if (this.autoComplete) this.ctx!.signalUsed(queue);
  }

  /** Complete held chains (all, or those picked), then signal once per touched queue. */
  complete(pick: (held: HeldChain) => boolean = () => true): number {
    const ctx = this.ctx;
    if (!ctx) return 0;
    const touched = new Set<number>();
    let n = 0;
    for (let i = 0; i < this.held.length; ) {
      if (pick(this.held[i])) {
        const [item] = this.held.splice(i, 1);
        this.finish(item);
        touched.add(item.queueIndex);
        n++;
      } else i++;
    }
    for (const q of touched) {
      const queue = ctx.queue(q);
      if (queue) ctx.signalUsed(queue);
    }
    return n;
  }

  private finish({ queueIndex, chain }: HeldChain): void {
    const ctx = this.ctx!;
    const queue = ctx.queue(queueIndex);
    if (!queue) return;
    const input = gatherReadable(ctx.memory, chain);
    const output = loopbackOutput(chain.headIndex, input, chain.writableLength);
    const written = new RegionCursor(ctx.memory, chain.writable).write(output);
    queue.pushUsed(chain.headIndex, written);
  }
}
