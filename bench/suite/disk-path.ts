/**
 * `npm run bench:profile -- --opfs`'s device-path part: our virtio-blk request path (parse,
 * execute, status) in a Chromium worker with no guest, on memory and on OPFS (the lab's
 * stack: write cache over a SyncAccessHandle), interleaved round by round. It splits the disk
 * table's "host µs per request" into what our code costs per request and what the FLUSH that
 * ends a write job costs (OPFS's fdatasync), without a guest's noise.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from '@playwright/test';
import { chromiumLaunchOptions } from '../../e2e/chromium.ts';
import { figure, pairedRatio, type Figure } from '../stats.ts';
import type { DiskPathCase, DiskPathReply, DiskPathRequest } from './disk-path-worker.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Each memory case has its OPFS twin: the table pairs them. */
export const DISK_PATH_CASES: DiskPathCase[] = [
  { id: 'rnd-read 4K', op: 'in', bytes: 4096, random: true },
  { id: 'rnd-write 4K', op: 'out', bytes: 4096, random: true },
  { id: 'seq-read 1M', op: 'in', bytes: 1 << 20, random: false },
  { id: 'seq-write 1M', op: 'out', bytes: 1 << 20, random: false },
].flatMap((c) => (['mem', 'opfs', 'behind', 'lab'] as const).map((disk) => ({ ...c, disk, id: `${c.id} ${disk}` }) as DiskPathCase));

/** The write cache's choices, measured against the lab's defaults (`--opfs --variants`). */
export const DISK_PATH_VARIANTS: DiskPathCase[] = [
  { id: 'rnd-write 4K opfs gap 64K', disk: 'opfs', op: 'out', bytes: 4096, random: true, cache: { mergeGapBytes: 64 << 10 } },
  { id: 'seq-write 1M opfs cached', disk: 'opfs', op: 'out', bytes: 1 << 20, random: false, cache: { bypassBytes: Infinity } },
];

export interface DiskPathFigures {
  id: string;
  usPerRequest: Figure;
  flushMs: Figure;
  /** OPFS cases: per-round µs ratio to the memory twin. */
  overMem?: Figure;
}

async function workerBundle(entry = path.join(HERE, 'disk-path-worker.ts')): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    target: 'es2022',
    platform: 'browser',
  });
  return out.outputFiles[0].text;
}

/** A loopback page to run the worker in: OPFS wants a secure (127.0.0.1) origin. */
async function blankOrigin(): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>disk path</title>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export async function measureDiskPath(opts: { ms: number; rounds: number; diskMiB: number; variants?: boolean }): Promise<DiskPathFigures[]> {
  const cases = opts.variants ? [...DISK_PATH_CASES, ...DISK_PATH_VARIANTS] : DISK_PATH_CASES;
  const src = await workerBundle();
  const writerSrc = await workerBundle(path.join(HERE, '../../src/backends/write-behind/writer-worker.ts'));
  const site = await blankOrigin();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-disk-path-'));
  const ctx = await chromium.launchPersistentContext(profile, chromiumLaunchOptions());
  try {
    const page = await ctx.newPage();
    await page.goto(site.origin);
    const request: Omit<DiskPathRequest, 'writerUrl'> = { cases, ms: opts.ms, rounds: opts.rounds, diskBytes: opts.diskMiB << 20, opfsName: 'bench-disk-path' };
    const reply = await page.evaluate(
      ({ src, writerSrc, request }) =>
        new Promise<DiskPathReply>((resolve) => {
          // No named functions in here: the bundler's helpers do not exist in the page.
          const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
          w.onmessage = (e) => resolve(e.data);
          w.onerror = (e) => resolve({ error: e.message });
          w.postMessage({ ...request, writerUrl: URL.createObjectURL(new Blob([writerSrc], { type: 'text/javascript' })) });
        }),
      { src, writerSrc, request },
    );
    if (!reply.usPerRequest || !reply.flushMs) throw new Error(`disk-path worker: ${reply.error}`);
    const us = reply.usPerRequest;
    return cases.map((c, i) => {
      const twin = c.disk !== 'mem' ? cases.findIndex((m) => m.disk === 'mem' && m.op === c.op && m.bytes === c.bytes && m.random === c.random) : -1;
      return {
        id: c.id,
        usPerRequest: figure(us[i]),
        flushMs: figure(reply.flushMs![i]),
        overMem: twin >= 0 ? pairedRatio(us[i], us[twin]) : undefined,
      };
    });
  } finally {
    await ctx.close();
    await site.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
