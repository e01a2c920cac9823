/**
 * Durability across a browser crash: write + sync in the guest, SIGKILL the whole browser
 * (no clean shutdown), relaunch on the same profile, and the file is there.
 * (`npm run crash-loop` does this many times, killing at random moments.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchOwnedChromium } from './owned-chromium.ts';
import { expect, test } from './fixtures.ts';

// The runner's tracing hooks into every connected browser and fails when we kill it.
test.use({ trace: 'off' });

test('a synced file survives SIGKILL of the browser', async ({ baseURL }) => {
  test.setTimeout(180_000);
  const profile = mkdtempSync(path.join(tmpdir(), 'vlab-profile-'));

  let chrome = await launchOwnedChromium(profile);
  let page = await chrome.newPage();
  await page.goto(baseURL!);
  await page.evaluate(() => window.virtioLab.ready);
  const w = await page.evaluate(() =>
    window.virtioLab.run('head -c 500000 /dev/urandom > /mnt/disk/crash.bin && sync && md5sum /mnt/disk/crash.bin'),
  );
  expect(w.status).toBe(0);
  await chrome.kill();

  chrome = await launchOwnedChromium(profile);
  try {
    page = await chrome.newPage();
    await page.goto(baseURL!);
    await page.evaluate(() => window.virtioLab.ready);
    const r = await page.evaluate(() => window.virtioLab.run('md5sum /mnt/disk/crash.bin'));
    expect(r.status).toBe(0);
    expect(r.output).toBe(w.output);
  } finally {
    await chrome.kill();
    rmSync(profile, { recursive: true, force: true });
  }
});
