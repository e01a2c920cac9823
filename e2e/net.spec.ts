import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { startBenchServer } from '../bench/suite/server.ts';
import { stockGuest } from '../bench/suite/guests.ts';
import type { Page } from '@playwright/test';
import { attachRelay, type Relay } from '../src/relay/index.ts';
import { decodeFrame } from '../src/wire/decode.ts';
import { expect, test } from './fixtures.ts';

const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

/** Boots (no disk, for speed) and waits until the guest holds a DHCP lease; returns its IP. */
async function bootWithLease(page: Page, query = ''): Promise<string> {
  await page.goto(`/?disk=none${query}`);
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('net-link')).toHaveText('up');
  await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
  const ip = (await page.getByTestId('net-ip').textContent())!;
  // The page saw the ACK; the guest may still be configuring the address.
  await run(page, `for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
  return ip;
}

const listen = (s: Server, port = 0) =>
  new Promise<number>((resolve) => s.listen(port, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));

test('DHCP lease, ping and wget through the gateway', async ({ page }) => {
  const payload = randomBytes(200_000);
  const files = createServer((_, res) => res.writeHead(200, { 'content-length': payload.length }).end(payload));
  const port = await listen(files);
  try {
    const ip = await bootWithLease(page);
    await expect(page.getByTestId('net-mac')).toHaveText(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect((await run(page, 'ip -4 addr show eth0')).output).toContain(`inet ${ip}/24`);
    const ping = await run(page, 'ping -c 3 -i 0.2 10.0.2.2');
    expect(ping.output).toContain('3 packets transmitted, 3 packets received');
    const get = await run(page, `wget -q -O /tmp/f http://10.0.2.2:${port}/f && md5sum /tmp/f`);
    expect(get.status).toBe(0);
    expect(get.output.split(' ')[0]).toBe(createHash('md5').update(payload).digest('hex'));
    await expect(page.getByTestId('net-rx')).not.toHaveText(/^0 frames/);
  } finally {
    files.close();
  }
});

test('two tabs in one room ping each other; a tab in another room cannot', async ({ context }) => {
  const a = await context.newPage();
  const b = await context.newPage();
  const c = await context.newPage();
  const ipA = await bootWithLease(a, '&room=e2e-shared');
  const ipB = await bootWithLease(b, '&room=e2e-shared');
  const ipC = await bootWithLease(c, '&room=e2e-other');
  expect(ipA).not.toBe(ipB);
  expect((await run(a, `ping -c 2 -i 0.2 ${ipB}`)).output).toContain('2 packets received');
  expect((await run(b, `ping -c 2 -i 0.2 ${ipA}`)).output).toContain('2 packets received');
  // C's room has its own gateway and DHCP pool: target whichever of A/B is not C's own address.
  const target = ipA !== ipC ? ipA : ipB;
  const isolated = await run(c, `ping -c 2 -W 1 ${target}`);
  expect(isolated.status).not.toBe(0);
  expect(isolated.output).toContain('0 packets received');
});

test('the pcap capture opens and holds the ping', async ({ page }) => {
  await bootWithLease(page);
  await run(page, 'ping -c 2 -i 0.2 10.0.2.2');
  const downloading = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Capture (pcap)' }).click();
  const file = readFileSync((await (await downloading).path())!);
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  expect(dv.getUint32(0, true)).toBe(0xa1b2c3d4);
  expect(dv.getUint32(20, true)).toBe(1); // LINKTYPE_ETHERNET
  const summaries: string[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const len = dv.getUint32(at + 8, true);
    const frame = new Uint8Array(file.buffer, file.byteOffset + at + 16, len);
    summaries.push(decodeFrame(frame)?.summary ?? '?');
    at += 16 + len;
  }
  expect(summaries.some((s) => /ICMP echo request/i.test(s))).toBe(true);
  expect(summaries.some((s) => /ICMP echo reply/i.test(s))).toBe(true);
  expect(summaries.some((s) => /DHCP/i.test(s))).toBe(true);
});

test('the link goes down when the relay stops and comes back when it restarts', async ({ page }) => {
  test.setTimeout(120_000);
  let server = createServer((_, res) => res.writeHead(404).end());
  let relay: Relay = attachRelay(server, { allowedOrigins: '*' });
  const port = await listen(server);
  try {
    await bootWithLease(page, `&relay=ws://127.0.0.1:${port}/relay/restart`);
    expect((await run(page, 'ping -c 1 10.0.2.2')).status).toBe(0);
    await relay.close();
    await new Promise<void>((r) => server.close(() => r()));
    await expect(page.getByTestId('net-link')).toHaveText('down');
    expect((await run(page, 'ping -c 1 -W 1 10.0.2.2')).status).not.toBe(0);

    server = createServer((_, res) => res.writeHead(404).end());
    relay = attachRelay(server, { allowedOrigins: '*' });
    await listen(server, port);
    await expect(page.getByTestId('net-link')).toHaveText('up', { timeout: 30_000 });
    const ping = await run(page, 'ping -c 3 -i 0.3 10.0.2.2');
    expect(ping.output).toMatch(/[1-3] packets received/);
  } finally {
    await relay.close();
    server.close();
  }
});

for (const nic of ['ne2k', 'virtio'] as const) test(`stock v86 with its ${nic} NIC and relay_url gets a DHCP lease from our relay`, async ({ page }) => {
  test.setTimeout(120_000);
  // The benchmark's stock-v86 page (v86 from npm in a worker, nothing of ours) on a server of
  // the test's own with our relay mounted (a route-fulfilled page would be treated as public
  // and Chromium's local-network checks would block its WebSocket to 127.0.0.1).
  const server = await startBenchServer();
  try {
    const stock = await stockGuest(page.context(), server.origin, `stock ${nic}`, { net: { type: nic, relay_url: server.relayUrl('compat') } });
    // v86's own NIC speaks the same wire format: udhcpc in /init leases from our gateway.
    const lease = await stock.run(
      'echo drv=$(basename $(readlink /sys/class/net/eth0/device/driver)); ' +
        'for i in $(seq 150); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0',
      60_000,
    );
    expect(lease.output).toMatch(/inet 10\.0\.2\.\d+\/24/);
    expect(lease.output).toContain(nic === 'ne2k' ? 'drv=ne2k-pci' : 'drv=virtio_net');
    const leases = server.relay.stats().rooms.find((r) => r.name === 'compat')?.gateway?.leases ?? [];
    expect(leases).toHaveLength(1);
  } finally {
    await server.close();
  }
});
