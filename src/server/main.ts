/**
 * `npm start`: serves the built lab, the network relay (WebSocket `/relay/<room>`) and a wisp
 * server (WebSocket `/wisp/`, same NAT policy, token and origins) on one port (PORT, default
 * 8080) and prints its URL.
 *
 * Relay settings (relay-config.ts): `--nat off|host|all` (or RELAY_NAT; default host),
 * RELAY_TOKEN (required when HOST is not loopback; clients then pass `?token=`),
 * RELAY_ORIGINS (comma-separated allowed Origins; default same host or none),
 * `--room-clients N` (or RELAY_ROOM_CLIENTS; default 32; above 192 a room's subnet widens
 * from 10.0.2.0/24, 500 → /21), `--cluster nats://HOST:PORT` (or RELAY_CLUSTER).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAppServer } from './app-server.ts';
import { attachRelay, type Relay } from '../relay/index.ts';
import { attachWispServer } from '../relay/wisp-server.ts';
import { type RelayConfig, relayConfig } from './relay-config.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const port = Number(process.env.PORT ?? 8080);
// Loopback by default: OPFS needs a secure context, which plain http has only on localhost.
const host = process.env.HOST ?? '127.0.0.1';

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a TCP port number, got "${process.env.PORT}"`);
  process.exit(2);
}

let config: RelayConfig;
try {
  config = relayConfig(process.argv.slice(2), process.env, host);
} catch (e) {
  console.error(`virtio-lab: ${(e as Error).message}`);
  process.exit(2);
}

let server;
let relay: Relay;
try {
  server = createAppServer({ distDir: path.join(root, 'dist'), host, port, netModes: ['relay', 'wisp'] });
  relay = attachRelay(server, { ...config.options, cluster: config.cluster });
  const { token, allowedOrigins, gateway } = config.options;
  attachWispServer(server, { nat: (gateway && gateway.nat) || 'host', token: token ?? null, allowedOrigins: allowedOrigins ?? null, othersPath: '/relay' });
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
relay.ready.catch((e: Error) => {
  console.error(`virtio-lab: ${e.message}`);
  process.exit(1);
});
// Clustered, clients are refused (503) until NATS and the lease bucket are up.
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
