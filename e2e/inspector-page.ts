/**
 * One booted guest with the ring inspector open, shared by the serial inspector specs
 * (split and packed rings): shell commands, inspector snapshots, panel screenshots, and the
 * freeze/resume and ping steps both ring layouts go through the same way.
 */
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from '@playwright/test';
import { expect } from './fixtures.ts';
import type { FunctionSnapshot, QueueSnapshot } from '../src/virtio/inspect/types.ts';

export const SHOTS = '/tmp/virtio-lab-inspector';

export class InspectorPage {
  /** Uncaught page errors; the spec's afterAll expects none. */
  readonly pageErrors: string[] = [];

  private constructor(readonly page: Page) {
    page.on('pageerror', (e) => this.pageErrors.push(e.message));
  }

  /** Boots `url`, opens the inspector and waits for blk queue 0 to be enabled. */
  static async open(browser: Browser, url: string): Promise<InspectorPage> {
    mkdirSync(SHOTS, { recursive: true });
    const lab = new InspectorPage(await browser.newPage({ viewport: { width: 1600, height: 1000 } }));
    const { page } = lab;
    await page.goto(url);
    await page.evaluate(() => window.virtioLab.ready);
    await page.getByTestId('inspector-toggle').click();
    await expect(page.getByTestId('inspector')).toBeVisible();
    // The panel's first snapshot may not have come yet: no device is not an error here.
    await expect.poll(async () => (await lab.device('blk'))?.queues[0]?.enabled).toBe(true);
    return lab;
  }

  async close(): Promise<void> {
    await this.page.close();
    expect(this.pageErrors).toEqual([]);
  }

  run(cmd: string, timeoutMs = 60_000) {
    return this.page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);
  }

  device(name: string): Promise<FunctionSnapshot | undefined> {
    return this.page.evaluate((n) => window.virtioLab.inspector.device(n), name);
  }

  async queue(name: string, i: number): Promise<QueueSnapshot> {
    return (await this.device(name))!.queues[i]!;
  }

  shot(name: string) {
    return this.page.getByTestId('inspector').screenshot({ path: `${SHOTS}/${name}.png` });
  }

  /**
   * Freezes blk queue 0 and starts a 4-block read in the background (the shell answers at
   * once, dd waits on the frozen disk); returns the snapshot taken right after the freeze,
   * once the request is pending and a little more time has passed for the device to (not) act.
   */
  async freezeBlkWithReadPending(): Promise<QueueSnapshot> {
    await this.page.getByTestId('ins-tab-blk').click();
    await this.page.getByTestId('ins-freeze-0').click();
    await expect.poll(async () => (await this.queue('blk', 0)).frozen).toBe(true);
    const frozen = await this.queue('blk', 0);
    expect((await this.run('dd if=/dev/vda of=/dev/null bs=4k count=4 skip=5000 iflag=direct > /tmp/dd.log 2>&1 &')).status).toBe(0);
    await expect.poll(async () => (await this.queue('blk', 0)).pending).toBeGreaterThanOrEqual(1);
    await this.page.waitForTimeout(500);
    return frozen;
  }

  /** Resumes blk queue 0: the held read finishes, nothing stays pending, a fresh read goes through. */
  async resumeBlkAndReadAgain(): Promise<void> {
    await this.page.getByTestId('ins-resume-0').click();
    await expect.poll(async () => (await this.run('cat /tmp/dd.log')).output, { timeout: 30_000 }).toContain('4+0 records in');
    const q = await this.queue('blk', 0);
    expect(q.frozen).toBe(false);
    expect(q.pending).toBe(0);
    expect((await this.run('dd if=/dev/vda of=/dev/null bs=4k count=16 iflag=direct')).status).toBe(0);
  }

  /** Pings the gateway three times once eth0 has its address; the reply shows decoded on net receive queue 0. */
  async pingGatewayAndSeeReply(): Promise<void> {
    const { page } = this;
    await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
    const ip = (await page.getByTestId('net-ip').textContent())!;
    await this.run(`for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
    const ping = await this.run('ping -c 3 -i 0.2 10.0.2.2');
    expect(ping.output).toContain('3 packets received');
    await expect
      .poll(() => page.evaluate(() => window.virtioLab.inspector.events('net', 0).filter((e) => e.kind === 'complete').map((e) => e.detail ?? '')))
      .toEqual(expect.arrayContaining([expect.stringMatching(/10\.0\.2\.2 > .*ICMP echo reply/)]));
  }
}
