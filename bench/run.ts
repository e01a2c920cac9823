/**
 * `npm run bench`: the lab's numbers beside what a v86 user has today, measured in one run on
 * this machine in headless Chromium, and saved as bench/results/<date>.json and .md.
 *
 *   npm run bench                      # full: ~25 min on 2 cores
 *   npm run bench -- --quick           # a short pass over every part (CI's smoke test)
 *   npm run bench -- --only disk,net   # parts: disk, net, boot, inspector, ring (split vs packed)
 *   npm run bench -- --out DIR         # where results go (default bench/results)
 *
 * Numbers, never assertions: it fails only when a part cannot run at all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from '@playwright/test';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { figure } from './stats.ts';
import { benchDisks } from './suite/blk.ts';
import { benchNet } from './suite/net.ts';
import { BOOT_NO_DISK, measureBoots } from './suite/boot.ts';
import { measureInstant } from './suite/instant.ts';
import { benchInspector } from './suite/inspector.ts';
import { renderMarkdown, type BenchResults } from './suite/report.ts';
import { benchRing, ringSection, type RingResults } from './suite/ring.ts';
import { ROOT, startBenchServer } from './suite/server.ts';

const PARTS = ['disk', 'net', 'boot', 'inspector', 'ring'] as const;
type Part = (typeof PARTS)[number];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = process.argv.includes('--quick');
const only = (arg('only')?.split(',') ?? [...PARTS]) as Part[];
const unknown = only.filter((p) => !PARTS.includes(p));
if (unknown.length) {
  console.error(`--only: unknown part(s) ${unknown.join(', ')}; parts are ${PARTS.join(', ')}`);
  process.exit(2);
}
const outDir = path.resolve(arg('out') ?? path.join(ROOT, 'bench/results'));
const settings = quick
  ? { diskSeconds: 1, diskRounds: 1, diskMiB: 64, pings: 5, mib: 2, netRounds: 1, netWarmSeconds: 0, boots: 1, instantRounds: 1, instantReturns: 1, inspectorSeconds: 2, inspectorRounds: 1 }
  : // Disk and inspector: more, shorter rounds (interleaved) narrow the spread more than longer ones;
    // from 9 rounds on, the spread (the median's confidence interval) leaves the most extreme ones out.
    { diskSeconds: 2, diskRounds: 11, diskMiB: 256, pings: 50, mib: 32, netRounds: 3, netWarmSeconds: 90, boots: 5, instantRounds: 3, instantReturns: 4, inspectorSeconds: 3, inspectorRounds: 6 };
let lastLine = 'starting';
const log = (s: string) => {
  lastLine = s;
  console.log(s);
};
// Each step has its own bound; this one catches whatever they miss, naming where it stopped.
const limitMin = quick ? 20 : 90;
setTimeout(() => {
  console.error(`bench: not done after ${limitMin} min; the last step logged was "${lastLine.trim()}"`);
  process.exit(1);
}, limitMin * 60_000).unref();

const pkg = (name: string) => JSON.parse(fs.readFileSync(createRequire(import.meta.url).resolve(`${name}/package.json`), 'utf8')).version as string;
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'public/guest/manifest.json'), 'utf8'));

const server = await startBenchServer();
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-bench-'));
const results: BenchResults & { ring?: RingResults } = {
  machine: {
    date: new Date().toISOString(),
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    chromium: '',
    v86: pkg('v86'),
    guestKernel: manifest.kernelRelease,
    quick,
  },
};
const t0 = performance.now();
try {
  if (only.includes('boot')) {
    // Cold boots want fresh contexts, which a persistent profile cannot give.
    const browser = await chromium.launch(chromiumLaunchOptions());
    results.machine.chromium = browser.version();
    try {
      log(`boot: ${settings.boots} cold boot(s)`);
      const runs = await measureBoots(browser, `${server.origin}/`, settings.boots, [BOOT_NO_DISK], log);
      results.boot = {
        runs: runs.length,
        ms: figure(runs.map((r) => r.total)),
        imageMs: figure(runs.map((r) => r.image)),
        longestTaskMs: figure(runs.map((r) => r.longestTask)),
      };
      log(`instant start: ${settings.instantRounds} new user(s), ${settings.instantReturns} restored and ${settings.instantReturns} cold return visit(s) each`);
      const instant = await measureInstant(browser, `${server.origin}/`, settings.instantRounds, settings.instantReturns, log);
      const all = (pick: (r: (typeof instant)[number]) => number[]) => instant.flatMap(pick);
      results.instant = {
        rounds: instant.length,
        firstMs: figure(instant.map((r) => r.first)),
        restoredMs: figure(all((r) => r.restored)),
        coldMs: figure(all((r) => r.cold)),
        restoreWorkerMs: figure(all((r) => r.restoreMs)),
        stateBytes: figure(instant.map((r) => r.stateBytes)),
        pauseMs: figure(instant.map((r) => r.pauseMs)),
        storeMs: figure(instant.map((r) => r.storeMs)),
        network: {
          promptMs: figure(all((r) => r.network.map((n) => n.pageToPrompt))),
          leaseMs: figure(all((r) => r.network.map((n) => n.lease))),
          pingMs: figure(all((r) => r.network.map((n) => n.ping))),
        },
      };
    } finally {
      await browser.close();
    }
  }
  if (only.some((p) => p !== 'boot')) {
    // A profile on disk, so OPFS is the real, persistent one (an in-memory context keeps it in RAM).
    const ctx = await chromium.launchPersistentContext(profile, chromiumLaunchOptions());
    results.machine.chromium ||= ctx.browser()?.version() ?? (await ctx.newPage().then(async (p) => {
      const v = await p.evaluate(() => navigator.userAgent.match(/Chrome\/([\d.]+)/)?.[1] ?? '?');
      await p.close();
      return v;
    }));
    try {
      if (only.includes('disk')) {
        results.disk = await benchDisks(ctx, server.origin, { seconds: settings.diskSeconds, rounds: settings.diskRounds, diskMiB: settings.diskMiB, log });
      }
      if (only.includes('net')) {
        results.net = await benchNet(ctx, server.origin, server.relayUrl, { pings: settings.pings, mib: settings.mib, rounds: settings.netRounds, warmSeconds: settings.netWarmSeconds, log });
      }
      if (only.includes('ring')) {
        results.ring = await benchRing(ctx, server.origin, server.relayUrl, { seconds: settings.diskSeconds, rounds: settings.diskRounds, diskMiB: settings.diskMiB, mib: settings.mib, log });
      }
      if (only.includes('inspector')) {
        log('inspector: shown vs hidden');
        results.inspector = await benchInspector(ctx, server.origin, { seconds: settings.inspectorSeconds, rounds: settings.inspectorRounds, log });
      }
    } finally {
      await ctx.close();
    }
  }
} finally {
  await server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}

const markdown = [renderMarkdown(results), ...(results.ring ? ['', ...ringSection(results.ring)] : [])].join('\n');
fs.mkdirSync(outDir, { recursive: true });
const stem = path.join(outDir, results.machine.date.replace(/[:.]/g, '-') + (quick ? '-quick' : ''));
fs.writeFileSync(`${stem}.json`, JSON.stringify(results, null, 2) + '\n');
fs.writeFileSync(`${stem}.md`, markdown + '\n');
console.log('');
console.log(markdown);
console.log('');
console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s; saved ${path.relative(process.cwd(), stem)}.json and .md`);
process.exit(0);
