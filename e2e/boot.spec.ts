import { expect, test } from './fixtures.ts';

test.describe('boot', () => {
  test('boots to a shell prompt and runs commands', async ({ page }) => {
    await page.goto('/');
    await page.evaluate(() => window.virtioLab.ready);
    await expect(page.getByTestId('vm-state')).toHaveText('running');
    await expect(page.getByTestId('uptime')).toContainText('uptime');

    const uname = await page.evaluate(() => window.virtioLab.run('uname -r'));
    expect(uname.status).toBe(0);
    expect(uname.output.trim()).toMatch(/^6\.1\.\d+/);

    const no = await page.evaluate(() => window.virtioLab.run('false'));
    expect(no.status).not.toBe(0);

    const quoted = await page.evaluate(() => window.virtioLab.run(`echo 'it''s' "a b" # comment`));
    expect(quoted).toEqual({ output: 'its a b\n', status: 0 });

    expect(await page.evaluate(() => window.virtioLab.serialLog())).toContain('Linux version 6.1');
    // The terminal shows the same console the API reads.
    await expect(page.locator('.xterm-rows')).toContainText('virtio-lab');
  });

  test('typing in the terminal reaches the guest shell', async ({ page }) => {
    await page.goto('/');
    await page.evaluate(() => window.virtioLab.ready);
    await page.getByTestId('terminal').click();
    await page.keyboard.type('echo typed-$((6*7))');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => window.virtioLab.serialLog())).toContain('typed-42');
    await expect(page.locator('.xterm-rows')).toContainText('typed-42');
  });

  test('Restart yields a fresh prompt', async ({ page }) => {
    await page.goto('/');
    await page.evaluate(() => window.virtioLab.ready);
    await page.evaluate(() => window.virtioLab.run('echo before-restart > /tmp/mark'));
    await page.getByTestId('restart').click();
    await page.evaluate(() => window.virtioLab.ready);
    await expect(page.getByTestId('vm-state')).toHaveText('running');
    // A fresh boot: tmpfs is empty again and the log starts over.
    const r = await page.evaluate(() => window.virtioLab.run('cat /tmp/mark'));
    expect(r.status).not.toBe(0);
    expect(await page.evaluate(() => window.virtioLab.serialLog())).not.toContain('before-restart');
  });

  test('a missing guest file shows an error, not a blank page', async ({ page }) => {
    await page.route('**/guest/bzImage', (route) => route.fulfill({ status: 404, body: 'gone' }));
    await page.goto('/');
    await expect(page.getByTestId('fatal')).toBeVisible();
    await expect(page.getByTestId('fatal-message')).toContainText('bzImage');
    await expect(page.getByTestId('fatal-message')).toContainText('missing');
    await expect(page.getByTestId('vm-state')).toHaveText('error');
    await expect(page.evaluate(() => window.virtioLab.ready)).rejects.toThrow(/missing/);
  });

  test('a corrupted guest file fails its checksum with a message', async ({ page }) => {
    await page.route('**/guest/manifest.json', async (route) => {
      const res = await route.fetch();
      const m = await res.json();
      const initrd = m.files.find((f: { role: string }) => f.role === 'initrd');
      initrd.sha256 = '0'.repeat(64);
      await route.fulfill({ response: res, json: m });
    });
    await page.goto('/');
    await expect(page.getByTestId('fatal-message')).toContainText('checksum');
    await expect(page.getByTestId('fatal').getByRole('heading')).toContainText('damaged');
  });
});
