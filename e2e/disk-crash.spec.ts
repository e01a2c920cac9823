/**
 * Durability across a browser crash: write + sync in the guest, SIGKILL the whole browser
 * (no clean shutdown), relaunch on the same profile, and the file is there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from '@playwright/test';
import { CHROMIUM_ARGS, chromiumExecutable } from './chromium.ts';
import { expect, test } from './fixtures.ts';

async function launchOwned(profile: string, port: number): Promise<{ proc: ChildProcess; browser: Browser }> {
  const exe = chromiumExecutable() ?? chromium.executablePath();
  const proc = spawn(exe, [...CHROMIUM_ARGS, '--headless', `--user-data-dir=${profile}`, `--remote-debugging-port=${port}`, 'about:blank'], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 100; i++) {
    try {
      return { proc, browser: await chromium.connectOverCDP(`http://127.0.0.1:${port}`) };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  proc.kill('SIGKILL');
  throw new Error('Chromium did not open its debugging port');
}

// The runner's tracing hooks into every connected browser and fails when we kill it.
test.use({ trace: 'off' });

test('a synced file survives SIGKILL of the browser', async ({ baseURL }) => {
  test.setTimeout(180_000);
  const profile = mkdtempSync(path.join(tmpdir(), 'vlab-profile-'));
  const port = 9300 + Math.floor(Math.random() * 500);

  let { proc, browser } = await launchOwned(profile, port);
  let page = await browser.contexts()[0].newPage();
  await page.goto(baseURL!);
  await page.evaluate(() => window.virtioLab.ready);
  const w = await page.evaluate(() =>
    window.virtioLab.run('head -c 500000 /dev/urandom > /mnt/disk/crash.bin && sync && md5sum /mnt/disk/crash.bin'),
  );
  expect(w.status).toBe(0);
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;

  ({ proc, browser } = await launchOwned(profile, port + 1));
  try {
    page = await browser.contexts()[0].newPage();
    await page.goto(baseURL!);
    await page.evaluate(() => window.virtioLab.ready);
    const r = await page.evaluate(() => window.virtioLab.run('md5sum /mnt/disk/crash.bin'));
    expect(r.status).toBe(0);
    expect(r.output).toBe(w.output);
  } finally {
    proc.kill('SIGKILL');
  }
});
