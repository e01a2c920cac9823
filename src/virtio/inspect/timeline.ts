/**
 * The inspector's event timeline for one function: a bounded ring of kicks, pops,
 * completions, interrupts, resets and errors, with decoded requests. It exists only while
 * someone inspects (VirtioPciFunction.tracer); otherwise the devices pay nothing for it.
 */
import { statusNames } from '../constants.ts';
import type { DescriptorChain } from '../queue/descriptor-chain.ts';
import type { Virtqueue } from '../queue/virtqueue.ts';
import type { FunctionTracer, TransportEventKind } from '../pci/virtio-pci-function.ts';
import { GuardedMemory } from './guarded-memory.ts';
import type { TimelineEvent } from './types.ts';

export interface Decoded {
  detail: string;
  fields?: Record<string, string | number>;
}

/** Per device type: what a request means (blk header, net frame, rng bytes). Must not throw. */
export interface RequestDecoder {
  /** At pop: what the driver's buffers say (blk header, a tx frame). */
  popped?(mem: GuardedMemory, queue: number, chain: DescriptorChain): Decoded | undefined;
  /** At completion: what the device answered (blk status, an rx frame, rng bytes). */
  completed?(mem: GuardedMemory, queue: number, chain: DescriptorChain | undefined, len: number): Decoded | undefined;
  /** The device was reset: forget whatever a decoder carries from one completion to the next. */
  reset?(): void;
}

export class Timeline implements FunctionTracer {
  private readonly ring: (TimelineEvent | undefined)[];
  private seq = 0;
  private sentSeq = 0;
  /** Chains popped and not completed, to decode their answers (key: queue << 16 | head). */
  private readonly inFlight = new Map<number, DescriptorChain>();

  constructor(
    private readonly decoder: RequestDecoder = {},
    readonly capacity = 1024,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.ring = new Array<TimelineEvent | undefined>(capacity);
  }

  private record(ev: Omit<TimelineEvent, 'seq' | 't'>): void {
    const seq = ++this.seq;
    this.ring[seq % this.capacity] = { seq, t: this.clock(), ...ev };
  }

  transport(kind: TransportEventKind, queue: number, detail?: string, status?: number): void {
    if (kind === 'reset') {
      this.inFlight.clear();
      this.decode(() => void this.decoder.reset?.());
    }
    if (status !== undefined) {
      const hex = `0x${status.toString(16).padStart(2, '0')}`;
      this.record({ kind, queue, detail: detail ?? `${hex}: ${statusNames(status).join(' | ') || 'reset'}`, fields: { status } });
      return;
    }
    this.record(detail === undefined ? { kind, queue } : { kind, queue, detail });
  }

  popped(queue: Virtqueue, chain: DescriptorChain): void {
    this.inFlight.set((queue.index << 16) | chain.headIndex, chain);
    const d = this.decode(() => this.decoder.popped?.(new GuardedMemory(queue.memory), queue.index, chain));
    this.record({ kind: 'pop', queue: queue.index, head: chain.headIndex, len: chain.readableLength + chain.writableLength, ...d });
  }

  completed(queue: Virtqueue, headIndex: number, writtenLen: number): void {
    const key = (queue.index << 16) | headIndex;
    const chain = this.inFlight.get(key);
    this.inFlight.delete(key);
    const d = this.decode(() => this.decoder.completed?.(new GuardedMemory(queue.memory), queue.index, chain, writtenLen));
    this.record({ kind: 'complete', queue: queue.index, head: headIndex, len: writtenLen, ...d });
  }

  /** A decoder's bug costs the event its detail, never the device its request. */
  private decode(fn: () => Decoded | undefined): Partial<Decoded> {
    try {
      return fn() ?? {};
    } catch (error) {
      return { detail: `(decode failed: ${error instanceof Error ? error.message : String(error)})` };
    }
  }

  /** Events recorded since the previous call (at most `capacity`: older ones were overwritten). */
  takeNew(): TimelineEvent[] {
    const from = Math.max(this.sentSeq + 1, this.seq - this.capacity + 1);
    const out: TimelineEvent[] = [];
    for (let s = from; s <= this.seq; s++) {
      const ev = this.ring[s % this.capacity];
      if (ev && ev.seq === s) out.push(ev);
    }
    this.sentSeq = this.seq;
    return out;
  }
}

/** Bytes of a chain's writable regions, at most `len` (what the device wrote). */
export function writtenBytes(mem: GuardedMemory, chain: DescriptorChain, len: number): Uint8Array {
  return gather(mem, chain.writable, len);
}

/** The first `len` bytes of a chain's readable regions. */
export function readableBytes(mem: GuardedMemory, chain: DescriptorChain, len: number): Uint8Array {
  return gather(mem, chain.readable, len);
}

function gather(mem: GuardedMemory, regions: DescriptorChain['readable'], len: number): Uint8Array {
  const out = new Uint8Array(Math.max(0, len));
  let at = 0;
  for (const r of regions) {
    if (at >= out.length) break;
    const n = Math.min(r.len, out.length - at);
    const bytes = mem.bytes(r.addr, n);
    if (!bytes) break;
    out.set(bytes, at);
    at += n;
  }
  return out.subarray(0, at);
}
