/**
 * `npm run bench:inspector`: what the ring inspector costs the guest — fio 4 KiB random-read
 * IOPS on a memory disk with the panel hidden vs shown vs a lesson open, alternating so drift hits both
 * (headless Chromium). `--quick`: one round of 3 s runs; `--rounds N --seconds S` for more. Also part of `npm run bench`.
 */
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium } from '@playwright/test';
import { createAppServer } from '../src/server/app-server.ts';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { benchInspector } from './suite/inspector.ts';
import { ROOT } from './suite/server.ts';

const quick = process.argv.includes('--quick');
/** `--rounds N` / `--seconds N` for a longer run on a noisy machine. */
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
};
const rounds = arg('--rounds') ?? (quick ? 1 : 3);
const seconds = arg('--seconds') ?? (quick ? 3 : 6);

const server = createAppServer({ distDir: path.join(ROOT, 'dist'), host: '127.0.0.1', port: 0 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch(chromiumLaunchOptions());
try {
  const ctx = await browser.newContext();
  const r = await benchInspector(ctx, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, { seconds, rounds, log: console.log });
  console.log(`inspector cost: fio 4k randread qd1, ${seconds} s runs × ${rounds}, Chromium ${browser.version()}`);
  console.log(`  hidden IOPS: ${r.hiddenIops.runs.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`  shown IOPS:  ${r.shownIops.runs.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`  lesson open IOPS: ${r.lessonIops.runs.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`  shown/hidden per round: ${r.ratio.runs.map((x) => (x * 100).toFixed(1) + ' %').join(', ')}; median ${(r.ratio.median * 100).toFixed(1)} %`);
  console.log(`  lesson/hidden per round: ${r.lessonRatio.runs.map((x) => (x * 100).toFixed(1) + ' %').join(', ')}; median ${(r.lessonRatio.median * 100).toFixed(1)} %`);
} finally {
  await browser.close();
  server.close();
}
