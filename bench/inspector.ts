/**
 * `npm run bench:inspector`: what the ring inspector costs the guest — fio 4 KiB random-read
 * IOPS on /dev/vda with the panel hidden vs shown, alternating so drift hits both (headless
 * Chromium). `--quick`: one round of 3 s runs.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium } from '@playwright/test';
import { createAppServer } from '../src/server/app-server.ts';
import { chromiumLaunchOptions } from '../e2e/chromium.ts';
import { median } from './stats.ts';

const quick = process.argv.includes('--quick');
const rounds = quick ? 1 : 3;
const seconds = quick ? 3 : 6;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const server = createAppServer({ distDir: path.join(root, 'dist'), host: '127.0.0.1', port: 0 });
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch(chromiumLaunchOptions());
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/?net=none`);
  await page.evaluate(() => window.virtioLab.ready);
  const fio = async () => {
    const r = await page.evaluate(
      (cmd) => window.virtioLab.run(cmd, { timeoutMs: 120_000 }),
      `fio --name=r --filename=/dev/vda --direct=1 --rw=randread --bs=4k --size=64m --ioengine=psync --runtime=${seconds} --time_based --output-format=terse --terse-version=3`,
    );
    const line = r.output.split('\n').find((l) => l.startsWith('3;'));
    if (!line) throw new Error(`fio failed: ${r.output}`);
    return Number(line.split(';')[7]); // read IOPS
  };
  const iops = { hidden: [] as number[], shown: [] as number[] };
  await fio(); // warm-up: JIT, page cache of fio itself
  for (let round = 0; round < rounds; round++) {
    await page.evaluate(() => window.virtioLab.inspector.hide());
    iops.hidden.push(await fio());
    await page.evaluate(() => window.virtioLab.inspector.show());
    await page.getByTestId('inspector').waitFor();
    iops.shown.push(await fio());
  }
  console.log(`inspector cost: fio 4k randread psync, ${seconds} s runs × ${rounds}, Chromium ${browser.version()}`);
  console.log(`  hidden IOPS: ${iops.hidden.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`  shown IOPS:  ${iops.shown.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`  shown/hidden (medians): ${((median(iops.shown) / median(iops.hidden)) * 100).toFixed(1)} %`);
} finally {
  await browser.close();
  server.close();
}
