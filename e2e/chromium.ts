/**
 * How the lab launches Chromium for tests and benchmarks: Debian's /usr/bin/chromium when
 * present (browsers cannot be downloaded on the lab's machines), else Playwright's own, else
 * a message saying what to install.
 */
import { existsSync } from 'node:fs';
import { chromium, type LaunchOptions } from '@playwright/test';

const SYSTEM_CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** See docs/design.md (Chromium in tests): without the background-networking flags Chromium floods a closed network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumExecutable(): string | undefined {
  if (existsSync(SYSTEM_CHROMIUM)) return SYSTEM_CHROMIUM;
  let bundled: string | undefined;
  try {
    bundled = chromium.executablePath();
  } catch {
    bundled = undefined;
  }
  if (bundled && existsSync(bundled)) return undefined; // Playwright's own browser
  throw new Error(
    'No Chromium found. Install one: "apt-get install chromium" (Debian/Ubuntu), or ' +
      '"npx playwright install chromium" where browser downloads are allowed, or set CHROMIUM_PATH.',
  );
}

export function chromiumLaunchOptions(): LaunchOptions {
  return { executablePath: chromiumExecutable(), args: CHROMIUM_ARGS, headless: true };
}
