/**
 * Bundled into a Chromium worker by disk-path.ts: our virtio-blk request path (parse, execute,
 * status byte) without a guest, on a memory disk and on the lab's OPFS stack (OpfsBlockBackend
 * under a WriteBackCache, and the write-behind cache with its writer worker), with guest RAM a view into a large WebAssembly.Memory like v86's.
 * Each case runs `ms` per round, rounds interleaved; the answer is this thread's µs per request
 * (write-behind's waits for room left out: the writer's pace, when a guest would run), and for
 * write cases the time of the FLUSH that ends each round (separately: it is OPFS's fdatasync).
 */
import type { GuestMemory } from '../../src/virtio/bus.ts';
import { GuestMemoryError } from '../../src/virtio/bus.ts';
import type { DescriptorChain, Region } from '../../src/virtio/queue/descriptor-chain.ts';
import type { BlockBackend } from '../../src/backends/block-backend.ts';
import { MemoryBlockBackend } from '../../src/backends/memory-block-backend.ts';
import { OpfsBlockBackend } from '../../src/backends/opfs-block-backend.ts';
import { WriteBackCache, type WriteBackCacheOptions } from '../../src/backends/write-back-cache.ts';
import { ReadCache } from '../../src/backends/read-cache.ts';
import { openWriteBehind } from '../../src/backends/write-behind/open-write-behind.ts';
import { parseBlkRequest } from '../../src/devices/blk/request.ts';
import { executeBlkRequest, type BlkIoTarget } from '../../src/devices/blk/io.ts';
import { BounceBuffer } from '../../src/devices/blk/bounce.ts';
import { DEFAULT_BLK_LIMITS } from '../../src/devices/blk/config.ts';
import { VirtioBlkReqType as T } from '../../src/devices/blk/spec.ts';

export interface DiskPathCase {
  id: string;
  /**
   * 'opfs': the synchronous write cache; 'behind': write-behind (a writer worker stores);
   * 'lab': the lab's disk, the read cache over write-behind.
   */
  disk: 'mem' | 'opfs' | 'behind' | 'lab';
  op: 'in' | 'out';
  /** Bytes per request, moved as 4 KiB guest pages scattered like Linux's. */
  bytes: number;
  random: boolean;
  /** OPFS: the write cache's options for this case (default: the lab's). */
  cache?: WriteBackCacheOptions;
}

export interface DiskPathRequest {
  cases: DiskPathCase[];
  ms: number;
  rounds: number;
  diskBytes: number;
  opfsName: string;
  /** The writer worker's script, for 'behind' cases. */
  writerUrl: string;
}

export interface DiskPathReply {
  /** [case][round]: µs per request, FLUSH excluded; ms of the round's closing FLUSH. */
  usPerRequest?: number[][];
  flushMs?: number[][];
  error?: string;
}

const PAGE = 4096;
const RAM_BYTES = 512 << 20;

/** Guest RAM as the v86 adapter sees it: checked views into a wasm memory. */
class WasmGuestMemory implements GuestMemory {
  readonly u8: Uint8Array;
  constructor(memory: WebAssembly.Memory) {
    this.u8 = new Uint8Array(memory.buffer, 0, RAM_BYTES);
  }
  get size(): number {
    return this.u8.length;
  }
  private check(addr: number, len: number): void {
    if (!Number.isInteger(addr) || !Number.isInteger(len) || addr < 0 || len < 0 || addr + len > this.u8.length) throw new GuestMemoryError(addr, len);
  }
  readU8(addr: number): number {
    this.check(addr, 1);
    return this.u8[addr];
  }
  readU16(addr: number): number {
    this.check(addr, 2);
    return this.u8[addr] | (this.u8[addr + 1] << 8);
  }
  readU32(addr: number): number {
    this.check(addr, 4);
    return (this.readU16(addr) | (this.readU16(addr + 2) << 16)) >>> 0;
  }
  writeU8(addr: number, value: number): void {
    this.check(addr, 1);
    this.u8[addr] = value;
  }
  writeU16(addr: number, value: number): void {
    this.writeU8(addr, value & 0xff);
    this.writeU8(addr + 1, value >> 8);
  }
  writeU32(addr: number, value: number): void {
    this.writeU16(addr, value & 0xffff);
    this.writeU16(addr + 2, value >>> 16);
  }
  view(addr: number, len: number): Uint8Array {
    this.check(addr, len);
    return this.u8.subarray(addr, addr + len);
  }
  read(addr: number, len: number): Uint8Array {
    return this.view(addr, len).slice();
  }
  write(addr: number, bytes: Uint8Array): void {
    this.view(addr, bytes.length).set(bytes);
  }
  written(): void {}
}

/** The chain Linux's virtio_blk builds: header, one region per page (every other page, so none merge), status. */
function chainFor(memory: WasmGuestMemory, c: DiskPathCase, sector: number, slot: number): DescriptorChain {
  const base = (64 << 20) + slot * (4 << 20);
  memory.writeU32(base, c.op === 'in' ? T.VIRTIO_BLK_T_IN : T.VIRTIO_BLK_T_OUT);
  memory.writeU32(base + 4, 0);
  memory.writeU32(base + 8, sector);
  memory.writeU32(base + 12, 0);
  const data: Region[] = [];
  for (let i = 0; i < c.bytes / PAGE; i++) data.push({ addr: base + (1 + 2 * i) * PAGE, len: PAGE });
  const status = { addr: base + 16, len: 1 };
  const header = { addr: base, len: 16 };
  const readable = c.op === 'in' ? [header] : [header, ...data];
  const writable = c.op === 'in' ? [...data, status] : [status];
  const sum = (rs: Region[]) => rs.reduce((n, r) => n + r.len, 0);
  return { headIndex: slot, readable, writable, readableLength: sum(readable), writableLength: sum(writable), indirect: false };
}

function flushRequest(memory: WasmGuestMemory): DescriptorChain {
  const base = 60 << 20;
  memory.writeU32(base, T.VIRTIO_BLK_T_FLUSH);
  return { headIndex: 0, readable: [{ addr: base, len: 16 }], writable: [{ addr: base + 16, len: 1 }], readableLength: 16, writableLength: 1, indirect: false };
}

async function run({ cases, ms, rounds, diskBytes, opfsName, writerUrl }: DiskPathRequest): Promise<DiskPathReply> {
  const memory = new WasmGuestMemory(new WebAssembly.Memory({ initial: RAM_BYTES >> 16 }));
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle('disks', { create: true });
  const w = await (await dir.getFileHandle(opfsName, { create: true })).createWritable();
  await w.truncate(diskBytes);
  await w.close();
  // Shared handles ('readwrite-unsafe'), so the write-behind cases' handles can coexist with it.
  const opfs = await OpfsBlockBackend.open(opfsName, { shared: true });
  const wantBehind = cases.some((c) => c.disk === 'behind' || c.disk === 'lab');
  const behind = wantBehind ? await openWriteBehind(opfsName, { writerUrl }) : undefined;
  if (wantBehind && !behind) throw new Error('write-behind is not available in this browser');
  // Over the same writer as 'behind': the bytes read are not checked, only the cost.
  const lab = behind && new ReadCache(behind);
  const mem = new MemoryBlockBackend(diskBytes);
  const shape = { capacitySectors: diskBytes / 512, limits: DEFAULT_BLK_LIMITS };
  const target = (backend: BlockBackend): BlkIoTarget => ({
    memory,
    backend,
    serial: new Uint8Array(0),
    readOnly: false,
    discard: true,
    writeZeroes: true,
    bounce: backend.coalesceRequests ? new BounceBuffer() : undefined,
    bounceWrites: backend.coalesceRequests === true,
  });
  // One target per case: OPFS cases differ in their cache's options, all over the one handle.
  const targets = cases.map((c) =>
    target(c.disk === 'mem' ? mem : c.disk === 'behind' ? behind! : c.disk === 'lab' ? lab! : new WriteBackCache(opfs, c.cache)),
  );
  const usPerRequest: number[][] = cases.map(() => []);
  const flushMs: number[][] = cases.map(() => []);
  // The same chains every round: building them is the driver's work, not the device's.
  const slots = 8;
  try {
    for (let round = 0; round < rounds; round++) {
      for (let ci = 0; ci < cases.length; ci++) {
        const c = cases[ci];
        const target = targets[ci];
        const sectorsPerReq = c.bytes / 512;
        const places = Math.floor(diskBytes / c.bytes);
        const chains = Array.from({ length: slots }, (_, s) => chainFor(memory, c, 0, s));
        let n = 0;
        let seq = 0;
        let waited = 0;
        const t0 = performance.now();
        const end = t0 + ms;
        while (performance.now() < end) {
          for (let k = 0; k < 16; k++) {
            const chain = chains[n % slots];
            const sector = (c.random ? Math.floor(Math.random() * places) : seq++ % places) * sectorsPerReq;
            memory.u8[chain.readable[0].addr + 8] = sector & 0xff; // rewrite the header's sector in place
            memory.u8[chain.readable[0].addr + 9] = (sector >> 8) & 0xff;
            memory.u8[chain.readable[0].addr + 10] = (sector >> 16) & 0xff;
            memory.u8[chain.readable[0].addr + 11] = (sector >>> 24) & 0xff;
            const req = parseBlkRequest(memory, chain, shape);
            if (req.kind !== 'request') throw new Error('unanswerable');
            // Write-behind: a write waits for room as the device would make it wait. The wait is
            // the writer's pace, not this thread's work (a guest would run meanwhile): not counted.
            if (c.op === 'out') {
              for (let w = target.backend.admit?.('write', req.offset, req.dataLength); w; w = target.backend.admit?.('write', req.offset, req.dataLength)) {
                const w0 = performance.now();
                await w;
                waited += performance.now() - w0;
              }
            }
            const out = executeBlkRequest(req, target);
            if (out.status !== 0) throw new Error(`${c.id}: status ${out.status}: ${out.reason}`);
            memory.writeU8(req.statusAddr, out.status);
            n++;
          }
        }
        usPerRequest[ci].push(((performance.now() - t0 - waited) * 1000) / n);
        const f0 = performance.now();
        const fr = parseBlkRequest(memory, flushRequest(memory), shape);
        if (target.backend.flushAsync) await target.backend.flushAsync();
        else if (fr.kind !== 'request' || executeBlkRequest(fr, target).status !== 0) throw new Error('flush failed');
        flushMs[ci].push(performance.now() - f0);
      }
    }
    return { usPerRequest, flushMs };
  } finally {
    await behind?.close();
    opfs.close();
  }
}

onmessage = async ({ data }: MessageEvent<DiskPathRequest>) => {
  try {
    postMessage(await run(data));
  } catch (e) {
    postMessage({ error: String((e as Error)?.stack ?? e) } satisfies DiskPathReply);
  }
};
