import { describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { guestTimed, parseGuestTimed, tcpEndpoint, type TcpEndpoint } from './tcp-endpoint.ts';

describe('guest-timed transfers', () => {
  it('reads the status and the uptime difference, not the echoed command line', () => {
    const cmd = guestTimed('nc 10.0.2.2 4000 </dev/null >/dev/null');
    // A serial console echoes the command first: its "@timed $s …" must not parse.
    expect(parseGuestTimed(`${cmd}\r\n@timed 0 812.40 814.65\r\n`)).toEqual({ status: 0, seconds: expect.closeTo(2.25, 9) });
    expect(parseGuestTimed('@timed 1 10.00 10.50\n')).toEqual({ status: 1, seconds: 0.5 });
  });

  it('is undefined when the command never reached its end line', () => {
    expect(parseGuestTimed(guestTimed('nc 10.0.2.2 4000'))).toBeUndefined();
    expect(parseGuestTimed('nc: can\'t connect to remote host\n')).toBeUndefined();
  });
});

describe('tcpEndpoint on loopback', () => {
  const connect = async (endpoint: TcpEndpoint) => {
    if (!endpoint.server.listening) await once(endpoint.server, 'listening');
    return new Promise<Socket>((resolve, reject) => {
      const port = endpoint.port();
      const s = createConnection({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
      s.on('error', reject);
    });
  };

  it('a source sends every byte to a client that half-closes at once (nc with stdin at EOF)', async () => {
    const bytes = 32 << 20; // more than loopback's socket buffers hold while the client waits
    const source = tcpEndpoint('source', bytes);
    try {
      const done = source.next();
      const client = await connect(source);
      client.pause();
      client.end(); // our FIN first, then read on, as a slow guest would
      await new Promise((r) => setTimeout(r, 200));
      let got = 0;
      client.on('data', (c: Buffer) => (got += c.length));
      client.resume();
      await new Promise((r) => client.on('end', r));
      client.destroy();
      expect(got).toBe(bytes);
      expect(await done).toBeGreaterThan(0);
    } finally {
      source.server.close();
    }
  });

  it('a sink rejects a transfer that ends short', async () => {
    const sink = tcpEndpoint('sink', 1 << 20);
    try {
      const done = sink.next();
      const client = await connect(sink);
      client.end(Buffer.alloc(1000));
      await expect(done).rejects.toThrow('after 1000 of 1048576 bytes');
      client.destroy();
    } finally {
      sink.server.close();
    }
  });
});
