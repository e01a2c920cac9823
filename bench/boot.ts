/**
 * `npm run bench:boot`: cold boots in headless Chromium, worker start → shell prompt, plus the
 * page's longest main-thread task during boot. Two kinds, alternating: no disk (?disk=none),
 * and a first visit with the default disk (the guest formats it). `--quick`: one boot of each
 * (CI smoke), `--runs N`. `npm run bench` runs the no-disk kind as part of its table.
 */
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium } from '@playwright/test';
import { createAppServer } from '../src/server/app-server.ts';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { summary } from './stats.ts';
import { BOOT_FIRST_VISIT, BOOT_NO_DISK, measureBoots } from './suite/boot.ts';
import { ROOT } from './suite/server.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const runsArg = args.indexOf('--runs');
const runs = quick ? 1 : runsArg >= 0 ? Number(args[runsArg + 1]) : 5;

const server = createAppServer({ distDir: path.join(ROOT, 'dist'), host: '127.0.0.1', port: 0 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

const browser = await chromium.launch(chromiumLaunchOptions());
console.log(`boot benchmark: ${runs} cold boot(s), ${os.cpus().length} cores, Chromium ${browser.version()}`);
const kinds = [BOOT_NO_DISK, BOOT_FIRST_VISIT];
try {
  const results = await measureBoots(browser, url, runs, kinds, console.log);
  for (const kind of kinds) {
    const rs = results.filter((r) => r.kind === kind.label);
    console.log('');
    console.log(`${kind.label}:`);
    console.log(`  worker start → shell prompt:     ${summary(rs.map((r) => r.total))}`);
    console.log(`    of which image + wasm loaded: ${summary(rs.map((r) => r.image))}`);
    console.log(`    first console byte:           ${summary(rs.map((r) => r.firstSerial))}`);
    console.log(`  longest main-thread task:        ${summary(rs.map((r) => r.longestTask))}`);
  }
} finally {
  await browser.close();
  server.close();
}
