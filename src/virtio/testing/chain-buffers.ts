/**
 * The buffers of a test chain before any ring is written: both driver queues (split, packed)
 * place them the same way, only the descriptors they write for them differ.
 */
import type { Region } from '../queue/descriptor-chain.ts';
import type { ArrayMemory } from './array-memory.ts';
import type { AliasedSpec, ChainSpec, RawBuffer } from './driver-ring.ts';

/** A buffer with its direction settled. */
export type ChainBuffer = RawBuffer & { write: boolean };

export interface ChainBuffers {
  /** In descriptor order. */
  buffers: ChainBuffer[];
  /** The device-writable ones (non-empty), in order: where used data is read back from. */
  writable: Region[];
}

/**
 * Allocates and fills `spec`'s readable buffers, allocates its writable ones poisoned with
 * 0xee (shows what the device did not write), and orders them as `spec.order` says, then
 * readable before writable.
 */
export function placeChainBuffers(spec: ChainSpec, memory: ArrayMemory, arena: { alloc(len: number, align?: number): number }): ChainBuffers {
  const readableParts: ChainBuffer[] = [];
  for (const bytes of spec.readable ?? []) {
    const addr = arena.alloc(bytes.length, 8);
    memory.write(addr, bytes);
    readableParts.push({ addr, len: bytes.length, write: false });
  }
  const writable: Region[] = [];
  const writableParts: ChainBuffer[] = [];
  for (const len of spec.writable ?? []) {
    const addr = arena.alloc(len, 8);
    memory.bytes.fill(0xee, addr, addr + len);
    writableParts.push({ addr, len, write: true });
    writable.push({ addr, len });
  }
  const buffers: ChainBuffer[] = [];
  for (const write of spec.order ?? []) {
    const next = (write ? writableParts : readableParts).shift();
    if (next) buffers.push(next);
  }
  buffers.push(...readableParts, ...writableParts);
  if (buffers.length === 0) throw new Error('empty chain');
  return { buffers, writable };
}

/** `spec.count` buffers over the same guest bytes: the first `spec.readable` driver-readable, the rest device-writable. */
export function aliasedBuffers(spec: AliasedSpec): ChainBuffers {
  const buffers = Array.from({ length: spec.count }, (_, k): ChainBuffer => {
    const write = k >= spec.readable;
    return write ? { addr: spec.writeAddr ?? spec.addr, len: spec.len, write } : { addr: spec.addr, len: spec.readLen ?? spec.len, write };
  });
  const writable = buffers.filter((b) => b.write && b.len > 0).map(({ addr, len }) => ({ addr, len }));
  return { buffers, writable };
}

/** The first `len` bytes the device wrote into a used chain's writable `regions` (fewer if they hold less). */
export function gatherWritten(memory: ArrayMemory, regions: readonly Region[], len: number): Uint8Array {
  const data = new Uint8Array(Math.min(len, regions.reduce((s, r) => s + r.len, 0)));
  let done = 0;
  for (const r of regions) {
    if (done >= data.length) break;
    const n = Math.min(r.len, data.length - done);
    data.set(memory.bytes.subarray(r.addr, r.addr + n), done);
    done += n;
  }
  return data;
}
