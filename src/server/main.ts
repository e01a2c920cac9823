/**
 * `npm start`: serves the built lab and the network relay (WebSocket `/relay/<room>`) on one
 * port (PORT, default 8080) and prints its URL.
 *
 * Relay settings: `--nat off|host|all` (or RELAY_NAT; default host), RELAY_TOKEN (required
 * when HOST is not loopback; clients then pass `?token=`), RELAY_ORIGINS (comma-separated
 * allowed Origins; default same host or none), `--room-clients N` (or RELAY_ROOM_CLIENTS;
 * default 32: clients per room; above 192 a room's subnet widens from 10.0.2.0/24, 500 → /21).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAppServer } from './app-server.ts';
import { attachRelay, type NatPolicy, type Relay } from '../relay/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const port = Number(process.env.PORT ?? 8080);
// Loopback by default: OPFS needs a secure context, which plain http has only on localhost.
const host = process.env.HOST ?? '127.0.0.1';

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a TCP port number, got "${process.env.PORT}"`);
  process.exit(2);
}

function argValue(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq ? eq.slice(name.length + 1) : undefined;
}

const nat = argValue('--nat') ?? process.env.RELAY_NAT ?? 'host';
if (nat !== 'off' && nat !== 'host' && nat !== 'all') {
  console.error(`--nat must be off, host or all, got "${nat}"`);
  process.exit(2);
}
const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
const token = process.env.RELAY_TOKEN || null;
if (!loopback && !token) {
  console.error(
    `virtio-lab: HOST=${host} is not loopback: the relay would let anyone reach this host's ports. ` +
      'Set RELAY_TOKEN=<secret> (clients connect to /relay/<room>?token=<secret>) or bind to 127.0.0.1.',
  );
  process.exit(2);
}
const roomClients = Number(argValue('--room-clients') ?? process.env.RELAY_ROOM_CLIENTS ?? 32);
if (!Number.isInteger(roomClients) || roomClients < 1 || roomClients > 50_000) {
  console.error(`--room-clients must be 1..50000, got "${roomClients}"`);
  process.exit(2);
}
const origins = process.env.RELAY_ORIGINS?.split(',').map((s) => s.trim()).filter(Boolean);

let server;
let relay: Relay;
try {
  server = createAppServer({ distDir: path.join(root, 'dist'), host, port });
  relay = attachRelay(server, {
    token,
    maxClientsPerRoom: roomClients,
    gateway: { nat: nat as NatPolicy },
    allowedOrigins: origins && origins.length ? origins : null,
    // Off on loopback; beyond it, a guest should not be able to flood the host.
    rateLimit: loopback ? null : { framesPerSecond: 20_000, bytesPerSecond: 50 << 20, burstSeconds: 1 },
  });
} catch (e) {
  console.error(`virtio-lab: ${(e as Error).message}`);
  process.exit(1);
}
server.on('error', (e: NodeJS.ErrnoException) => {
  console.error(
    e.code === 'EADDRINUSE' ? `virtio-lab: port ${port} is in use; set PORT to another one` : `virtio-lab: ${e.message}`,
  );
  process.exit(1);
});
server.listen(port, host, () => {
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  console.log(`virtio-lab: http://${shown}:${actual}/`);
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void relay.close().finally(() => server.close(() => process.exit(0)));
    setTimeout(() => process.exit(0), 3000).unref();
  });
}
