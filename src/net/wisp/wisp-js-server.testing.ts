/**
 * A third-party wisp server for tests: @mercuryworkshop/wisp-js (LGPL-3.0-or-later, a
 * devDependency, never bundled) on its own HTTP server on 127.0.0.1, allowed to reach this
 * host's loopback only. It resolves `localhost` and `*.localhost` to 127.0.0.1 (RFC 6761), as
 * a wisp server a lab is pointed at would, and nothing else. Its settings are process-wide.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { logging, server as wisp } from '@mercuryworkshop/wisp-js/server';

export interface WispJsServer {
  /** ws://127.0.0.1:PORT/ (a wisp URL ends in '/'). */
  url: string;
  close(): Promise<void>;
}

const LOOPBACK_NAME = /^(localhost|127\.0\.0\.1|([a-z0-9-]+\.)+localhost)$/i;

export async function startWispJs(): Promise<WispJsServer> {
  logging.set_level(logging.ERROR);
  wisp.options.wisp_version = 1;
  wisp.options.allow_loopback_ips = true;
  wisp.options.allow_private_ips = false;
  wisp.options.hostname_whitelist = [LOOPBACK_NAME];
  wisp.options.dns_method = async (hostname) => {
    if (LOOPBACK_NAME.test(hostname)) return '127.0.0.1';
    throw new Error(`${hostname}: not a loopback name`);
  };
  const http = createServer((_, res) => res.writeHead(404).end());
  // Upgraded sockets are the server's no more: close() ends them itself.
  const sockets = new Set<Duplex>();
  http.on('upgrade', (req, socket, head) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    wisp.routeRequest(req, socket, head);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}
