/**
 * ?net=wisp against wisp servers that misbehave once a stream is under way: one closes its
 * WebSocket mid-stream, one sends a packet that is not wisp. Each is a small fake on loopback
 * (ws) that hands the guest the start of an HTTP response first. The panel says what happened,
 * the guest's connection is reset (wget fails rather than hangs), the VM keeps running and the
 * link comes back when the server lets it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from '@playwright/test';
import { WebSocketServer, type WebSocket } from 'ws';
import { WISP_CONNECT, WISP_CONTINUE, WISP_DATA, decodeWisp, encodeWisp } from '../src/net/wisp/packet.ts';
import { expect, test } from './fixtures.ts';

const run = (page: Page, cmd: string, timeoutMs = 60_000) =>
  page.evaluate(([c, t]) => window.virtioLab.run(c as string, { timeoutMs: t as number }), [cmd, timeoutMs] as const);

/**
 * A wisp v1 server that opens like any other (CONTINUE on stream 0), answers each CONNECT
 * with the head of a long HTTP response, then after a moment does `misbehave`.
 */
async function fakeWisp(misbehave: (ws: WebSocket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const http: Server = createServer((_, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => {
    ws.send(encodeWisp({ type: WISP_CONTINUE, streamId: 0, bufferRemaining: 32 }));
    ws.on('message', (m) => {
      const p = decodeWisp(new Uint8Array(m as Buffer));
      if (p instanceof Error || p.type !== WISP_CONNECT) return;
      const head = 'HTTP/1.0 200 OK\r\nContent-Length: 10000000\r\n\r\n';
      ws.send(encodeWisp({ type: WISP_DATA, streamId: p.streamId, data: Buffer.concat([Buffer.from(head), Buffer.alloc(8000, 0x61)]) }));
      setTimeout(() => misbehave(ws), 500);
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    },
  };
}

/** From now on, each distinct "link; problem" the Network panel shows, in order. */
async function recordPanel(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { panelSeen: string[] }).panelSeen = seen;
    const note = () => {
      const link = document.querySelector('[data-testid=net-link]')?.textContent ?? '';
      const problem = document.querySelector('[data-testid=net-problem]')?.textContent ?? '';
      const line = `${link}; ${problem}`;
      if (seen.at(-1) !== line) seen.push(line);
    };
    note();
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  return () => page.evaluate(() => (window as unknown as { panelSeen: string[] }).panelSeen);
}

const CASES = [
  { what: 'closes the WebSocket mid-stream', misbehave: (ws: WebSocket) => ws.close(1001, 'going away'), says: 'closed by the server (code 1001)' },
  { what: 'sends garbage mid-stream', misbehave: (ws: WebSocket) => ws.send(Uint8Array.of(0xee, 1, 2, 3, 4, 5)), says: 'not a wisp server (unknown wisp packet type 238)' },
];

for (const c of CASES) {
  test(`a wisp server that ${c.what}: the panel says so, the guest's connection resets, the VM keeps running`, async ({ page }) => {
    const server = await fakeWisp(c.misbehave);
    try {
      await page.goto(`/?disk=none&net=wisp&wisp=${encodeURIComponent(server.url)}`);
      await page.evaluate(() => window.virtioLab.ready);
      await expect(page.getByTestId('net-link')).toHaveText('up');
      await expect(page.getByTestId('net-ip')).toHaveText(/^10\.0\.2\.\d+$/);
      const ip = (await page.getByTestId('net-ip').textContent())!;
      await run(page, `for i in $(seq 50); do ip -4 addr show eth0 | grep -q ${ip} && break; sleep 0.2; done`);
      const seen = await recordPanel(page);
      // A hang would run into run()'s own limit (45 s) and fail the test; a reset ends wget at once.
      const got = await run(page, 'wget -q -O /tmp/x http://10.0.2.2:8080/big', 45_000);
      expect(got.status).not.toBe(0);
      const says = `down; ${server.url}: ${c.says}`;
      await expect.poll(seen).toEqual(expect.arrayContaining([expect.stringContaining(says)]));
      expect((await run(page, 'echo ok')).output).toBe('ok\n');
      // The server takes new connections: the link comes back.
      await expect(page.getByTestId('net-link')).toHaveText('up');
    } finally {
      await server.close();
    }
  });
}
