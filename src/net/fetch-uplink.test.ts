import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayCore } from '../relay/gateway-core.ts';
import { SwitchRoom } from '../relay/switch.ts';
import { FakeGuest, GW_IP, dnsQuery } from '../relay/testing.ts';
import { GuestTcp, until } from '../relay/testing-tcp.ts';
import { parseIp } from '../wire/ipv4.ts';
import { FETCH_NAME_ADDRESS, MAX_REQUEST_HEAD, fetchUplink, parseRequestHead } from './fetch-uplink.ts';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const enc = new TextEncoder();
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

async function listen(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  cleanups.push(() => server.closeAllConnections());
  return (server.address() as AddressInfo).port;
}

function setup(fetchImpl?: typeof fetch) {
  const room = new SwitchRoom('worker', { maxFrameBytes: 1514 });
  const gw = new GatewayCore(room, fetchUplink(fetchImpl ? { fetch: fetchImpl } : {}), { nat: 'all', tcp: { rtoInitialMs: 200 } });
  cleanups.push(() => gw.close());
  const guest = new FakeGuest(room, '52:54:00:12:34:56', '10.0.2.15');
  return { gw, guest };
}

describe('parseRequestHead', () => {
  it('reads method, path, Host and length; waits for the end of the head', () => {
    const head = 'POST /up?x=1 HTTP/1.1\r\nHost: 10.0.2.2:8000\r\nContent-Length: 5\r\nX-Thing: a\r\n\r\n';
    expect(parseRequestHead(enc.encode(head.slice(0, 30)))).toBeUndefined();
    const h = parseRequestHead(enc.encode(head + 'hello'));
    expect(h).toMatchObject({ method: 'POST', path: '/up?x=1', host: '10.0.2.2:8000', contentLength: 5, length: head.length });
    expect(h && !(h instanceof Error) && h.headers).toEqual([['x-thing', 'a']]);
  });

  it('refuses what is not HTTP, chunked bodies and heads beyond the bound', () => {
    expect(parseRequestHead(enc.encode('SSH-2.0-OpenSSH\r\n\r\n'))).toBeInstanceOf(Error);
    expect(parseRequestHead(enc.encode('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'))).toBeInstanceOf(Error);
    expect(parseRequestHead(new Uint8Array(MAX_REQUEST_HEAD + 1).fill(65))).toBeInstanceOf(Error);
  });
});

describe('fetch uplink behind the gateway', () => {
  it('a guest GET to 10.0.2.2:PORT becomes a fetch of 127.0.0.1:PORT; the body arrives intact, then FIN', async () => {
    const blob = randomBytes(300_000);
    let sawUrl = '';
    const port = await listen((req, res) => {
      sawUrl = req.url ?? '';
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*' }).end(blob);
    });
    const { guest } = setup();
    const c = new GuestTcp(guest, 41001, port);
    await c.connect();
    await c.send(enc.encode(`GET /blob?n=1 HTTP/1.1\r\nHost: 10.0.2.2:${port}\r\n\r\n`));
    await until(() => c.gotFin || c.gotRst, 10_000, 'response');
    expect(c.gotRst).toBe(false);
    const text = Buffer.from(c.data);
    const split = text.indexOf('\r\n\r\n');
    expect(text.subarray(0, split).toString()).toMatch(/^HTTP\/1\.0 200 OK\r\n/);
    expect(md5(text.subarray(split + 4))).toBe(md5(blob));
    expect(sawUrl).toBe('/blob?n=1');
  });

  it('a loopback port with no server: the guest gets a reset soon after its request', async () => {
    const dead = await listen(() => {});
    await cleanups.pop()!(); // close it again: the port is now free
    await cleanups.pop()!();
    const { guest, gw } = setup();
    const c = new GuestTcp(guest, 41002, dead);
    await c.connect();
    const t0 = Date.now();
    await c.send(enc.encode(`GET / HTTP/1.1\r\nHost: 10.0.2.2:${dead}\r\n\r\n`));
    await until(() => c.gotRst, 5000, 'reset');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(gw.stats().counts['tcp-host-reset']).toBe(1);
  });

  it('ports other than 80 off the gateway (HTTPS…) are refused at the SYN, without a fetch', async () => {
    let fetches = 0;
    const { guest } = setup(async () => {
      fetches++;
      return new Response('no');
    });
    const c = new GuestTcp(guest, 41003, 443, parseIp('93.184.215.14'));
    await expect(c.connect()).rejects.toThrow('reset');
    expect(fetches).toBe(0);
  });

  it('names resolve to one address; the Host header picks the site, on port 80', async () => {
    const urls: string[] = [];
    const { guest } = setup(async (input) => {
      urls.push(String(input));
      return new Response('hi', { status: 200 });
    });
    guest.udp(GW_IP, 5353, 53, dnsQuery('example.org'));
    const answer = await guest.waitFor((d) => d.udp?.srcPort === 53);
    expect(answer.dns?.answers[0]?.data).toEqual(Uint8Array.of(198, 18, 0, 1));
    const c = new GuestTcp(guest, 41004, 80, parseIp(FETCH_NAME_ADDRESS));
    await c.connect();
    await c.send(enc.encode('GET /a HTTP/1.1\r\nHost: example.org\r\n\r\n'));
    await until(() => c.gotFin, 5000, 'FIN');
    expect(urls).toEqual(['http://example.org/a']);
    expect(Buffer.from(c.data).toString()).toMatch(/\r\n\r\nhi$/);
  });

  it('garbage instead of a request is reset, and the gateway stays well', async () => {
    const { guest, gw } = setup(async () => new Response('x'));
    const c = new GuestTcp(guest, 41005, 80, parseIp(FETCH_NAME_ADDRESS));
    await c.connect();
    await c.send(randomBytes(3000).map((b) => (b === 13 ? 0 : b)));
    c.fin();
    await until(() => c.gotRst, 5000, 'reset');
    expect(gw.stats().counts['internal-error']).toBeUndefined();
  });
});
