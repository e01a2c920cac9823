/**
 * virtio-net's control queue in the browser: the guest changes its MAC (`ip link set dev eth0
 * address …`: CTRL_MAC_ADDR), the relay's switch moves the tab's port to the new MAC (its
 * table shows it, the old one is gone), and after the guest renews its lease ping works. The
 * inspector shows the request decoded, with its ack.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from '@playwright/test';
import { attachRelay } from '../src/relay/index.ts';
import { expect, test } from './fixtures.ts';

const NEW_MAC = '52:54:00:0c:7a:11';
const ROOM = 'e2e-ctrl';

const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

test('a MAC change in the guest reaches the relay switch, and ping goes on', async ({ page }) => {
  test.setTimeout(180_000);
  const server = createServer((_, res) => res.writeHead(404).end());
  const relay = attachRelay(server, { allowedOrigins: '*' });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  const macs = () => relay.stats().rooms.find((r) => r.name === ROOM)?.ports.map((p) => p.mac) ?? [];
  try {
    await page.goto(`/?disk=none&relay=ws://127.0.0.1:${port}/relay/${ROOM}`);
    await page.evaluate(() => window.virtioLab.ready);
    await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
    const oldMac = (await page.getByTestId('net-mac').textContent())!;
    // The panel shows the lease as the DHCP ACK passes; the guest's script configures eth0 after.
    await run(page, 'for i in $(seq 50); do ip route | grep -q "^default" && break; sleep 0.2; done');
    expect((await run(page, 'ping -c 2 -i 0.2 10.0.2.2')).output).toContain('2 packets received');
    expect(macs()).toContain(oldMac);
    // Linux's virtio_net negotiated the control queue (feature bit 17 in sysfs).
    expect((await run(page, 'cut -c18 /sys/class/net/eth0/device/features')).output.trim()).toBe('1');

    // The inspector decodes the control queue (queue 2): the request and its ack.
    await page.evaluate(() => window.virtioLab.inspector.show());
    const change = await run(page, `ip link set dev eth0 address ${NEW_MAC} && cat /sys/class/net/eth0/address`);
    expect(change.status).toBe(0);
    expect(change.output.trim()).toBe(NEW_MAC);
    await expect
      .poll(() => page.evaluate(() => window.virtioLab.inspector.events('net', 2).map((e) => e.detail ?? '')))
      .toEqual(expect.arrayContaining([`MAC ADDR_SET ${NEW_MAC}`, 'ack VIRTIO_NET_OK']));
    // The old lease is the old MAC's: the guest asks again for its new address.
    const renew = await run(page, 'killall -q udhcpc; udhcpc -n -q -f -i eth0 -s /usr/share/udhcpc/default.script >/dev/null 2>&1; ip -4 addr show eth0');
    expect(renew.output).toMatch(/inet 10\.0\.2\.\d+\/24/);
    const ping = await run(page, 'ping -c 3 -i 0.2 10.0.2.2');
    expect(ping.output).toContain('3 packets transmitted, 3 packets received');
    expect(macs()).toContain(NEW_MAC);
    expect(macs()).not.toContain(oldMac);
    expect(relay.stats().rooms.find((r) => r.name === ROOM)!.macMoves).toBe(1);
  } finally {
    await relay.close();
    server.close();
  }
});
