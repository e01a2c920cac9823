/** `npm start`: serves the built lab on one port (PORT, default 8080) and prints its URL. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAppServer } from './app-server.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const port = Number(process.env.PORT ?? 8080);
// Loopback by default: OPFS needs a secure context, which plain http has only on localhost.
const host = process.env.HOST ?? '127.0.0.1';

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a TCP port number, got "${process.env.PORT}"`);
  process.exit(2);
}

let server;
try {
  server = createAppServer({ distDir: path.join(root, 'dist'), host, port });
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
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => server.close(() => process.exit(0)));
