/**
 * Instant start: the first visit boots the kernel and saves the boot state; later visits
 * restore it. Saved states by hand, with their disk; bad state files fall back to a cold boot.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';
import { encodeSnapshot } from '../src/vm/snapshot/format.ts';
import { loadZstd } from '../src/vm/snapshot/zstd-node.ts';

const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

const ready = (page: Page) => page.evaluate(() => window.virtioLab.ready);
const start = (page: Page) => page.evaluate(() => window.virtioLab.status().start);

/** First visit: a kernel boot that leaves the boot state in OPFS. */
async function firstVisit(page: Page, url = '/') {
  await page.goto(url);
  await ready(page);
  expect(await start(page)).toBe('booted');
  await expect.poll(() => page.evaluate(() => window.virtioLab.status().bootState), { timeout: 60_000 }).toMatchObject({ bytes: expect.any(Number) });
  const bytes = (await page.evaluate(() => window.virtioLab.status().bootState?.bytes))!;
  expect(bytes).toBeLessThanOrEqual(12_000_000);
}

async function restoredVisit(page: Page) {
  await page.reload();
  await ready(page);
  expect(await start(page)).toBe('restored');
}

test('a return visit restores the boot state: disk, network, rng and run() all work', async ({ page }) => {
  await firstVisit(page);
  await restoredVisit(page);
  expect(await page.evaluate(() => window.virtioLab.status().restoredFrom?.kind)).toBe('boot');
  await expect(page.getByTestId('boot-start')).toHaveAttribute('data-start', 'restored');

  // The disk was attached after the restore point, and mounted now.
  expect((await run(page, 'grep /mnt/disk /proc/mounts')).output).toMatch(/\/dev\/vda \/mnt\/disk ext4 rw/);
  const w = await run(page, 'head -c 400000 /dev/urandom > /mnt/disk/r.bin && sync && md5sum < /mnt/disk/r.bin');
  expect(w.status).toBe(0);
  const r = await run(page, 'echo 3 > /proc/sys/vm/drop_caches && md5sum < /mnt/disk/r.bin');
  expect(r.output).toBe(w.output);

  // This tab's own MAC, a lease for it, and the gateway answers.
  const mac = await page.evaluate(() => window.virtioLab.status().net?.mac);
  expect((await run(page, 'cat /sys/class/net/eth0/address')).output.trim()).toBe(mac);
  await expect.poll(() => page.evaluate(() => window.virtioLab.status().net?.ip), { timeout: 20_000 }).toMatch(/^10\.0\.2\.\d+$/);
  expect((await run(page, 'ping -c 1 -W 5 10.0.2.2')).status).toBe(0);

  // The rng serves the restored driver.
  const rng = await run(page, 'head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n"');
  expect(rng.output).toMatch(/^[0-9a-f]{64}$/);
  // The inspector shows the restored rings: blk's position goes on from the saved one
  // (its request counter starts again at this restore, the ring index did not).
  await page.evaluate(() => window.virtioLab.inspector.show());
  await expect
    .poll(() => page.evaluate(() => window.virtioLab.inspector.device('blk')?.queues[0]), { timeout: 20_000 })
    .toMatchObject({ enabled: true, lastAvailIdx: expect.any(Number) });
  const q = (await page.evaluate(() => window.virtioLab.inspector.device('blk')?.queues[0]))!;
  expect(q.lastAvailIdx).toBeGreaterThan(q.counters.requests);
  // The guest clock was set from the host's.
  const guestNow = Number((await run(page, 'date +%s')).output.trim());
  expect(Math.abs(guestNow - Date.now() / 1000)).toBeLessThan(60);
});

test('restored with another disk attached: the new capacity reaches the guest, the disk is formatted and mounted', async ({ page }) => {
  await firstVisit(page, '/?disk=mem:64');
  await page.goto('/?disk=mem:96');
  await ready(page);
  expect(await start(page)).toBe('restored');
  expect((await run(page, 'cat /sys/block/vda/size')).output.trim()).toBe(String((96 * 1024 * 1024) / 512));
  expect((await run(page, 'grep /mnt/disk /proc/mounts')).output).toMatch(/\/dev\/vda \/mnt\/disk ext4/);
  expect((await run(page, 'echo ok > /mnt/disk/x && sync && cat /mnt/disk/x')).output).toBe('ok\n');
});

test('restores over a changing disk never corrupt it: e2fsck is clean and every synced file is there', async ({ page }) => {
  test.setTimeout(300_000); // a first visit and four restores
  await firstVisit(page);
  const sums: string[] = [];
  for (let i = 0; i < 4; i++) {
    await restoredVisit(page);
    const w = await run(page, `head -c ${50_000 + i * 1000} /dev/urandom > /mnt/disk/f${i} && sync && md5sum /mnt/disk/f${i}`);
    expect(w.status).toBe(0);
    sums.push(w.output);
    for (let j = 0; j <= i; j++) expect((await run(page, `md5sum /mnt/disk/f${j}`)).output).toBe(sums[j]);
  }
  expect((await run(page, 'umount /mnt/disk && echo unmounted')).output).toBe('unmounted\n');
  const image = await page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const file = await (await (await root.getDirectoryHandle('disks')).getFileHandle('lab')).getFile();
    const bytes = new Uint8Array(await file.arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'vl-instant-'));
  const file = path.join(dir, 'lab.img');
  writeFileSync(file, Buffer.from(image, 'base64'));
  // -f: check everything; -n: change nothing. Status 0: clean.
  execFileSync('e2fsck', ['-fn', file], { stdio: 'pipe' });
});

test('save by hand, reload, restore by name: the file written before the save and the shell history are back', async ({ page }) => {
  await firstVisit(page);
  expect((await run(page, 'echo before-save > /mnt/disk/kept && sync')).status).toBe(0);
  // Typed into the serial shell, so it lands in ash's history.
  await page.getByTestId('terminal').click();
  await page.keyboard.type('echo history-marker-$((40+2))\n');
  await expect.poll(() => page.evaluate(() => window.virtioLab.serialLog()), { timeout: 20_000 }).toContain('history-marker-42');
  const blob = await page.evaluate(async () => (await window.virtioLab.saveState('lesson-1')).size);
  expect(blob).toBeGreaterThan(100_000);
  await expect(page.getByTestId('state-lesson-1')).toBeVisible();
  // Changed after the save: the restore puts the saved disk back.
  expect((await run(page, 'echo after-save > /mnt/disk/kept && sync')).status).toBe(0);

  await page.goto('/?state=lesson-1');
  await ready(page);
  expect(await start(page)).toBe('restored');
  expect(await page.evaluate(() => window.virtioLab.status().restoredFrom?.name)).toBe('lesson-1');
  expect((await run(page, 'cat /mnt/disk/kept')).output).toBe('before-save\n');
  // The Up key recalls the saved shell's last command.
  const before = (await page.evaluate(() => window.virtioLab.serialLog())).length;
  await page.getByTestId('terminal').click();
  await page.keyboard.press('ArrowUp');
  await expect.poll(async () => (await page.evaluate(() => window.virtioLab.serialLog())).slice(before), { timeout: 20_000 }).toContain('history-marker-$((40+2))');
  await page.keyboard.press('Control+C');
});

test('a corrupted or foreign state file is refused with a message, and the VM boots cold', async ({ page }) => {
  test.setTimeout(400_000); // a first visit and four kernel boots
  await firstVisit(page);
  // Not a state at all.
  const garbage = await page.evaluate(() => window.virtioLab.restoreState(new Blob([new Uint8Array(5000).fill(7)])).then(() => 'restored', (e: Error) => e.message));
  expect(garbage).toMatch(/not a virtio-lab state file/);
  await ready(page);
  expect(await start(page)).toBe('booted');
  await expect(page.getByTestId('restore-failed')).toContainText('not a virtio-lab state file');

  // A real state, damaged in the middle, and cut short.
  const outcomes = await page.evaluate(async () => {
    const b = new Uint8Array(await (await window.virtioLab.saveState('to-damage')).arrayBuffer());
    const flipped = b.slice();
    for (let i = flipped.length >> 1; i < (flipped.length >> 1) + 100; i++) flipped[i] ^= 0xff;
    const tryRestore = (bytes: Uint8Array<ArrayBuffer>) => window.virtioLab.restoreState(new Blob([bytes])).then(() => 'restored', (e: Error) => e.message);
    const damaged = await tryRestore(flipped);
    await window.virtioLab.ready;
    const cut = await tryRestore(b.subarray(0, b.length - 1000));
    return { damaged, cut };
  });
  expect(outcomes.damaged).toMatch(/damaged/);
  expect(outcomes.cut).toMatch(/incomplete/);
  await ready(page);
  expect(await start(page)).toBe('booted');

  // A well-formed state of another guest image.
  const foreign = await encodeSnapshot(
    { kind: 'saved', name: 'foreign', imageSha256: 'ab'.repeat(32), memoryMiB: 128, ring: 'split', functions: ['virtio-rng'], v86State: new Uint8Array(4096), deviceState: {} },
    await loadZstd(),
  );
  const refused = await page.evaluate(
    (b64) => window.virtioLab.restoreState(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))])).then(() => 'restored', (e: Error) => e.message),
    Buffer.from(foreign).toString('base64'),
  );
  expect(refused).toMatch(/another guest image/);
  await ready(page);
  expect(await start(page)).toBe('booted');
});
