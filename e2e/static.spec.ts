/**
 * The built lab from a static host under a sub-path: it boots, its disk keeps data, the
 * inspector opens, and the console stays free of errors (also under `npm start`'s server,
 * whose CSP forbids data: workers). Without a relay the default network is fetch.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConsoleMessage, Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';
import { startStaticHost, type StaticHost } from './static-host.ts';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');

const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

/** Console errors and warnings (CSP violations and failed loads are logged as errors). */
function consoleProblems(page: Page): string[] {
  const seen: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error') seen.push(`${m.text()} @ ${m.location().url}`);
  });
  // The page's HEAD for its own headers (net-choice.ts) reports ERR_ABORTED once its headers
  // are in (there is no body to read); it logs nothing.
  page.on('requestfailed', (r) => {
    if (r.method() !== 'HEAD') seen.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) seen.push(`HTTP ${r.status()} ${r.url()}`);
  });
  return seen;
}

let host: StaticHost;
test.beforeAll(async () => {
  host = await startStaticHost(DIST);
});
test.afterAll(() => host?.close());

test('under a sub-path of a static host: boot, disk write and read back, inspector, no console errors', async ({ page }) => {
  const problems = consoleProblems(page);
  await page.goto(host.url);
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('disk-attached')).toBeVisible();
  // Every asset came from under the sub-path.
  const w = await run(page, 'head -c 200000 /dev/urandom > /mnt/disk/s.bin && sync && md5sum /mnt/disk/s.bin');
  expect(w.status).toBe(0);
  await page.reload();
  await page.evaluate(() => window.virtioLab.ready);
  const r = await run(page, 'md5sum /mnt/disk/s.bin');
  expect(r.output).toBe(w.output);

  await page.getByTestId('inspector-toggle').click();
  await expect(page.getByTestId('inspector')).toBeVisible();
  // No relay on a static host: fetch is the default network.
  await expect(page.getByTestId('net-mode')).toHaveText('fetch');
  expect(problems).toEqual([]);
});

for (const net of ['relay', 'none', 'fetch']) {
  test(`npm start's server, ?net=${net}: no console errors`, async ({ page }) => {
    const problems = consoleProblems(page);
    await page.goto(`/?disk=none&net=${net}`);
    await page.evaluate(() => window.virtioLab.ready);
    if (net !== 'none') await expect(page.getByTestId('net-mode')).toHaveText(net);
    expect(problems).toEqual([]);
  });
}
