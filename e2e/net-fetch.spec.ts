/**
 * ?net=fetch: no relay in the path. The gateway runs in the VM's worker and guest HTTP becomes
 * the page's fetch(); 10.0.2.2:PORT stands for the browser's own 127.0.0.1:PORT. Served from
 * a static host (no relay there at all), where fetch is the default.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures.ts';
import { startStaticHost, type StaticHost } from './static-host.ts';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist');
const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

const listen = (s: Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

let host: StaticHost;
test.beforeAll(async () => {
  host = await startStaticHost(DIST);
});
test.afterAll(() => host?.close());

test('static host, default fetch mode: DHCP, ping the gateway, wget through fetch() with md5, a dead port fails fast', async ({ page }) => {
  const blob = randomBytes(500_000);
  const files = createServer((_, res) => res.writeHead(200, { 'access-control-allow-origin': '*', 'content-length': blob.length }).end(blob));
  const port = await listen(files);
  const dead = createServer();
  const deadPort = await listen(dead);
  await new Promise((r) => dead.close(r));
  try {
    await page.goto(`${host.url}?disk=none`);
    await page.evaluate(() => window.virtioLab.ready);
    await expect(page.getByTestId('net-mode')).toHaveText('fetch');
    await expect(page.getByTestId('net-link')).toHaveText('up');
    await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
    const ip = (await page.getByTestId('net-ip').textContent())!;
    await run(page, `for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
    expect((await run(page, 'ping -c 2 -i 0.2 10.0.2.2')).output).toContain('2 packets received');
    const get = await run(page, `wget -q -O /tmp/b http://10.0.2.2:${port}/blob && md5sum /tmp/b`);
    expect(get.status).toBe(0);
    expect(get.output.split(' ')[0]).toBe(createHash('md5').update(blob).digest('hex'));
    const t0 = Date.now();
    const fail = await run(page, `wget -q -T 20 -O /tmp/x http://10.0.2.2:${deadPort}/x`);
    expect(fail.status).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // The VM keeps running.
    expect((await run(page, 'echo still-here')).output).toBe('still-here\n');
  } finally {
    files.close();
  }
});
