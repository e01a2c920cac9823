/**
 * Instant start, in headless Chromium: per round, a fresh context (a new user) makes its
 * first visit (kernel boot, the default disk created from its template, the boot state
 * saved at the prompt), then return visits alternate between a restore of the boot state
 * and a cold boot (`?boot=cold`), so drift hits both alike. Page load → prompt is the page's
 * own clock from navigation start to `virtioLab.ready`.
 */
import type { Browser, Page } from '@playwright/test';
import { BOOT_LIMIT_MS, within } from './within.ts';

export interface InstantRound {
  /** Page load → prompt, ms. */
  first: number;
  restored: number[];
  cold: number[];
  /** The boot state file, bytes (compressed). */
  stateBytes: number;
  /** How long the first visit's guest stood still while its state was taken, ms. */
  pauseMs: number;
  /** Compressing and storing the boot state (the guest runs meanwhile), ms. */
  storeMs: number;
  /** Worker: restore of the state (v86 and our devices), ms. */
  restoreMs: number[];
}

async function visit(page: Page, go: () => Promise<unknown>, label: string): Promise<{ pageToPrompt: number; start?: string }> {
  await go();
  const pageToPrompt = await within(
    page.evaluate(async () => {
      await window.virtioLab.ready;
      return performance.now();
    }),
    BOOT_LIMIT_MS,
    `instant: ${label} to the prompt`,
  );
  return { pageToPrompt, start: await page.evaluate(() => window.virtioLab.status().start) };
}

export async function measureInstant(browser: Browser, url: string, rounds: number, returns: number, log: (s: string) => void): Promise<InstantRound[]> {
  const out: InstantRound[] = [];
  for (let i = 0; i < rounds; i++) {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const first = await visit(page, () => page.goto(`${url}?net=none`), `round ${i + 1} first visit`);
      const saved = await within(
        (async () => {
          for (;;) {
            const s = await page.evaluate(() => window.virtioLab.status().bootState);
            if (s?.bytes !== undefined || s?.error) return s;
            await new Promise((r) => setTimeout(r, 100));
          }
        })(),
        60_000,
        `instant: round ${i + 1}: the boot state stored`,
      );
      if (saved.error) throw new Error(`instant: the boot state was not stored: ${saved.error}`);
      const pauseMs = await page.evaluate(() => window.virtioLab.status().bootPointPauseMs ?? NaN);
      const round: InstantRound = { first: first.pageToPrompt, restored: [], cold: [], stateBytes: saved.bytes!, pauseMs, storeMs: saved.ms ?? NaN, restoreMs: [] };
      for (let j = 0; j < returns; j++) {
        for (const kind of j % 2 === 0 ? (['restored', 'cold'] as const) : (['cold', 'restored'] as const)) {
          const query = kind === 'cold' ? '?net=none&boot=cold' : '?net=none';
          const v = await visit(page, () => page.goto(url + query), `round ${i + 1} ${kind} return visit`);
          const expected = kind === 'cold' ? 'booted' : 'restored';
          if (v.start !== expected) throw new Error(`instant: a ${kind} return visit ${v.start ?? 'did not start'}, expected ${expected}`);
          round[kind].push(v.pageToPrompt);
          if (kind === 'restored') round.restoreMs.push(await page.evaluate(() => window.virtioLab.status().restoreMs ?? NaN));
        }
      }
      log(
        `  round ${i + 1}: first visit ${first.pageToPrompt.toFixed(0)} ms; restored ${round.restored.map((x) => x.toFixed(0)).join(', ')} ms; ` +
          `cold ${round.cold.map((x) => x.toFixed(0)).join(', ')} ms; boot state ${(round.stateBytes / 1e6).toFixed(2)} MB, ` +
          `guest paused ${pauseMs.toFixed(0)} ms, stored in ${round.storeMs.toFixed(0)} ms`,
      );
      out.push(round);
    } finally {
      await ctx.close();
    }
  }
  return out;
}
