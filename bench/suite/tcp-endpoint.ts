/** Host side of a benchmark transfer on 127.0.0.1: a source that sends `bytes`, or a sink that counts them. */
import { createServer, type AddressInfo, type Server } from 'node:net';

export interface TcpEndpoint {
  server: Server;
  port(): number;
  /** Resolves with the seconds from accept to the last byte of the next transfer. */
  next(): Promise<number>;
}

export function tcpEndpoint(kind: 'source' | 'sink', bytes: number): TcpEndpoint {
  let waiter: ((s: number) => void) | undefined;
  const server = createServer((sock) => {
    const t0 = performance.now();
    const done = () => waiter?.((performance.now() - t0) / 1000);
    sock.on('error', () => undefined);
    if (kind === 'source') {
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      let sent = 0;
      const pump = () => {
        while (sent < bytes) {
          sent += chunk.length;
          if (!sock.write(chunk)) return void sock.once('drain', pump);
        }
        sock.end();
      };
      sock.on('close', done);
      pump();
    } else {
      let got = 0;
      sock.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= bytes) {
          done();
          sock.end();
        }
      });
    }
  });
  server.listen(0, '127.0.0.1');
  return {
    server,
    port: () => (server.address() as AddressInfo).port,
    next: () => new Promise((r) => (waiter = r)),
  };
}
