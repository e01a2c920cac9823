/**
 * Instant start, in headless Chromium: per round, a fresh context (a new user) makes its
 * first visit (kernel boot, the default disk created from its template, the boot state
 * saved at the prompt), then return visits alternate between a restore of the boot state
 * and a cold boot (`?boot=cold`), so drift hits both alike. Page load → prompt is the page's
 * own clock from navigation start to `virtioLab.ready`. Then, with a NIC on the relay (its own
 * boot state, made by a first visit), restored visits time prompt → DHCP lease and prompt →
 * the first ping of the gateway answered.
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
  /** Restored visits with a NIC on the relay. */
  network: NetworkVisit[];
}

export interface NetworkVisit {
  /** Page load → prompt, ms. */
  pageToPrompt: number;
  /** Prompt → this tab's DHCP lease shown by the page, ms. */
  lease: number;
  /** Prompt → the first `ping 10.0.2.2` answered, ms. */
  ping: number;
}

/** Restored visits with a NIC per round (after one first visit that makes their boot state). */
const NETWORK_VISITS = 2;

/** Waits for the first visit's boot state to be stored; throws if it failed. */
async function bootStateStored(page: Page, label: string) {
  const saved = await within(
    (async () => {
      for (;;) {
        const s = await page.evaluate(() => window.virtioLab.status().bootState);
        if (s?.bytes !== undefined || s?.error) return s;
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
    60_000,
    `instant: ${label}: the boot state stored`,
  );
  if (saved.error) throw new Error(`instant: the boot state was not stored: ${saved.error}`);
  return saved;
}

/** A restored visit with a NIC: prompt, then lease and ping timed from the prompt in the page. */
async function networkVisit(page: Page, url: string, label: string): Promise<NetworkVisit> {
  await page.goto(`${url}?net=relay`);
  const v = await within(
    page.evaluate(async () => {
      const lab = window.virtioLab;
      await lab.ready;
      const ready = performance.now();
      // The lease as the page sees it (the gateway's ACK, snooped), polled without the guest:
      // a command run meanwhile would take the guest's CPU from its DHCP client.
      while (!lab.status().net?.ip) await new Promise((r) => setTimeout(r, 5));
      const lease = performance.now() - ready;
      let ping = NaN;
      // The address is configured by udhcpc's script just after the ACK; 20 tries bound it.
      for (let i = 0; i < 20 && Number.isNaN(ping); i++) {
        if ((await lab.run('ping -c 1 -W 1 10.0.2.2 >/dev/null')).status === 0) ping = performance.now() - ready;
      }
      return { start: lab.status().start, pageToPrompt: ready, lease, ping };
    }),
    BOOT_LIMIT_MS,
    `instant: ${label}`,
  );
  if (v.start !== 'restored') throw new Error(`instant: ${label} ${v.start ?? 'did not start'}, expected restored`);
  if (Number.isNaN(v.ping)) throw new Error(`instant: ${label}: the gateway never answered a ping`);
  return { pageToPrompt: v.pageToPrompt, lease: v.lease, ping: v.ping };
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
      const saved = await bootStateStored(page, `round ${i + 1}`);
      const pauseMs = await page.evaluate(() => window.virtioLab.status().bootPointPauseMs ?? NaN);
      const round: InstantRound = { first: first.pageToPrompt, restored: [], cold: [], stateBytes: saved.bytes!, pauseMs, storeMs: saved.ms ?? NaN, restoreMs: [], network: [] };
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
      await visit(page, () => page.goto(`${url}?net=relay`), `round ${i + 1} first visit with a NIC`);
      await bootStateStored(page, `round ${i + 1} with a NIC`);
      for (let k = 0; k < NETWORK_VISITS; k++) round.network.push(await networkVisit(page, url, `round ${i + 1} restored visit with a NIC`));
      log(
        `  round ${i + 1}: first visit ${first.pageToPrompt.toFixed(0)} ms; restored ${round.restored.map((x) => x.toFixed(0)).join(', ')} ms; ` +
          `cold ${round.cold.map((x) => x.toFixed(0)).join(', ')} ms; boot state ${(round.stateBytes / 1e6).toFixed(2)} MB, ` +
          `guest paused ${pauseMs.toFixed(0)} ms, stored in ${round.storeMs.toFixed(0)} ms; with a NIC: ` +
          round.network.map((n) => `prompt ${n.pageToPrompt.toFixed(0)}, lease +${n.lease.toFixed(0)}, ping +${n.ping.toFixed(0)} ms`).join('; '),
      );
      out.push(round);
    } finally {
      await ctx.close();
    }
  }
  return out;
}
