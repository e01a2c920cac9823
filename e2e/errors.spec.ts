import { expect, test } from './fixtures.ts';

// Starts from a first visit's boot state (e2e/fixtures.ts): restored, not booted.
test.use({ seedBootStates: true });

test('a crashed VM worker shows the error and Restart recovers', async ({ page }) => {
  // The first worker script the page loads dies at once.
  let crashes = 1;
  await page.route('**/assets/worker-*.js', async (route) => {
    if (crashes-- > 0) return route.fulfill({ contentType: 'text/javascript', body: 'throw new Error("boom in the VM worker");' });
    return route.continue();
  });
  await page.goto('/');
  await expect(page.getByTestId('fatal')).toBeVisible();
  await expect(page.getByTestId('fatal').getByRole('heading')).toContainText('crashed');
  await expect(page.getByTestId('fatal-message')).toContainText('boom');
  await page.getByRole('button', { name: 'Restart the VM' }).click();
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('fatal')).toHaveCount(0);
  expect((await page.evaluate(() => window.virtioLab.run('echo alive'))).output).toBe('alive\n');
});

test('a browser without module workers gets a message, not a blank page', async ({ page }) => {
  await page.addInitScript(() => {
    // A Worker that never looks at options.type, like browsers before module workers.
    window.Worker = class {
      constructor() {
        throw new TypeError('module workers are not supported');
      }
    } as unknown as typeof Worker;
  });
  await page.goto('/');
  await expect(page.getByTestId('fatal')).toBeVisible();
  await expect(page.getByTestId('fatal-message')).toContainText('module Web Workers');
});

test('a browser without OPFS is told disks are unavailable', async ({ page }) => {
  await page.addInitScript(() => {
    // @ts-expect-error: removing the API on purpose
    delete StorageManager.prototype.getDirectory;
  });
  await page.goto('/');
  await expect(page.getByText('no Origin Private File System')).toBeVisible();
  // The VM itself still boots.
  await page.evaluate(() => window.virtioLab.ready);
});

test('clipboard: paste into the terminal, copy a selection out', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.goto('/');
  await page.evaluate(() => window.virtioLab.ready);
  await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((40+2))'));
  await page.getByTestId('terminal').click();
  await page.keyboard.press('Control+Shift+V');
  await page.keyboard.press('Enter');
  await expect.poll(() => page.evaluate(() => window.virtioLab.serialLog())).toContain('pasted-42');

  await page.evaluate(() => navigator.clipboard.writeText(''));
  // Select everything in the terminal (xterm's selectAll via a triple-click would pick one row).
  await page.locator('.xterm-screen').click({ clickCount: 3 });
  await page.keyboard.press('Control+Shift+C');
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).not.toBe('');
});
