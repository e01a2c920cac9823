/**
 * Packed virtqueues in the browser (`?ring=packed`): the stock Linux drivers take
 * VIRTIO_F_RING_PACKED, blk and net work, the inspector draws the packed view (one
 * descriptor ring, AVAIL/USED bits, wrap counters, event suppression) instead of the split
 * one, and freeze/step hold and release the guest's requests. One boot serves all three.
 */
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';
import { InspectorPage, SHOTS } from './inspector-page.ts';
import type { PackedRingView, QueueSnapshot } from '../src/virtio/inspect/types.ts';

test.describe.configure({ mode: 'serial' });

let lab: InspectorPage;
let page: Page;
const packedOf = (q: QueueSnapshot): PackedRingView => {
  if (!q.packed) throw new Error(`queue ${q.index} has no packed view`);
  return q.packed;
};
const bit = (b: boolean) => (b ? 1 : 0);

test.beforeAll(async ({ browser }) => {
  test.setTimeout(180_000);
  lab = await InspectorPage.open(browser, '/?ring=packed');
  page = lab.page;
});

test.afterAll(async () => {
  await lab?.close();
});

test('the guest negotiates VIRTIO_F_RING_PACKED on every device; blk I/O shows the packed view, not the split one', async () => {
  const features = (await lab.run('cat /sys/bus/virtio/devices/*/features')).output.split('\n').filter((l) => /^[01]{64}$/.test(l.trim()));
  expect(features.length).toBeGreaterThanOrEqual(3);
  for (const f of features) expect(f.trim()[34]).toBe('1');

  const before = await lab.queue('blk', 0);
  const dd = await lab.run('dd if=/dev/vda of=/dev/null bs=4k count=300 iflag=direct');
  expect(dd.status).toBe(0);
  await expect.poll(async () => (await lab.queue('blk', 0)).counters.completions - before.counters.completions).toBeGreaterThanOrEqual(300);
  const fn = (await lab.device('blk'))!;
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
  const now = packedOf(await lab.queue('blk', 0));
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
  await lab.shot('p1-blk-packed');
});

test('the lessons say they follow split rings and link to a split boot', async () => {
  const notice = page.getByTestId('lessons-packed-notice');
  await expect(notice).toBeVisible();
  await expect(notice).toContainText('split virtqueues');
  const href = await notice.getByRole('link').getAttribute('href');
  expect(href).not.toContain('ring=packed');
});

test('freeze the packed blk queue: the driver makes a buffer available, the device does not take it; step serves one; resume', async () => {
  const frozen = await lab.freezeBlkWithReadPending();
  let q = await lab.queue('blk', 0);
  const p = packedOf(q);
  expect(q.counters.completions).toBe(frozen.counters.completions);
  // The driver moved ahead of the device: available slots between their positions.
  expect(p.availableSlots).toBeGreaterThanOrEqual(1);
  expect(p.driver.nextAvail).not.toBe(p.device.nextAvail);
  expect(q.chains.some((c) => c.state === 'pending')).toBe(true);
  expect((await lab.run('cat /tmp/dd.log')).output).not.toContain('records in');
  await expect(page.getByTestId('ins-pending-0')).not.toHaveText('0');
  await expect(page.getByTestId('ins-packed-map-0')).toContainText('a');
  await lab.shot('p2-blk-packed-frozen');

  const done = q.counters.completions;
  await page.getByTestId('ins-step-0').click();
  await expect.poll(async () => (await lab.queue('blk', 0)).counters.completions).toBe(done + 1);
  await page.waitForTimeout(700); // past a repaint (REPAINT_INTERVAL_MS) for the screenshot
  q = await lab.queue('blk', 0);
  expect(q.counters.completions).toBe(done + 1); // exactly one
  expect(q.frozen).toBe(true);
  await lab.shot('p3-blk-packed-stepped');

  await lab.resumeBlkAndReadAgain();
});

test('net on packed rings: a ping is decoded on the receive queue, both net queues draw packed', async () => {
  await lab.pingGatewayAndSeeReply();
  const net = (await lab.device('net'))!;
  expect(net.lastError).toBeUndefined();
  for (const q of net.queues.filter((x) => x.enabled)) expect(packedOf(q).layout).toBe('packed');
  // Receive buffers the driver keeps posted: available slots ahead of the device.
  expect(packedOf(net.queues[0]!).availableSlots).toBeGreaterThan(0);
  await page.getByTestId('ins-tab-net').click();
  await expect(page.getByTestId('ins-packed-0')).toBeVisible();
  await expect(page.getByTestId('ins-packed-1')).toBeVisible();
  await expect(page.getByTestId('ins-avail-0')).toHaveCount(0);
  await lab.shot('p4-net-packed');
});
