/**
 * The lab's Playwright `test`: fails any test whose page throws an uncaught error.
 *
 * `test.use({ seedBootStates: true })`: the test's fresh browser context starts with the boot
 * states a first visit leaves in OPFS, so its first page load restores (about a second)
 * instead of booting Linux (several). The states come from one real first visit per
 * Playwright worker process.
 */
import { test as base, expect, type Browser, type Page } from '@playwright/test';

interface StateFile {
  name: string;
  base64: string;
}

let harvested: Promise<StateFile[]> | undefined;

/** One first visit (default URL: disk, NIC, console) in its own context; its boot states. */
async function harvestBootStates(browser: Browser, baseURL: string): Promise<StateFile[]> {
  const ctx = await browser.newContext({ baseURL });
  try {
    const page = await ctx.newPage();
    await page.goto('/');
    await page.evaluate(() => window.virtioLab.ready);
    await expect.poll(() => page.evaluate(() => window.virtioLab.status().bootState?.bytes), { timeout: 60_000 }).toEqual(expect.any(Number));
    return await page.evaluate(async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('states');
      const out: { name: string; base64: string }[] = [];
      for await (const [name, handle] of dir as unknown as AsyncIterable<[string, FileSystemFileHandle]>) {
        if (!name.startsWith('.boot-')) continue;
        const bytes = new Uint8Array(await (await handle.getFile()).arrayBuffer());
        let s = '';
        for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        out.push({ name, base64: btoa(s) });
      }
      return out;
    });
  } finally {
    await ctx.close();
  }
}

/** Writes the boot states into this context's OPFS from a page of the app's origin that is not the app. */
async function seed(page: Page, files: StateFile[]): Promise<void> {
  await page.goto('/guest/manifest.json');
  await page.evaluate(async (states) => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('states', { create: true });
    for (const { name, base64 } of states) {
      const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
      await w.write(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
      await w.close();
    }
  }, files);
}

export const test = base.extend<{ pageErrors: Error[]; seedBootStates: boolean }>({
  seedBootStates: [false, { option: true }],
  page: async ({ page, seedBootStates, browser, baseURL }, use) => {
    if (seedBootStates) {
      harvested ??= harvestBootStates(browser, baseURL!);
      const files = await harvested;
      expect(files.length, 'a first visit left a boot state').toBeGreaterThan(0);
      await seed(page, files);
    }
    await use(page);
  },
  pageErrors: [
    async ({ page }, use) => {
      const errors: Error[] = [];
      page.on('pageerror', (e) => errors.push(e));
      await use(errors);
      expect(errors.map((e) => e.message), 'uncaught errors in the page').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
