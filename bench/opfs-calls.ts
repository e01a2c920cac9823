/**
 * `npm run bench:profile -- --opfs`'s measurement, also runnable alone (`node --import tsx
 * bench/opfs-calls.ts [--ms 300] [--rounds 5]`): what one FileSystemSyncAccessHandle call costs
 * in a worker of the real (persistent-profile) Chromium, by size, direction and the buffer it
 * moves — a small standalone buffer, or a view into a large WebAssembly.Memory like v86's
 * guest RAM — interleaved round by round, median (min–max) µs per call. It answers which of
 * our OPFS path's costs are OPFS's and which are ours (docs/design.md, OPFS facts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from '@playwright/test';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { figure, type Figure } from './stats.ts';
import { startBenchServer } from './suite/server.ts';

export interface OpfsCallCase {
  id: string;
  op: 'read' | 'write';
  bytes: number;
  /** Where the call's buffer lives. */
  buffer: 'small' | 'wasm';
  /** Random offsets (4 KiB aligned) or consecutive ones. */
  random: boolean;
}

export const OPFS_CALL_CASES: OpfsCallCase[] = [
  { id: 'read 4K small', op: 'read', bytes: 4096, buffer: 'small', random: true },
  { id: 'read 4K wasm', op: 'read', bytes: 4096, buffer: 'wasm', random: true },
  { id: 'write 4K small', op: 'write', bytes: 4096, buffer: 'small', random: true },
  { id: 'write 4K wasm', op: 'write', bytes: 4096, buffer: 'wasm', random: true },
  { id: 'write 4K seq', op: 'write', bytes: 4096, buffer: 'small', random: false },
  { id: 'write 64K small', op: 'write', bytes: 65536, buffer: 'small', random: true },
  { id: 'write 1M small', op: 'write', bytes: 1 << 20, buffer: 'small', random: true },
  { id: 'read 1M small', op: 'read', bytes: 1 << 20, buffer: 'small', random: true },
];

/** Runs in the worker: every case for `ms` each, `rounds` times interleaved; µs per call. */
const workerSource = `
onmessage = async ({ data: { cases, ms, rounds, fileBytes } }) => {
  const root = await navigator.storage.getDirectory();
  const fh = await root.getFileHandle('bench-opfs-calls.img', { create: true });
  const h = await fh.createSyncAccessHandle();
  try {
    if (h.getSize() !== fileBytes) h.truncate(fileBytes);
    const memory = new WebAssembly.Memory({ initial: 8192 }); // 512 MiB, like a guest's RAM
    const wasm = new Uint8Array(memory.buffer);
    // Touched once, like a running guest's RAM: else the calls' first touches of its pages
    // (page faults) are counted as the OPFS call's cost.
    for (let at = 0; at < wasm.length; at += 4096) wasm[at] = 1;
    const out = cases.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (let c = 0; c < cases.length; c++) {
        const { op, bytes, buffer, random } = cases[c];
        const small = new Uint8Array(bytes).fill(0x5a);
        const slots = Math.floor(fileBytes / bytes);
        let calls = 0, seq = 0;
        const t0 = performance.now();
        const end = t0 + ms;
        while (performance.now() < end) {
          for (let i = 0; i < 8; i++) {
            const at = (random ? Math.floor(Math.random() * slots) : seq++ % slots) * bytes;
            const b = buffer === 'small' ? small : wasm.subarray(at % (wasm.length - bytes), at % (wasm.length - bytes) + bytes);
            if (op === 'read') h.read(b, { at }); else h.write(b, { at });
            calls++;
          }
        }
        out[c].push(((performance.now() - t0) * 1000) / calls);
      }
    }
    h.flush();
    postMessage({ out });
  } catch (e) {
    postMessage({ error: String(e && e.stack || e) });
  } finally {
    h.close();
  }
};`;

export async function measureOpfsCalls(opts: { ms: number; rounds: number; fileMiB: number }): Promise<Map<string, Figure>> {
  const server = await startBenchServer();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-opfs-calls-'));
  const ctx = await chromium.launchPersistentContext(profile, chromiumLaunchOptions());
  try {
    const page = await ctx.newPage();
    await page.goto(`${server.origin}/stock/`);
    const result = await page.evaluate(
      ({ src, cases, ms, rounds, fileBytes }) =>
        new Promise<{ out?: number[][]; error?: string }>((resolve) => {
          const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
          w.onmessage = (e) => resolve(e.data);
          w.postMessage({ cases, ms, rounds, fileBytes });
        }),
      { src: workerSource, cases: OPFS_CALL_CASES, ms: opts.ms, rounds: opts.rounds, fileBytes: opts.fileMiB << 20 },
    );
    if (!result.out) throw new Error(`opfs-calls worker: ${result.error}`);
    return new Map(OPFS_CALL_CASES.map((c, i) => [c.id, figure(result.out![i])]));
  } finally {
    await ctx.close();
    await server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const figures = await measureOpfsCalls({ ms: arg('ms', 300), rounds: arg('rounds', 5), fileMiB: 256 });
  console.log(`load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; µs per SyncAccessHandle call, median (min–max):`);
  for (const [id, f] of figures) console.log(`  ${id.padEnd(16)} ${f.median.toFixed(1).padStart(8)}  (${f.min.toFixed(1)}–${f.max.toFixed(1)})`);
  process.exit(0);
}
