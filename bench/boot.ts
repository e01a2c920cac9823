/**
 * `npm run bench:boot`: cold boots in headless Chromium, worker start → shell prompt, plus the
 * page's longest main-thread task during boot. Two kinds, alternating: no disk (?disk=none),
 * and a first visit with the default disk (the guest formats it). `--quick`: one boot of each
 * (CI smoke), `--runs N`.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium } from '@playwright/test';
import { createAppServer } from '../src/server/app-server.ts';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { summary } from './stats.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const runsArg = args.indexOf('--runs');
const runs = quick ? 1 : runsArg >= 0 ? Number(args[runsArg + 1]) : 5;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const server = createAppServer({ distDir: path.join(root, 'dist'), host: '127.0.0.1', port: 0 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

const browser = await chromium.launch(chromiumLaunchOptions());
console.log(`boot benchmark: ${runs} cold boot(s), ${os.cpus().length} cores, Chromium ${browser.version()}`);

const KINDS = [
  { label: 'no disk', query: '?disk=none' },
  { label: 'first visit, disk formatted', query: '' },
] as const;

interface Run {
  kind: string;
  total: number;
  image: number;
  firstSerial: number;
  longestTask: number;
}
const results: Run[] = [];
try {
  for (let i = 0; i < runs * KINDS.length; i++) {
    const kind = KINDS[i % KINDS.length];
    // A fresh context: empty HTTP and code caches and OPFS, like a first visit.
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.addInitScript(() => {
      const w = window as unknown as { __longTasks: number[] };
      w.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__longTasks.push(e.duration);
      }).observe({ type: 'longtask', buffered: true });
    });
    await page.goto(url + kind.query);
    await page.evaluate(() => window.virtioLab.ready);
    const r = await page.evaluate(() => {
      const t = window.virtioLab.status().timings;
      const tasks = (window as unknown as { __longTasks: number[] }).__longTasks;
      return {
        kind: '',
        total: t.ready! - t.workerStart!,
        image: t.imageLoaded! - t.workerStart!,
        firstSerial: t.firstSerial! - t.workerStart!,
        longestTask: tasks.length ? Math.max(...tasks) : 0,
      };
    });
    r.kind = kind.label;
    results.push(r);
    console.log(
      `  boot ${i + 1} (${kind.label}): ${r.total.toFixed(0)} ms to prompt (image+wasm ${r.image.toFixed(0)} ms, first console byte ${r.firstSerial.toFixed(0)} ms); longest main-thread task ${r.longestTask.toFixed(0)} ms`,
    );
    await ctx.close();
  }
} finally {
  await browser.close();
  server.close();
}

for (const kind of KINDS) {
  const rs = results.filter((r) => r.kind === kind.label);
  console.log('');
  console.log(`${kind.label}:`);
  console.log(`  worker start → shell prompt:     ${summary(rs.map((r) => r.total))}`);
  console.log(`    of which image + wasm loaded: ${summary(rs.map((r) => r.image))}`);
  console.log(`    first console byte:           ${summary(rs.map((r) => r.firstSerial))}`);
  console.log(`  longest main-thread task:        ${summary(rs.map((r) => r.longestTask))}`);
}
