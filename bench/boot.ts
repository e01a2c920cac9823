/**
 * `npm run bench:boot`: cold boots in headless Chromium to the shell prompt. Per run, in
 * fresh browser contexts (empty caches and OPFS, like a new user):
 *   - no disk (?disk=none), the reference `npm run bench` also measures;
 *   - first visit: the default disk is created, formatted from the image's ext4 template
 *     (and the boot state saved at the prompt); then a cold return visit (`?boot=cold`, same
 *     context): the disk exists, the guest image comes from Cache Storage (guest files
 *     downloaded are counted: should be 0);
 *   - first visit with a blank disk: the manifest served without its templates, so the
 *     guest's /init formats the disk (what every first visit did before the templates).
 * Reported: worker start → shell prompt (and its parts), page load → prompt, the page's
 * longest main-thread task, and the first visit / return ratio (issue #14: ≤ 1.2).
 * `--quick`: one run (CI smoke), `--runs N`.
 */
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { createAppServer } from '../src/server/app-server.ts';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { median, summary } from './stats.ts';
import { ROOT } from './suite/server.ts';
import { BOOT_LIMIT_MS, within } from './suite/within.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const runsArg = args.indexOf('--runs');
const runs = quick ? 1 : runsArg >= 0 ? Number(args[runsArg + 1]) : 5;

interface Boot {
  kind: string;
  total: number;
  image: number;
  firstSerial: number;
  pageToPrompt: number;
  longestTask: number;
  /** Guest image files (not the manifest) fetched from the network during this load. */
  guestFiles: number;
  /** What /init said about /dev/vda. */
  disk: string;
}

const NO_DISK = 'no disk';
const FIRST = 'first visit (disk from template)';
const RETURN = 'return visit, cold boot (disk exists, image cached)';
const BLANK = 'first visit, blank disk (guest mkfs)';

const server = createAppServer({ distDir: path.join(ROOT, 'dist'), host: '127.0.0.1', port: 0 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

async function newContext(blankDisk: boolean): Promise<BrowserContext> {
  const ctx = await browser.newContext();
  await ctx.addInitScript(() => {
    const w = window as unknown as { __longTasks: number[] };
    w.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__longTasks.push(e.duration);
    }).observe({ type: 'longtask', buffered: true });
  });
  if (blankDisk) {
    await ctx.route('**/guest/manifest.json', async (route) => {
      const res = await route.fetch();
      const { diskTemplates: _, ...manifest } = (await res.json()) as Record<string, unknown>;
      await route.fulfill({ response: res, json: manifest });
    });
  }
  return ctx;
}

async function boot(page: Page, kind: string, load: () => Promise<unknown>, n: number): Promise<Boot> {
  let guestFiles = 0;
  const count = (req: { url(): string }) => {
    if (/\/guest\/(?!manifest\.json)[^/?]+$/.test(new URL(req.url()).pathname)) guestFiles++;
  };
  page.context().on('requestfinished', count);
  try {
    await load();
    const pageToPrompt = await within(
      page.evaluate(async () => {
        await window.virtioLab.ready;
        return performance.now();
      }),
      BOOT_LIMIT_MS,
      `boot ${n} (${kind}): boot to the prompt`,
    );
    const r = await page.evaluate(() => {
      const t = window.virtioLab.status().timings;
      const tasks = (window as unknown as { __longTasks: number[] }).__longTasks;
      const log = window.virtioLab.serialLog();
      return {
        disk: /formatting \/dev\/vda/.test(log) ? 'formatted by the guest' : /\/dev\/vda mounted/.test(log) ? 'mounted' : 'none',
        total: t.ready! - t.workerStart!,
        image: t.imageLoaded! - t.workerStart!,
        firstSerial: t.firstSerial! - t.workerStart!,
        longestTask: tasks.length ? Math.max(...tasks) : 0,
      };
    });
    const b = { kind, ...r, pageToPrompt, guestFiles };
    console.log(
      `  boot ${n} (${kind}): ${b.total.toFixed(0)} ms worker → prompt, ${b.pageToPrompt.toFixed(0)} ms page load → prompt ` +
        `(image+wasm ${b.image.toFixed(0)} ms, ${b.guestFiles} guest files downloaded, disk ${b.disk}); longest main-thread task ${b.longestTask.toFixed(0)} ms`,
    );
    return b;
  } finally {
    page.context().off('requestfinished', count);
  }
}

const browser = await chromium.launch(chromiumLaunchOptions());
console.log(`boot benchmark: ${runs} run(s), ${os.cpus().length} cores, Chromium ${browser.version()}`);
const results: Boot[] = [];
try {
  let n = 0;
  for (let i = 0; i < runs; i++) {
    for (const kind of [NO_DISK, FIRST, BLANK]) {
      const ctx = await newContext(kind === BLANK);
      try {
        const page = await ctx.newPage();
        const query = kind === NO_DISK ? '?disk=none&net=none' : '?net=none';
        results.push(await boot(page, kind, () => page.goto(url + query), ++n));
        // A cold return visit (a restored one is `npm run bench`'s instant-start part).
        if (kind === FIRST) results.push(await boot(page, RETURN, () => page.goto(`${url}?net=none&boot=cold`), ++n));
      } finally {
        await ctx.close();
      }
    }
  }
  for (const kind of [NO_DISK, FIRST, RETURN, BLANK]) {
    const rs = results.filter((r) => r.kind === kind);
    console.log('');
    console.log(`${kind}:`);
    console.log(`  worker start → shell prompt:     ${summary(rs.map((r) => r.total))}`);
    console.log(`    of which image + wasm loaded: ${summary(rs.map((r) => r.image))}`);
    console.log(`    first console byte:           ${summary(rs.map((r) => r.firstSerial))}`);
    console.log(`  page load → shell prompt:        ${summary(rs.map((r) => r.pageToPrompt))}`);
    console.log(`  guest files downloaded:          ${summary(rs.map((r) => r.guestFiles), '')}`);
    console.log(`  longest main-thread task:        ${summary(rs.map((r) => r.longestTask))}`);
  }
  const med = (kind: string, pick: (b: Boot) => number) => median(results.filter((r) => r.kind === kind).map(pick));
  console.log('');
  for (const [label, pick] of [
    ['worker → prompt', (b: Boot) => b.total],
    ['page load → prompt', (b: Boot) => b.pageToPrompt],
  ] as const) {
    console.log(
      `${label}: first visit / return = ${(med(FIRST, pick) / med(RETURN, pick)).toFixed(2)} (goal ≤ 1.2); ` +
        `blank disk (guest mkfs) / return = ${(med(BLANK, pick) / med(RETURN, pick)).toFixed(2)}`,
    );
  }
} finally {
  await browser.close();
  server.close();
}
