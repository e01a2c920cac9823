/**
 * The ring inspector on a live guest: blk rings move with a dd, freeze/step/resume hold
 * and release the guest's reads, and a ping shows up decoded on the net receive queue.
 * One boot (default disk + relay) serves all three; each takes a screenshot of the panel.
 */
import { mkdirSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';
import type { FunctionSnapshot, QueueSnapshot } from '../src/virtio/inspect/types.ts';

export const SHOTS = '/tmp/virtio-lab-inspector';

test.describe.configure({ mode: 'serial' });

let page: Page;
const pageErrors: string[] = [];

const run = (cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);
const device = (name: string) => page.evaluate((n) => window.virtioLab.inspector.device(n), name) as Promise<FunctionSnapshot | undefined>;
const queue = async (name: string, i: number): Promise<QueueSnapshot> => (await device(name))!.queues[i]!;
const idx = (v: QueueSnapshot['avail'] | QueueSnapshot['used']) => ('idx' in v ? v.idx : -1);
const shot = (name: string) => page.getByTestId('inspector').screenshot({ path: `${SHOTS}/${name}.png` });

test.beforeAll(async ({ browser }) => {
  test.setTimeout(180_000);
  mkdirSync(SHOTS, { recursive: true });
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('/');
  await page.evaluate(() => window.virtioLab.ready);
  await page.getByTestId('inspector-toggle').click();
  await expect(page.getByTestId('inspector')).toBeVisible();
  await expect.poll(async () => (await queue('blk', 0))?.enabled).toBe(true);
});

test.afterAll(async () => {
  await page?.close();
  expect(pageErrors).toEqual([]);
});

test('a 200-request dd moves the blk rings and shows IN requests with their sectors', async () => {
  const before = await queue('blk', 0);
  const lastSeq = await page.evaluate(() => window.virtioLab.inspector.events('blk').at(-1)?.seq ?? 0);
  const dd = await run('dd if=/dev/vda of=/dev/null bs=4k count=200 iflag=direct');
  expect(dd.status).toBe(0);
  await expect.poll(async () => (idx((await queue('blk', 0)).used) - idx(before.used)) & 0xffff).toBeGreaterThanOrEqual(200);
  const sectors = await page.evaluate(
    (seq) =>
      window.virtioLab.inspector
        .events('blk', 0)
        .filter((e) => e.seq > seq && e.kind === 'complete' && e.fields?.type === 'IN' && e.fields.length === 4096)
        .map((e) => e.fields!.sector as number),
    lastSeq,
  );
  for (let k = 0; k < 200; k++) expect(sectors).toContain(8 * k);
  const q = await queue('blk', 0);
  expect(q.counters.completions).toBeGreaterThanOrEqual(200);
  await page.getByTestId('ins-tab-blk').click();
  // Where v86 put it: slot 4, INTA routed by the PIRQ router to IRQ 11 (/proc/interrupts agrees).
  await expect(page.getByTestId('ins-irq')).toHaveText('INTA → IRQ 11');
  expect((await run('grep virtio /proc/interrupts')).output).toMatch(/^\s*11:/m);
  await expect(page.getByTestId('ins-timeline')).toContainText('IN sector 1592 · 4096 B → OK');
  // The rate charts saw the burst: a non-zero peak of requests/s (one sample a second).
  await expect(page.getByTestId('ins-rates')).toContainText(/peak [1-9][\d.]* \/s/, { timeout: 10_000 });
  await shot('1-blk-after-dd');
  await page.screenshot({ path: `${SHOTS}/0-page.png` });
});

test('freeze the blk queue: the driver posts, the device does not consume; step; resume', async () => {
  await page.getByTestId('ins-tab-blk').click();
  await page.getByTestId('ins-freeze-0').click();
  await expect.poll(async () => (await queue('blk', 0)).frozen).toBe(true);
  const frozen = await queue('blk', 0);
  // Runs in the background: the shell answers at once, dd waits on the frozen disk.
  expect((await run('dd if=/dev/vda of=/dev/null bs=4k count=4 skip=5000 iflag=direct > /tmp/dd.log 2>&1 &')).status).toBe(0);
  await expect.poll(async () => (await queue('blk', 0)).pending).toBeGreaterThanOrEqual(1);
  await page.waitForTimeout(500);
  let q = await queue('blk', 0);
  expect((idx(q.avail) - idx(frozen.avail)) & 0xffff).toBeGreaterThanOrEqual(1);
  expect(idx(q.used)).toBe(idx(frozen.used));
  expect((await run('cat /tmp/dd.log')).output).not.toContain('records in');
  await expect(page.getByTestId('ins-pending-0')).not.toHaveText('0');
  await shot('2-blk-frozen');

  const usedBefore = idx(q.used);
  await page.getByTestId('ins-step-0').click();
  await expect.poll(async () => idx((await queue('blk', 0)).used)).toBe((usedBefore + 1) & 0xffff);
  await page.waitForTimeout(300);
  q = await queue('blk', 0);
  expect(idx(q.used)).toBe((usedBefore + 1) & 0xffff); // exactly one
  await shot('3-blk-stepped');

  await page.getByTestId('ins-resume-0').click();
  await expect.poll(async () => (await run('cat /tmp/dd.log')).output, { timeout: 30_000 }).toContain('4+0 records in');
  q = await queue('blk', 0);
  expect(q.frozen).toBe(false);
  expect(q.pending).toBe(0);
  // Healthy afterwards: a fresh read goes through.
  expect((await run('dd if=/dev/vda of=/dev/null bs=4k count=16 iflag=direct')).status).toBe(0);
});

test('a ping shows ICMP decoded on the net receive queue', async () => {
  await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
  const ip = (await page.getByTestId('net-ip').textContent())!;
  await run(`for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
  const ping = await run('ping -c 3 -i 0.2 10.0.2.2');
  expect(ping.output).toContain('3 packets received');
  await expect
    .poll(() => page.evaluate(() => window.virtioLab.inspector.events('net', 0).filter((e) => e.kind === 'complete').map((e) => e.detail ?? '')))
    .toEqual(expect.arrayContaining([expect.stringMatching(/10\.0\.2\.2 > .*ICMP echo reply/)]));
  const tx = await page.evaluate(() => window.virtioLab.inspector.events('net', 1).map((e) => e.detail ?? ''));
  expect(tx.some((d) => /ICMP echo request/.test(d))).toBe(true);
  await page.getByTestId('ins-tab-net').click();
  await page.getByTestId('ins-timeline-filter').selectOption('0');
  await expect(page.getByTestId('ins-timeline')).toContainText('ICMP echo reply');
  await shot('4-net-ping');
  await page.getByTestId('ins-timeline').screenshot({ path: `${SHOTS}/5-net-rx-timeline.png` });
});
