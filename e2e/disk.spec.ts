import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';

// Starts from a first visit's boot state (e2e/fixtures.ts): restored, not booted.
test.use({ seedBootStates: true });

const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

async function bootedWithDisk(page: Page, url = '/') {
  await page.goto(url);
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('disk-attached')).toBeVisible();
}

test('the default disk is formatted, mounted, and keeps synced files across a reload', async ({ page }) => {
  await bootedWithDisk(page);
  expect((await run(page, 'basename $(readlink /sys/block/vda/device/driver)')).output.trim()).toBe('virtio_blk');
  expect((await run(page, 'cat /sys/block/vda/serial')).output.trim()).toBe('lab');
  expect((await run(page, 'grep /mnt/disk /proc/mounts')).output).toMatch(/\/dev\/vda \/mnt\/disk ext4 rw/);
  const w = await run(page, 'head -c 300000 /dev/urandom > /mnt/disk/keep.bin && sync && md5sum /mnt/disk/keep.bin');
  expect(w.status).toBe(0);
  const md5 = w.output.split(' ')[0];
  // Chromium has everything write-behind needs: a writer worker stored the writes, and the
  // guest's sync (a FLUSH) waited for its flush.
  const blk = await page.evaluate(async () => (await window.virtioLab.stats()).devices.find((d) => d.name === 'virtio-blk')?.extra);
  expect(blk?.writeBehind).toBe(1);
  expect(blk?.asyncFlushes).toBeGreaterThanOrEqual(1);

  await page.reload();
  await page.evaluate(() => window.virtioLab.ready);
  const r = await run(page, 'md5sum /mnt/disk/keep.bin');
  expect(r.status).toBe(0);
  expect(r.output.split(' ')[0]).toBe(md5);

  // Read again past the guest's page cache: the read cache in front of OPFS serves the chunks
  // the first read filled, and the bytes are the same.
  const cache = async () => (await page.evaluate(async () => (await window.virtioLab.stats()).devices.find((d) => d.name === 'virtio-blk')?.extra))!;
  const before = await cache();
  expect(before.readCacheBytes).toBeGreaterThanOrEqual(300000);
  const again = await run(page, 'echo 3 > /proc/sys/vm/drop_caches && md5sum /mnt/disk/keep.bin');
  expect(again.output.split(' ')[0]).toBe(md5);
  const after = await cache();
  expect(after.readCacheHits - before.readCacheHits).toBeGreaterThanOrEqual(4); // ≥ 300000 bytes of 64 KiB chunks
});

test('a second tab on the same disk is told it is in use and cannot corrupt it', async ({ page, context }) => {
  await bootedWithDisk(page);
  const w = await run(page, 'echo first-tab > /mnt/disk/owner && sync && md5sum /mnt/disk/owner');
  const second = await context.newPage();
  await second.goto('/');
  await expect(second.getByTestId('fatal')).toBeVisible();
  await expect(second.getByRole('heading', { name: 'Disk in use by another tab' })).toBeVisible();
  // It may boot read-only from a snapshot instead, and sees the first tab's synced data.
  await second.getByRole('button', { name: 'Boot with it read-only' }).click();
  await second.evaluate(() => window.virtioLab.ready);
  await expect(second.getByTestId('disk-attached')).toContainText('snapshot');
  expect((await run(second, 'cat /mnt/disk/owner')).output).toBe('first-tab\n');
  expect((await run(second, 'touch /mnt/disk/intruder')).status).not.toBe(0);
  await second.close();
  // The first tab's disk still verifies and is still writable.
  expect((await run(page, 'md5sum /mnt/disk/owner')).output).toBe(w.output);
  expect((await run(page, 'echo more >> /mnt/disk/owner && sync')).status).toBe(0);
});

test('download: the file is byte for byte what the guest sees on /dev/vda', async ({ page }) => {
  await bootedWithDisk(page);
  await run(page, 'echo hello > /mnt/disk/hello && sync && mount -o remount,ro /mnt/disk');
  const guest = (await run(page, 'sha256sum /dev/vda')).output.split(' ')[0];
  expect(guest).toMatch(/^[0-9a-f]{64}$/);
  const downloading = page.waitForEvent('download');
  await page.getByTestId('disk-lab').getByRole('button', { name: 'Download' }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe('lab.img');
  const bytes = readFileSync((await download.path())!);
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(guest);
});

test('upload: a prepared raw image becomes a disk the guest reads', async ({ page }) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vlab-upload-'));
  mkdirSync(path.join(dir, 'root'));
  writeFileSync(path.join(dir, 'root', 'greeting.txt'), 'made on the host\n');
  const img = path.join(dir, 'prepared.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'prepared', '-d', path.join(dir, 'root'), img, '8M']);
  // And a file that is not a disk image at all.
  const bad = path.join(dir, 'odd.img');
  writeFileSync(bad, Buffer.alloc(1000));

  await bootedWithDisk(page);
  await page.getByTestId('disk-upload').setInputFiles(bad);
  await expect(page.getByTestId('disk-message')).toContainText('multiple of 512');

  await page.getByTestId('disk-upload').setInputFiles(img);
  await expect(page.getByTestId('disk-message')).toContainText('uploaded');
  await page.getByTestId('disk-prepared').getByRole('button', { name: 'Boot' }).click();
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('disk-attached')).toContainText('prepared');
  expect(page.url()).toContain('disk=prepared');
  expect((await run(page, 'cat /mnt/disk/greeting.txt')).output).toBe('made on the host\n');
});

test('read-only attach: guest writes fail cleanly, the data stays', async ({ page }) => {
  await bootedWithDisk(page);
  // Unmounted: a read-only guest cannot replay the journal, so it sees only checkpointed data.
  await run(page, 'echo keep-me > /mnt/disk/ro-check && sync && umount /mnt/disk');
  await page.goto('/?disk=lab&ro=1');
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('disk-attached')).toContainText('read-only');
  expect((await run(page, 'cat /sys/block/vda/ro')).output.trim()).toBe('1');
  expect((await run(page, 'cat /mnt/disk/ro-check')).output).toBe('keep-me\n');
  const touch = await run(page, 'touch /mnt/disk/new 2>&1');
  expect(touch.status).not.toBe(0);
  expect(touch.output).toMatch(/Read-only file system/);
  const dd = await run(page, 'dd if=/dev/zero of=/dev/vda bs=512 count=1 2>&1');
  expect(dd.status).not.toBe(0);
  expect((await run(page, 'echo alive')).output).toBe('alive\n');
});

test('create and delete a disk in the panel; bad names are refused', async ({ page }) => {
  await bootedWithDisk(page);
  await page.getByLabel('new disk name').fill('scratch');
  await page.getByLabel('new disk size in MiB').fill('16');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByTestId('disk-scratch')).toContainText('16.0 MiB');
  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('disk-scratch').getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('disk-scratch')).toHaveCount(0);
  // The attached disk cannot be deleted from under the VM.
  await expect(page.getByTestId('disk-lab').getByRole('button', { name: 'Delete' })).toBeDisabled();
});

test('a disk that does not fit the storage quota is refused with "storage full"', async ({ page, baseURL }) => {
  await bootedWithDisk(page);
  const cdp = await page.context().newCDPSession(page);
  // 200 MiB of quota for this origin: the 128 MiB default disk fits, another 512 MiB does not.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(baseURL!).origin, quotaSize: 200 * 1024 * 1024 });
  await page.getByLabel('new disk name').fill('huge');
  await page.getByLabel('new disk size in MiB').fill('512');
  await page.getByRole('button', { name: 'Create' }).click();
  await expect(page.getByTestId('disk-message')).toContainText(/not enough storage|storage full/i);
  await expect(page.getByTestId('disk-huge')).toHaveCount(0);
  // The running VM and its disk are unaffected.
  expect((await run(page, 'echo still-fine > /mnt/disk/after-quota && sync')).status).toBe(0);
});
