/**
 * The link's own ceiling: how fast a dedicated worker in this Chromium receives over a
 * WebSocket from a Node server on loopback, with nothing behind it. Frames from the relay
 * reach a lab VM exactly this way, one message each: MTU frames (1514 bytes, what stock
 * v86's NICs get) or super-segments (up to 64 KiB, ours). The worker acknowledges every 4
 * messages and the server keeps at most 1 MiB unacknowledged, so the number is the browser's
 * receive path, not a window.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from '@playwright/test';
import { WebSocketServer } from 'ws';

const WINDOW_BYTES = 1 << 20;
const ACK_EVERY = 4;

export interface WsStreamSource {
  url(): string;
  close(): Promise<void>;
}

/** Streams, per connection, what its first message asks: "<message bytes> <total bytes>". */
export async function wsStreamSource(): Promise<WsStreamSource> {
  const server: Server = createServer((_, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 });
  wss.on('connection', (ws) => {
    let sent = 0;
    let acked = 0;
    let payload: Buffer | undefined;
    let total = 0;
    const pump = () => {
      while (payload && sent < total && sent - acked < WINDOW_BYTES) {
        const n = Math.min(payload.length, total - sent);
        ws.send(n === payload.length ? payload : payload.subarray(0, n));
        sent += n;
      }
    };
    ws.on('message', (m) => {
      const [a, b] = m.toString().split(' ').map(Number);
      if (!payload) {
        // Bounded: a message of at most 64 KiB, at most 256 MiB in all.
        if (!(a >= 64 && a <= 65536 && b > 0 && b <= 256 << 20)) return ws.close(1008, 'bad request');
        payload = Buffer.alloc(a, 0x5a);
        total = b;
      } else acked = a;
      pump();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: () => `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => r());
      }),
  };
}

/** MiB/s a fresh worker of `page` receives `mib` MiB at, in messages of `messageBytes`. */
export async function wsCeilingMiBps(page: Page, source: WsStreamSource, messageBytes: number, mib: number): Promise<number> {
  const ms = await page.evaluate(
    async ([url, size, total, ackEvery]) => {
      const code = `onmessage = (e) => {
        const [url, size, total, ackEvery] = e.data;
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        let got = 0, n = 0, t0 = 0;
        ws.onopen = () => { t0 = performance.now(); ws.send(size + ' ' + total); };
        ws.onerror = () => postMessage({ error: 'cannot connect to ' + url });
        ws.onmessage = (m) => {
          got += m.data.byteLength;
          if (++n % ackEvery === 0) ws.send(String(got));
          if (got >= total) { postMessage({ ms: performance.now() - t0 }); ws.close(); }
        };
      };`;
      const blobUrl = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
      const worker = new Worker(blobUrl);
      try {
        const r = await new Promise<{ ms?: number; error?: string }>((resolve) => {
          const timer = setTimeout(() => resolve({ error: 'no end in 120 s' }), 120_000);
          worker.onmessage = (e) => {
            clearTimeout(timer);
            resolve(e.data);
          };
          worker.postMessage([url, size, total, ackEvery]);
        });
        if (r.error !== undefined) throw new Error(`WebSocket ceiling: ${r.error}`);
        return r.ms!;
      } finally {
        worker.terminate();
        URL.revokeObjectURL(blobUrl);
      }
    },
    [source.url(), messageBytes, mib << 20, ACK_EVERY] as const,
  );
  return mib / (ms / 1000);
}
