/**
 * One HTTP server for the lab: the built app (dist/) and the relay's WebSocket endpoint on
 * the same port (main.ts mounts it with `attachRelay(server, ...)` from src/relay, which
 * listens to this server's 'upgrade' event for `/relay/<room>`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import path from 'node:path';
import sirv from 'sirv';
import { securityHeaders } from './headers.ts';
import { NET_HEADER } from '../ui/net-choice.ts';

export interface AppServerOptions {
  distDir: string;
  host: string;
  port: number;
  /**
   * The uplinks this server offers the page (NET_HEADER on every response; default relay):
   * the page defaults to relay when listed, and to fetch on hosts that send no such header.
   */
  netModes?: string[];
  /** Served before the app: return true when the request was answered (benchmarks' pages). */
  extraRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export function createAppServer(opts: AppServerOptions): Server {
  if (!existsSync(path.join(opts.distDir, 'index.html'))) {
    throw new Error(`no built app in ${opts.distDir}: run "npm run build" first (npm start does)`);
  }
  const headers = { ...securityHeaders(), [NET_HEADER]: (opts.netModes ?? ['relay']).join(', ') };
  const serve = sirv(opts.distDir, {
    etag: true,
    // Guest files are verified by sha256 anyway; hashed assets never change.
    setHeaders(res, pathname) {
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      if (pathname.startsWith('/assets/')) res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
      else res.setHeader('Cache-Control', 'no-cache');
    },
  });
  return createServer((req, res) => {
    if (opts.extraRoutes?.(req, res)) return;
    serve(req, res, () => {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(`not found: ${req.url}\n`);
    });
  });
}
