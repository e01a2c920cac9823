/**
 * Cold boots in headless Chromium, each in a fresh context (empty caches and OPFS, like a
 * first visit): worker start → shell prompt, its parts, and the page's longest main-thread task.
 */
import type { Browser } from '@playwright/test';
import { BOOT_LIMIT_MS, within } from './within.ts';

export interface BootKind {
  label: string;
  /** Query string, e.g. "?disk=none". */
  query: string;
}

export interface BootRun {
  kind: string;
  total: number;
  image: number;
  firstSerial: number;
  longestTask: number;
}

/** Cold boots: `boot=cold` (no boot state restored or saved: what a boot costs). */
export const BOOT_NO_DISK: BootKind = { label: 'no disk', query: '?disk=none&net=none&boot=cold' };

/** `runs` boots of each kind, the kinds alternating so drift hits all alike. */
export async function measureBoots(browser: Browser, url: string, runs: number, kinds: BootKind[], log: (s: string) => void): Promise<BootRun[]> {
  const results: BootRun[] = [];
  for (let i = 0; i < runs * kinds.length; i++) {
    const kind = kinds[i % kinds.length];
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.addInitScript(() => {
        const w = window as unknown as { __longTasks: number[] };
        w.__longTasks = [];
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) w.__longTasks.push(e.duration);
        }).observe({ type: 'longtask', buffered: true });
      });
      await page.goto(url + kind.query);
      await within(page.evaluate(() => window.virtioLab.ready), BOOT_LIMIT_MS, `boot ${i + 1}: boot to the prompt`);
      const r = await page.evaluate(() => {
        const t = window.virtioLab.status().timings;
        const tasks = (window as unknown as { __longTasks: number[] }).__longTasks;
        return {
          total: t.ready! - t.workerStart!,
          image: t.imageLoaded! - t.workerStart!,
          firstSerial: t.firstSerial! - t.workerStart!,
          longestTask: tasks.length ? Math.max(...tasks) : 0,
        };
      });
      results.push({ kind: kind.label, ...r });
      log(
        `  boot ${i + 1} (${kind.label}): ${r.total.toFixed(0)} ms to prompt (image+wasm ${r.image.toFixed(0)} ms, ` +
          `first console byte ${r.firstSerial.toFixed(0)} ms); longest main-thread task ${r.longestTask.toFixed(0)} ms`,
      );
    } finally {
      await ctx.close();
    }
  }
  return results;
}
