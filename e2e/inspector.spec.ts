/**
 * The ring inspector on a live guest: blk rings move with a dd, freeze/step/resume hold
 * and release the guest's reads, and a ping shows up decoded on the net receive queue.
 * One boot (default disk + relay) serves all three; each takes a screenshot of the panel.
 */
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';
import { InspectorPage, SHOTS } from './inspector-page.ts';
import type { QueueSnapshot } from '../src/virtio/inspect/types.ts';

// Starts from a first visit's boot state (e2e/fixtures.ts): restored, not booted.
test.use({ seedBootStates: true });

test.describe.configure({ mode: 'serial' });

let lab: InspectorPage;
let page: Page;
const idx = (v: QueueSnapshot['avail'] | QueueSnapshot['used']) => ('idx' in v ? v.idx : -1);

test.beforeAll(async ({ browser }) => {
  test.setTimeout(180_000);
  lab = await InspectorPage.open(browser, '/');
  page = lab.page;
});

test.afterAll(async () => {
  await lab?.close();
});

test('a 200-request dd moves the blk rings and shows IN requests with their sectors', async () => {
  const before = await lab.queue('blk', 0);
  const lastSeq = await page.evaluate(() => window.virtioLab.inspector.events('blk').at(-1)?.seq ?? 0);
  const dd = await lab.run('dd if=/dev/vda of=/dev/null bs=4k count=200 iflag=direct');
  expect(dd.status).toBe(0);
  await expect.poll(async () => (idx((await lab.queue('blk', 0)).used) - idx(before.used)) & 0xffff).toBeGreaterThanOrEqual(200);
  const sectors = await page.evaluate(
    (seq) =>
      window.virtioLab.inspector
        .events('blk', 0)
        .filter((e) => e.seq > seq && e.kind === 'complete' && e.fields?.type === 'IN' && e.fields.length === 4096)
        .map((e) => e.fields!.sector as number),
    lastSeq,
  );
  for (let k = 0; k < 200; k++) expect(sectors).toContain(8 * k);
  const q = await lab.queue('blk', 0);
  expect(q.counters.completions).toBeGreaterThanOrEqual(200);
  await page.getByTestId('ins-tab-blk').click();
  // Where v86 put it: slot 4, INTA routed by the PIRQ router to IRQ 11 (/proc/interrupts agrees).
  await expect(page.getByTestId('ins-irq')).toHaveText('INTA → IRQ 11');
  expect((await lab.run('grep virtio /proc/interrupts')).output).toMatch(/^\s*11:/m);
  await expect(page.getByTestId('ins-timeline')).toContainText('IN sector 1592 · 4096 B → OK');
  // The rate charts saw the burst: a non-zero peak of requests/s (one sample a second).
  await expect(page.getByTestId('ins-rates')).toContainText(/peak [1-9][\d.]* \/s/, { timeout: 10_000 });
  await lab.shot('1-blk-after-dd');
  await page.screenshot({ path: `${SHOTS}/0-page.png` });
});

test('freeze the blk queue: the driver posts, the device does not consume; step; resume', async () => {
  const frozen = await lab.freezeBlkWithReadPending();
  let q = await lab.queue('blk', 0);
  expect((idx(q.avail) - idx(frozen.avail)) & 0xffff).toBeGreaterThanOrEqual(1);
  expect(idx(q.used)).toBe(idx(frozen.used));
  expect((await lab.run('cat /tmp/dd.log')).output).not.toContain('records in');
  await expect(page.getByTestId('ins-pending-0')).not.toHaveText('0');
  await lab.shot('2-blk-frozen');

  const usedBefore = idx(q.used);
  await page.getByTestId('ins-step-0').click();
  await expect.poll(async () => idx((await lab.queue('blk', 0)).used)).toBe((usedBefore + 1) & 0xffff);
  await page.waitForTimeout(300);
  q = await lab.queue('blk', 0);
  expect(idx(q.used)).toBe((usedBefore + 1) & 0xffff); // exactly one
  await lab.shot('3-blk-stepped');

  await lab.resumeBlkAndReadAgain();
});

test('a ping shows ICMP decoded on the net receive queue', async () => {
  await lab.pingGatewayAndSeeReply();
  const tx = await page.evaluate(() => window.virtioLab.inspector.events('net', 1).map((e) => e.detail ?? ''));
  expect(tx.some((d) => /ICMP echo request/.test(d))).toBe(true);
  await page.getByTestId('ins-tab-net').click();
  await page.getByTestId('ins-timeline-filter').selectOption('0');
  await expect(page.getByTestId('ins-timeline')).toContainText('ICMP echo reply');
  await lab.shot('4-net-ping');
  await page.getByTestId('ins-timeline').screenshot({ path: `${SHOTS}/5-net-rx-timeline.png` });
});
