/**
 * Packed virtqueues in the browser (`?ring=packed`): the stock Linux drivers take
 * VIRTIO_F_RING_PACKED, blk and net work, the inspector draws the packed view (one
 * descriptor ring, AVAIL/USED bits, wrap counters, event suppression) instead of the split
 * one, and freeze/step hold and release the guest's requests. One boot serves all three.
 */
import { mkdirSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';
import type { FunctionSnapshot, PackedRingView, QueueSnapshot } from '../src/virtio/inspect/types.ts';

const SHOTS = '/tmp/virtio-lab-inspector';

test.describe.configure({ mode: 'serial' });

let page: Page;
const pageErrors: string[] = [];

const run = (cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);
const device = (name: string) => page.evaluate((n) => window.virtioLab.inspector.device(n), name) as Promise<FunctionSnapshot | undefined>;
const queue = async (name: string, i: number): Promise<QueueSnapshot> => (await device(name))!.queues[i]!;
const packedOf = (q: QueueSnapshot): PackedRingView => {
  if (!q.packed) throw new Error(`queue ${q.index} has no packed view`);
  return q.packed;
};
const bit = (b: boolean) => (b ? 1 : 0);
const shot = (name: string) => page.getByTestId('inspector').screenshot({ path: `${SHOTS}/${name}.png` });

test.beforeAll(async ({ browser }) => {
  test.setTimeout(180_000);
  mkdirSync(SHOTS, { recursive: true });
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('/?ring=packed');
  await page.evaluate(() => window.virtioLab.ready);
  await page.getByTestId('inspector-toggle').click();
  await expect(page.getByTestId('inspector')).toBeVisible();
  await expect.poll(async () => (await queue('blk', 0))?.enabled).toBe(true);
});

test.afterAll(async () => {
  await page?.close();
  expect(pageErrors).toEqual([]);
});

test('the guest negotiates VIRTIO_F_RING_PACKED on every device; blk I/O shows the packed view, not the split one', async () => {
  const features = (await run('cat /sys/bus/virtio/devices/*/features')).output.split('\n').filter((l) => /^[01]{64}$/.test(l.trim()));
  expect(features.length).toBeGreaterThanOrEqual(3);
  for (const f of features) expect(f.trim()[34]).toBe('1');

  const before = await queue('blk', 0);
  const dd = await run('dd if=/dev/vda of=/dev/null bs=4k count=300 iflag=direct');
  expect(dd.status).toBe(0);
  await expect.poll(async () => (await queue('blk', 0)).counters.completions - before.counters.completions).toBeGreaterThanOrEqual(300);
  const fn = (await device('blk'))!;
  expect(fn.lastError).toBeUndefined();
  expect(fn.features.find((f) => f.name === 'VIRTIO_F_RING_PACKED')).toMatchObject({ offered: true, accepted: true });
  const q = fn.queues[0]!;
  const p = packedOf(q);
  expect(p.layout).toBe('packed');
  expect(q.avail).toHaveProperty('unreadable');
  // 300 requests passed a 256-slot ring: both sides are past its end at least once.
  expect(q.counters.completions).toBeGreaterThan(q.size);
  expect(p.device.nextAvail).toBe(p.device.nextUsed); // idle: nothing in flight
  expect(p.map.length).toBe(Math.min(q.size, 256));

  await page.getByTestId('ins-tab-blk').click();
  await expect(page.getByTestId('ins-layout-0')).toContainText('packed (§2.8)');
  await expect(page.getByTestId('ins-packed-0')).toBeVisible();
  await expect(page.getByTestId('ins-packed-map-0')).toBeVisible();
  // Positions with wrap counters, as the snapshot has them (idle, so they hold still).
  const now = packedOf(await queue('blk', 0));
  await expect(page.getByTestId('ins-device-used-0')).toHaveText(`device used slot ${now.device.nextUsed} · wrap ${bit(now.device.usedWrap)}`);
  await expect(page.getByTestId('ins-device-avail-0')).toContainText(`wrap ${bit(now.device.availWrap)}`);
  await expect(page.getByTestId('ins-driver-pos-0')).toContainText('wrap');
  // Slot rows carry AVAIL/USED bits; the used ones read A = U.
  await expect(page.getByTestId('ins-packed-0').locator('tbody.pk-used').first()).toContainText(/A(\d)U\1/);
  await expect(page.getByTestId('ins-driver-event-0')).toContainText(/flags (ENABLE|DISABLE|DESC)/);
  await expect(page.getByTestId('ins-device-event-0')).toContainText(/off_wrap 0x[0-9a-f]+ = slot \d+, wrap [01]/);
  // What only the split view has is gone.
  await expect(page.getByTestId('ins-avail-0')).toHaveCount(0);
  await expect(page.getByTestId('ins-used-0')).toHaveCount(0);
  await expect(page.getByTestId('ins-fn-blk')).not.toContainText('last_avail_idx');
  await expect(page.getByTestId('ins-fn-blk')).not.toContainText('Available ring');
  await shot('p1-blk-packed');
});

test('the lessons say they follow split rings and link to a split boot', async () => {
  const notice = page.getByTestId('lessons-packed-notice');
  await expect(notice).toBeVisible();
  await expect(notice).toContainText('split virtqueues');
  const href = await notice.getByRole('link').getAttribute('href');
  expect(href).not.toContain('ring=packed');
});

test('freeze the packed blk queue: the driver makes a buffer available, the device does not take it; step serves one; resume', async () => {
  await page.getByTestId('ins-tab-blk').click();
  await page.getByTestId('ins-freeze-0').click();
  await expect.poll(async () => (await queue('blk', 0)).frozen).toBe(true);
  const frozen = await queue('blk', 0);
  expect((await run('dd if=/dev/vda of=/dev/null bs=4k count=4 skip=5000 iflag=direct > /tmp/dd.log 2>&1 &')).status).toBe(0);
  await expect.poll(async () => (await queue('blk', 0)).pending).toBeGreaterThanOrEqual(1);
  await page.waitForTimeout(500);
  let q = await queue('blk', 0);
  const p = packedOf(q);
  expect(q.counters.completions).toBe(frozen.counters.completions);
  // The driver moved ahead of the device: available slots between their positions.
  expect(p.availableSlots).toBeGreaterThanOrEqual(1);
  expect(p.driver.nextAvail).not.toBe(p.device.nextAvail);
  expect(q.chains.some((c) => c.state === 'pending')).toBe(true);
  expect((await run('cat /tmp/dd.log')).output).not.toContain('records in');
  await expect(page.getByTestId('ins-pending-0')).not.toHaveText('0');
  await expect(page.getByTestId('ins-packed-map-0')).toContainText('a');
  await shot('p2-blk-packed-frozen');

  const done = q.counters.completions;
  await page.getByTestId('ins-step-0').click();
  await expect.poll(async () => (await queue('blk', 0)).counters.completions).toBe(done + 1);
  await page.waitForTimeout(700); // past a repaint (REPAINT_INTERVAL_MS) for the screenshot
  q = await queue('blk', 0);
  expect(q.counters.completions).toBe(done + 1); // exactly one
  expect(q.frozen).toBe(true);
  await shot('p3-blk-packed-stepped');

  await page.getByTestId('ins-resume-0').click();
  await expect.poll(async () => (await run('cat /tmp/dd.log')).output, { timeout: 30_000 }).toContain('4+0 records in');
  q = await queue('blk', 0);
  expect(q.frozen).toBe(false);
  expect(q.pending).toBe(0);
  expect((await run('dd if=/dev/vda of=/dev/null bs=4k count=16 iflag=direct')).status).toBe(0);
});

test('net on packed rings: a ping is decoded on the receive queue, both net queues draw packed', async () => {
  await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
  const ip = (await page.getByTestId('net-ip').textContent())!;
  await run(`for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
  const ping = await run('ping -c 3 -i 0.2 10.0.2.2');
  expect(ping.output).toContain('3 packets received');
  await expect
    .poll(() => page.evaluate(() => window.virtioLab.inspector.events('net', 0).filter((e) => e.kind === 'complete').map((e) => e.detail ?? '')))
    .toEqual(expect.arrayContaining([expect.stringMatching(/10\.0\.2\.2 > .*ICMP echo reply/)]));
  const net = (await device('net'))!;
  expect(net.lastError).toBeUndefined();
  for (const q of net.queues.filter((x) => x.enabled)) expect(packedOf(q).layout).toBe('packed');
  // Receive buffers the driver keeps posted: available slots ahead of the device.
  expect(packedOf(net.queues[0]!).availableSlots).toBeGreaterThan(0);
  await page.getByTestId('ins-tab-net').click();
  await expect(page.getByTestId('ins-packed-0')).toBeVisible();
  await expect(page.getByTestId('ins-packed-1')).toBeVisible();
  await expect(page.getByTestId('ins-avail-0')).toHaveCount(0);
  await shot('p4-net-packed');
});
