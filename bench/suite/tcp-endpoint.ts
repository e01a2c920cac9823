/** Host side of a benchmark transfer on 127.0.0.1: a source that sends `bytes`, or a sink that counts them. */
import { createServer, type AddressInfo, type Server } from 'node:net';

export interface TcpEndpoint {
  kind: 'source' | 'sink';
  server: Server;
  port(): number;
  /**
   * Resolves with the seconds from accept to the end of the next transfer (a source: all its
   * bytes handed to the socket and the peer gone; a sink: all bytes in); rejects if the
   * connection ends short.
   */
  next(): Promise<number>;
}

export function tcpEndpoint(kind: 'source' | 'sink', bytes: number): TcpEndpoint {
  let waiter: { resolve(s: number): void; reject(e: Error): void } | undefined;
  // Half-open allowed: busybox nc shuts down its sending side when its stdin ends, and a
  // source must go on sending all its bytes after that, as TCP allows.
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const t0 = performance.now();
    const settle = (moved: number) => {
      const w = waiter;
      waiter = undefined;
      if (moved >= bytes) w?.resolve((performance.now() - t0) / 1000);
      else w?.reject(new Error(`${kind}: the connection ended after ${moved} of ${bytes} bytes`));
    };
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
      sock.on('close', () => settle(sock.bytesWritten));
      pump();
    } else {
      let got = 0;
      sock.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= bytes) {
          settle(got);
          sock.end();
        }
      });
      sock.on('end', () => {
        if (got < bytes) settle(got);
        sock.end();
      });
    }
  });
  server.listen(0, '127.0.0.1');
  return {
    kind,
    server,
    port: () => (server.address() as AddressInfo).port,
    next: () => new Promise((resolve, reject) => (waiter = { resolve, reject })),
  };
}

/**
 * `cmd` timed on the guest's own clock (/proc/uptime, 10 ms steps), for transfers whose end
 * only the guest sees: busybox nc shuts down its sending side as soon as its stdin ends (a
 * run() over the console port gives commands /dev/null), the relay passes that FIN on, and the
 * host's socket closes while the guest is still reading. Ends with a line parseGuestTimed reads.
 */
export const guestTimed = (cmd: string) => `read t0 _ </proc/uptime; ${cmd}; s=$?; read t1 _ </proc/uptime; echo "@timed $s $t0 $t1"`;

/** The exit status and guest seconds of a guestTimed command, or undefined if it never printed them. */
export function parseGuestTimed(output: string): { status: number; seconds: number } | undefined {
  const m = /@timed (\d+) ([\d.]+) ([\d.]+)/.exec(output);
  return m ? { status: Number(m[1]), seconds: Number(m[3]) - Number(m[2]) } : undefined;
}
