/**
 * ?net=wisp: the gateway runs in the VM's worker and guest TCP/UDP leave as wisp streams, here
 * through `npm start`'s own /wisp/ (NAT policy host: its loopback only) and through a
 * third-party server, wisp-js from npm, on loopback and allowed loopback only. 10.0.2.2:PORT
 * and names like web.localhost (resolved by the wisp server) reach 127.0.0.1:PORT there.
 * Stock v86 (from npm, its own wisp backend) gets a TCP connection through the same /wisp/.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import net from 'node:net';
import type { Page } from '@playwright/test';
import { startBenchServer } from '../bench/suite/server.ts';
import { stockGuest } from '../bench/suite/guests.ts';
import { startWispJs } from '../src/net/wisp/wisp-js-server.testing.ts';
import { expect, test } from './fixtures.ts';

const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const listen = (s: net.Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port)));

/** The wisp servers the guest's checks go through: what `&wisp=` to add, and how to stop it. */
const SERVERS = [
  { name: "npm start's own /wisp/", start: async () => ({ query: '', close: async () => undefined }) },
  {
    name: 'wisp-js, a third-party server from npm',
    start: async () => {
      const w = await startWispJs();
      return { query: `&wisp=${encodeURIComponent(w.url)}`, close: w.close };
    },
  },
];

async function bootWisp(page: Page, query = ''): Promise<void> {
  await page.goto(`/?disk=none&net=wisp${query}`);
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('net-mode')).toHaveText('wisp');
  await expect(page.getByTestId('net-link')).toHaveText('up');
  await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
  const ip = (await page.getByTestId('net-ip').textContent())!;
  await run(page, `for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
}

for (const server of SERVERS) {
  test(`wisp mode through ${server.name}: DHCP, ping the gateway, wget and nc both ways with md5, a name the server resolves`, async ({ page }) => {
    const blob = randomBytes(400_000);
    const files = createHttpServer((_, res) => res.writeHead(200, { 'content-length': blob.length }).end(blob));
    const filesPort = await listen(files);
    const upload = randomBytes(200_000);
    let received: Buffer[] = [];
    let uploadDone!: () => void;
    const uploaded = new Promise<void>((r) => (uploadDone = r));
    const sink = net.createServer((s) => {
      received = [];
      s.on('data', (d: Buffer) => received.push(d));
      s.on('end', () => uploadDone());
    });
    const sinkPort = await listen(sink);
    const source = net.createServer((s) => s.end(upload));
    const sourcePort = await listen(source);
    const wisp = await server.start();
    try {
      await bootWisp(page, wisp.query);
      expect((await run(page, 'ping -c 2 -i 0.2 10.0.2.2')).output).toContain('2 packets received');
      const get = await run(page, `wget -q -O /tmp/b http://10.0.2.2:${filesPort}/b && md5sum /tmp/b`);
      expect(get.status).toBe(0);
      expect(get.output.split(' ')[0]).toBe(md5(blob));
      // A name only the wisp server can resolve (*.localhost is its loopback).
      const named = await run(page, `wget -q -O /tmp/n http://web.localhost:${filesPort}/n && md5sum /tmp/n`);
      expect(named.output.split(' ')[0]).toBe(md5(blob));
      // nc out: the guest sends a file; nc in: the host sends one.
      await run(page, `head -c ${upload.length} /dev/urandom > /tmp/up && md5sum /tmp/up > /tmp/up.md5`);
      const sent = (await run(page, `nc 10.0.2.2 ${sinkPort} < /tmp/up; cat /tmp/up.md5`)).output.trim().split(' ')[0];
      await uploaded;
      expect(md5(Buffer.concat(received))).toBe(sent);
      // Wisp v1 has no half-close: nc's FIN (its stdin is empty) becomes a CLOSE only once the
      // stream is quiet, so what the host sends after it still arrives.
      const back = await run(page, `nc 10.0.2.2 ${sourcePort} </dev/null > /tmp/down; md5sum /tmp/down`);
      expect(back.output.split(' ')[0]).toBe(md5(upload));
    } finally {
      files.close();
      sink.close();
      source.close();
      await wisp.close();
    }
  });
}

test('wisp mode, a URL with no wisp server behind it: the panel says which and why, the VM keeps running', async ({ page }) => {
  const http = createHttpServer((_, res) => res.writeHead(200).end('not wisp'));
  const port = await listen(http);
  try {
    await page.goto(`/?disk=none&net=wisp&wisp=ws://127.0.0.1:${port}/nope/`);
    await page.evaluate(() => window.virtioLab.ready);
    await expect(page.getByTestId('net-link')).toHaveText('down');
    await expect(page.getByTestId('net-problem')).toContainText(`ws://127.0.0.1:${port}/nope/: unreachable`);
    await expect(page.getByTestId('net-problem')).toContainText(/retrying (in \d+ s|now)/);
    expect((await run(page, 'echo alive')).output).toBe('alive\n');
  } finally {
    http.close();
  }
});

test('a wisp URL that is not a WebSocket URL is refused with a message', async ({ page }) => {
  await page.goto('/?disk=none&net=wisp&wisp=https://example.invalid/');
  await page.evaluate(() => window.virtioLab.ready);
  await expect(page.getByTestId('net-problem')).toContainText('is not a ws:// or wss:// URL');
});

test("stock v86 from npm, its own wisp backend, gets a TCP connection through our server's /wisp/", async ({ page }) => {
  test.setTimeout(180_000);
  const files = createHttpServer((_, res) => res.end('through-wisp\n'));
  const port = await listen(files);
  // The benchmark server (our app, relay and wisp on one origin, and the stock-v86 page).
  const server = await startBenchServer();
  try {
    const wispUrl = `${server.origin.replace('http:', 'wisp:')}/wisp/`;
    const stock = await stockGuest(page.context(), server.origin, 'stock wisp', { net: { type: 'virtio', relay_url: wispUrl } });
    const got = await stock.run(
      `for i in $(seq 150); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; wget -q -O - http://10.0.2.2:${port}/`,
      90_000,
    );
    expect(got.output).toContain('through-wisp');
  } finally {
    files.close();
    await server.close();
  }
});
