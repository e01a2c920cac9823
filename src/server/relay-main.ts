/**
 * `npm run relay`: the network relay alone (no app), for running several behind a
 * WebSocket-capable load balancer with `--cluster nats://HOST:PORT`, and for the benches and
 * integration tests. PORT (default 8081; 0 = any), HOST (default 127.0.0.1) and the relay
 * settings of relay-config.ts. Prints `relay: ws://HOST:PORT/relay/<room>` once listening.
 * Started with an IPC channel (child_process.fork), it also sends {type:'ready', port} and
 * answers {type:'sample'} with its CPU time, RSS and frame counts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attachRelay, type Relay } from '../relay/index.ts';
import { relayConfig } from './relay-config.ts';

const port = Number(process.env.PORT ?? 8081);
const host = process.env.HOST ?? '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a TCP port number, got "${process.env.PORT}"`);
  process.exit(2);
}

let relay: Relay;
const server = createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' }).end(req.url === '/healthz' ? 'ok\n' : 'not found\n');
});
try {
  const config = relayConfig(process.argv.slice(2), process.env, host);
  relay = attachRelay(server, { ...config.options, cluster: config.cluster });
} catch (e) {
  console.error(`relay: ${(e as Error).message}`);
  process.exit(2);
}
server.on('error', (e) => {
  console.error(`relay: ${e.message}`);
  process.exit(1);
});
relay.ready.then(
  () => server.listen(port, host, onListening),
  (e: Error) => {
    console.error(`relay: ${e.message}`);
    process.exit(1);
  },
);
function onListening(): void {
  const actual = (server.address() as AddressInfo).port;
  console.log(`relay: ws://${host.includes(':') ? `[${host}]` : host}:${actual}/relay/<room>`);
  process.send?.({ type: 'ready', port: actual, cluster: relay.stats().cluster?.relay ?? null });
}

process.on('message', (m: { type?: string; id?: number }) => {
  if (m?.type !== 'sample') return;
  let frames = 0;
  let clients = 0;
  for (const r of relay.stats().rooms) {
    frames += r.framesIn;
    clients += r.clients.length;
  }
  const cpu = process.cpuUsage();
  process.send?.({ type: 'sample', id: m.id, cpuMs: (cpu.user + cpu.system) / 1000, rss: process.memoryUsage().rss, frames, clients, cluster: relay.stats().cluster ?? null });
});
process.on('disconnect', () => process.exit(0));
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void relay.close().finally(() => server.close(() => process.exit(0)));
    setTimeout(() => process.exit(0), 3000).unref();
  });
}
