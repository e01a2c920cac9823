import { expect, test } from './fixtures.ts';

// Starts from a first visit's boot state (e2e/fixtures.ts): restored, not booted.
test.use({ seedBootStates: true });

test('virtio-rng: the stock driver binds our device and reads its bytes', async ({ page }) => {
  await page.goto('/');
  await page.evaluate(() => window.virtioLab.ready);
  const lab = (cmd: string) => page.evaluate((c) => window.virtioLab.run(c), cmd);

  expect((await lab('cat /sys/class/misc/hw_random/rng_current')).output.trim()).toMatch(/^virtio_rng/);
  expect((await lab('basename $(readlink /sys/bus/virtio/devices/virtio0/driver)')).output.trim()).toBe('virtio_rng');

  const served = async () =>
    page.evaluate(() => window.virtioLab.status().devices.find((d) => d.name === 'virtio-rng')?.extra.bytesServed ?? -1);
  await expect.poll(served).toBeGreaterThan(0);
  const rng = () => page.evaluate(async () => (await window.virtioLab.stats()).devices.find((d) => d.name === 'virtio-rng')!);
  const before = await rng();

  const r = await lab('head -c 64 /dev/hwrng | od -An -tx1 -v');
  expect(r.status).toBe(0);
  expect(r.output.replace(/\s+/g, '')).toMatch(/^[0-9a-f]{128}$/);
  // The worker's device counted them: the bytes came from our TypeScript, not the kernel.
  await expect.poll(served).toBeGreaterThanOrEqual(before.extra.bytesServed! + 64);
  const after = await rng();
  expect(after.errors).toBe(0);
  // They came through the queue: the driver kicked it, and every kick is a write to our BAR0.
  expect(after.notifies).toBeGreaterThan(before.notifies);
  expect(after.barWrites - before.barWrites).toBeGreaterThanOrEqual(after.notifies - before.notifies);
});
