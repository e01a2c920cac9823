/**
 * The benchmark's one loopback server: the built lab (dist/), the relay on /relay/<room>, a
 * wisp server on /wisp/ (NAT host), and
 * under /stock/ a page running stock v86 from npm in a worker (bench/browser/). One origin,
 * so every column shares the relay and the same OPFS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createAppServer } from '../../src/server/app-server.ts';
import { securityHeaders } from '../../src/server/headers.ts';
import { attachRelay, type Relay } from '../../src/relay/index.ts';
import { attachWispServer } from '../../src/relay/wisp-server.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const v86Build = path.dirname(createRequire(import.meta.url).resolve('v86/build/libv86.mjs'));

const STOCK_FILES: Record<string, { file: string; type: string }> = {
  '/stock/': { file: path.join(ROOT, 'bench/browser/stock.html'), type: 'text/html; charset=utf-8' },
  '/stock/stock-page.js': { file: path.join(ROOT, 'bench/browser/stock-page.js'), type: 'text/javascript' },
  '/stock/stock-worker.js': { file: path.join(ROOT, 'bench/browser/stock-worker.js'), type: 'text/javascript' },
  '/stock/libv86.mjs': { file: path.join(v86Build, 'libv86.mjs'), type: 'text/javascript' },
  '/stock/v86.wasm': { file: path.join(v86Build, 'v86.wasm'), type: 'application/wasm' },
};

function stockRoutes(req: IncomingMessage, res: ServerResponse): boolean {
  const route = STOCK_FILES[(req.url ?? '').split('?')[0]];
  if (!route) return false;
  res.writeHead(200, { ...securityHeaders(), 'Content-Type': route.type, 'Cache-Control': 'no-cache' });
  fs.createReadStream(route.file).pipe(res);
  return true;
}

export interface BenchServer {
  origin: string;
  relayUrl(room: string): string;
  relay: Relay;
  close(): Promise<void>;
}

export async function startBenchServer(): Promise<BenchServer> {
  const server = createAppServer({ distDir: path.join(ROOT, 'dist'), host: '127.0.0.1', port: 0, extraRoutes: stockRoutes, netModes: ['relay', 'wisp'] });
  // NAT to this host's loopback only: the transfers' endpoints listen on 127.0.0.1.
  const relay = attachRelay(server, { gateway: { nat: 'host' } });
  const wisp = attachWispServer(server, { nat: 'host' });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    relayUrl: (room) => `ws://127.0.0.1:${(server.address() as AddressInfo).port}/relay/${room}`,
    relay,
    async close() {
      await relay.close();
      wisp.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
