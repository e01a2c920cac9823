/**
 * The VMs a benchmark drives in Chromium, behind one interface: the lab's own page (our
 * virtio devices in the VM worker) and the stock-v86 page (v86's IDE disk or NIC). Both run
 * the same guest image and are driven through their serial console.
 */
import type { BrowserContext, Page } from '@playwright/test';
import { ConsoleSession, type RunResult } from '../../src/vm/console-session.ts';
import type { DeviceStats } from '../../src/vm/protocol.ts';
import { BOOT_LIMIT_MS, within } from './within.ts';

export interface GuestCounters {
  /** v86's instruction counter (32 bits, wraps: subtract with `instructionsBetween`). */
  instructions: number;
  /** Our PCI functions' counters; empty for stock v86. */
  devices: DeviceStats[];
}

export interface BenchGuest {
  label: string;
  page: Page;
  run(cmd: string, timeoutMs?: number): Promise<RunResult>;
  counters(): Promise<GuestCounters>;
  close(): Promise<void>;
}

export const instructionsBetween = (a: number, b: number) => (b - a) >>> 0;

/** Fails loudly on an uncaught page error rather than timing out on a dead VM later. */
function watchPage(page: Page, label: string): void {
  page.on('pageerror', (e) => console.error(`[${label}] page error: ${e.message}`));
  // tsx compiles named inner functions of page.evaluate callbacks to __name(...) calls.
  void page.addInitScript('window.__name = (f) => f');
}

/** The lab's page, e.g. query "disk=mem:256&net=none". */
export async function labGuest(ctx: BrowserContext, origin: string, label: string, query: string): Promise<BenchGuest> {
  const page = await ctx.newPage();
  watchPage(page, label);
  await page.goto(`${origin}/?${query}`);
  await within(page.evaluate(() => window.virtioLab.ready), BOOT_LIMIT_MS, `${label}: boot to the prompt`);
  return {
    label,
    page,
    run: (cmd, timeoutMs = 600_000) => page.evaluate(([c, t]) => window.virtioLab.run(c, { timeoutMs: t }), [cmd, timeoutMs] as const),
    counters: () =>
      page.evaluate(async () => {
        const s = await window.virtioLab.stats();
        return { instructions: s.instructions, devices: s.devices };
      }),
    close: () => page.close(),
  };
}

export interface StockOptions {
  /** A zeroed IDE disk (hda) of this many bytes. */
  hdaBytes?: number;
  /** v86's own NIC on a relay. */
  net?: { type: 'virtio' | 'ne2k'; relay_url: string };
}

declare global {
  interface Window {
    stock: {
      boot(opts: StockOptions): Promise<void>;
      send(text: string): void;
      instructions(): Promise<number>;
      rawOpfs(job: RawOpfsJob): Promise<RawOpfsResult>;
    };
  }
}

export interface RawOpfsJob {
  rw: 'read' | 'write' | 'randread' | 'randwrite';
  bs: number;
  seconds: number;
  fileBytes: number;
}
export interface RawOpfsResult {
  ops: number;
  seconds: number;
  iops: number;
  mibps: number;
}

/** The stock-v86 page (bench/browser/), its console driven from here. */
export async function stockPage(ctx: BrowserContext, origin: string, label: string): Promise<{ page: Page; session: ConsoleSession }> {
  const page = await ctx.newPage();
  watchPage(page, label);
  const session = new ConsoleSession((text) => void page.evaluate((t) => window.stock.send(t), text).catch(() => undefined));
  await page.exposeFunction('__stockSerial', (bytes: number[]) => session.feed(Uint8Array.from(bytes)));
  await page.goto(`${origin}/stock/`);
  return { page, session };
}

export async function stockGuest(ctx: BrowserContext, origin: string, label: string, opts: StockOptions): Promise<BenchGuest> {
  const { page, session } = await stockPage(ctx, origin, label);
  await within(
    page.evaluate((o) => window.stock.boot(o), opts).then(() => session.ready),
    BOOT_LIMIT_MS,
    `${label}: boot to the prompt`,
  );
  return {
    label,
    page,
    run: (cmd, timeoutMs = 600_000) => session.run(cmd, { timeoutMs }),
    counters: async () => ({ instructions: await page.evaluate(() => window.stock.instructions()), devices: [] }),
    close: () => page.close(),
  };
}
