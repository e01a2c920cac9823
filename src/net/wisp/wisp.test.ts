import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { GatewayCore } from '../../relay/gateway-core.ts';
import { SwitchRoom } from '../../relay/switch.ts';
import { FakeGuest, GW_IP, dnsQuery } from '../../relay/testing.ts';
import { GuestTcp, until } from '../../relay/testing-tcp.ts';
import { attachWispServer, wispTarget } from '../../relay/wisp-server.ts';
import { readU32 } from '../../wire/bytes.ts';
import { WISP_CLOSE, WISP_CONNECT, WISP_CONTINUE, WISP_DATA, decodeWisp, encodeWisp } from './packet.ts';
import { WispUplink, type WispState } from './wisp-uplink.ts';
import { startWispJs } from './wisp-js-server.testing.ts';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

async function listenOn(server: Server | net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

/** A TCP server on loopback; closes its connections at cleanup. */
async function tcpServer(onConn: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    onConn(s);
  });
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return listenOn(server);
}

async function wispServer(nat: 'host' | 'all' | 'off' = 'host'): Promise<string> {
  const http = createHttpServer((_, res) => res.writeHead(404).end());
  const w = attachWispServer(http, { nat });
  cleanups.push(() => w.close());
  const port = await listenOn(http);
  return `ws://127.0.0.1:${port}/wisp/`;
}

function setup(url: string, maxUnreadBytes?: number) {
  const states: WispState[] = [];
  const wisp = new WispUplink(url, { WebSocket: WebSocket as never, onState: (s) => states.push(s), minBackoffMs: 50, maxBackoffMs: 200, maxUnreadBytes });
  cleanups.push(() => wisp.close());
  const room = new SwitchRoom('worker', { maxFrameBytes: 1514 });
  const gw = new GatewayCore(room, wisp, { nat: 'all', hostAddress: '127.0.0.1' });
  cleanups.push(() => gw.close());
  const guest = new FakeGuest(room, '52:54:00:12:34:56', '10.0.2.15');
  return { wisp, gw, guest, states };
}

describe('wisp packets', () => {
  it('round-trip, and malformed input is an error, never a throw', () => {
    for (const p of [
      { type: WISP_CONNECT, streamId: 7, streamType: 1, port: 8080, hostname: 'localhost' },
      { type: WISP_DATA, streamId: 0xffffffff, data: Uint8Array.of(1, 2, 3) },
      { type: WISP_CONTINUE, streamId: 0, bufferRemaining: 128 },
      { type: WISP_CLOSE, streamId: 3, reason: 0x44 },
    ] as const) {
      expect(decodeWisp(encodeWisp(p))).toEqual(p);
    }
    expect(decodeWisp(Uint8Array.of(2, 0, 0))).toBeInstanceOf(Error);
    expect(decodeWisp(Uint8Array.of(9, 0, 0, 0, 0))).toBeInstanceOf(Error);
    expect(decodeWisp(Uint8Array.of(3, 0, 0, 0, 0, 1))).toBeInstanceOf(Error);
    expect(decodeWisp(new Uint8Array(5 + 3 + 300).fill(1, 0, 1))).toBeInstanceOf(Error);
  });

  it("the server's NAT policy: host allows loopback names only, off nothing", () => {
    expect(wispTarget('host', 'localhost')).toBe('127.0.0.1');
    expect(wispTarget('host', 'example.org')).toBeNull();
    expect(wispTarget('all', 'example.org')).toBe('example.org');
    expect(wispTarget('all', '224.0.0.1')).toBeNull();
    expect(wispTarget('off', 'localhost')).toBeNull();
  });
});

/** Our own server (NAT host), and a third-party one: wisp-js, allowed loopback only. */
const SERVERS: Array<[string, () => Promise<string>]> = [
  ['our /wisp/', () => wispServer('host')],
  [
    'wisp-js',
    async () => {
      const w = await startWispJs();
      cleanups.push(() => w.close());
      return w.url;
    },
  ],
];

describe.each(SERVERS)('gateway with a wisp uplink, through %s on loopback', (_, start) => {
  it('TCP both ways with md5 through 10.0.2.2:PORT → the server host 127.0.0.1:PORT; a guest FIN loses none of its last bytes', async () => {
    const down = randomBytes(400_000);
    const up = randomBytes(300_000);
    const got: Buffer[] = [];
    let hostDone = false;
    const port = await tcpServer((s) => {
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => (hostDone = true));
      s.write(down);
    });
    const { guest, wisp } = setup(await start());
    await until(() => wisp.up, 5000, 'wisp up');
    const c = new GuestTcp(guest, 42001, port);
    await c.connect();
    await until(() => c.data.length === down.length, 10_000, 'download');
    expect(md5(new Uint8Array(c.data))).toBe(md5(down));
    await c.send(up);
    c.fin();
    await until(() => hostDone, 10_000, 'upload');
    expect(md5(Buffer.concat(got))).toBe(md5(up));
  }, 20_000);

  it("a reply that follows the guest's FIN still reaches the guest (wisp v1 has no half-close)", async () => {
    const port = await tcpServer((s) => {
      // A host that answers a while after the request, as a slow server does.
      s.once('data', (d: Buffer) => setTimeout(() => s.end(`echo ${d.toString()}`), 300));
    });
    const { guest, wisp } = setup(await start());
    await until(() => wisp.up, 5000, 'wisp up');
    const c = new GuestTcp(guest, 42009, port);
    await c.connect();
    await c.send(Buffer.from('ping'));
    c.fin();
    await until(() => c.gotFin || c.gotRst, 5000, 'the end of the reply');
    expect(c.gotRst).toBe(false);
    expect(Buffer.from(c.data).toString()).toBe('echo ping');
  });

  it('a name the server resolves (*.localhost) is reached; a public address the server may not reach resets', async () => {
    const port = await tcpServer((s) => s.end('hello from web.localhost\n'));
    const { guest, wisp } = setup(await start());
    await until(() => wisp.up, 5000, 'wisp up');
    guest.udp(GW_IP, 5353, 53, dnsQuery('web.localhost'));
    const answer = await guest.waitFor((d) => d.udp?.srcPort === 53);
    const c = new GuestTcp(guest, 42002, port, readU32(answer.dns!.answers[0].data as Uint8Array, 0));
    await c.connect();
    await until(() => c.gotFin, 5000, 'FIN');
    expect(Buffer.from(c.data).toString()).toBe('hello from web.localhost\n');
    const b = new GuestTcp(guest, 42004, 80, 0x5db8d70e); // 93.184.215.14: not loopback
    await b.connect().catch(() => undefined);
    await until(() => b.gotRst, 5000, 'reset (blocked)');
  });
});

describe('gateway with a wisp uplink, against the wisp server on loopback', () => {
  it('a guest that stops reading while the server floods: what we hold is bounded, the stream resets', async () => {
    const bound = 2 * 1024 * 1024;
    const port = await tcpServer((s) => s.end(Buffer.alloc(4 * bound, 0x5a)));
    const { guest, wisp } = setup(await wispServer('host'), bound);
    await until(() => wisp.up, 5000, 'wisp up');
    const c = new GuestTcp(guest, 42008, port);
    c.autoAck = false; // the guest takes the first window and then nothing
    await c.connect();
    await until(() => c.gotRst, 10_000, 'reset');
    expect(c.data.length).toBeLessThan(bound);
    expect(wisp.unread).toBe(0);
  });

  it("names go to the server to resolve: the guest's DNS answer stands in, the CONNECT names 'localhost'", async () => {
    const port = await tcpServer((s) => s.end('hello from localhost\n'));
    const { guest, wisp } = setup(await wispServer('host'));
    await until(() => wisp.up, 5000, 'wisp up');
    guest.udp(GW_IP, 5353, 53, dnsQuery('localhost'));
    const answer = await guest.waitFor((d) => d.udp?.srcPort === 53);
    const addr = answer.dns!.answers[0].data as Uint8Array;
    const c = new GuestTcp(guest, 42002, port, readU32(addr, 0));
    await c.connect();
    await until(() => c.gotFin, 5000, 'FIN');
    expect(Buffer.from(c.data).toString()).toBe('hello from localhost\n');
  });

  it('a refused port and a host the policy blocks both end as resets', async () => {
    const { guest, wisp } = setup(await wispServer('host'));
    await until(() => wisp.up, 5000, 'wisp up');
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r)); // the port is free again
    const a = new GuestTcp(guest, 42003, closedPort);
    await a.connect().catch(() => undefined);
    await until(() => a.gotRst, 5000, 'reset (refused)');
    const b = new GuestTcp(guest, 42004, 80, 0x5db8d70e); // 93.184.215.14: not loopback
    await b.connect().catch(() => undefined);
    await until(() => b.gotRst, 5000, 'reset (blocked)');
  });

  it('a URL that is no WebSocket server: down, with the URL and why, retrying', async () => {
    const http = createHttpServer((_, res) => res.writeHead(200).end('just a page'));
    const port = await listenOn(http);
    const { states, guest } = setup(`ws://127.0.0.1:${port}/nothing/`);
    await until(() => states.length >= 2, 5000, 'two attempts');
    expect(states[0]).toMatchObject({ up: false, problem: `ws://127.0.0.1:${port}/nothing/: unreachable (could not connect)` });
    expect(states[0].retryInMs).toBeGreaterThan(0);
    // A guest connection meanwhile is reset, not left hanging.
    const c = new GuestTcp(guest, 42005, 1234);
    await expect(c.connect()).rejects.toThrow('reset');
  });

  it('a server that sends garbage, or closes mid-stream: the streams reset, the state says why', async () => {
    const http = createHttpServer();
    const wss = new WebSocketServer({ server: http });
    cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    let mode: 'garbage' | 'close' = 'close';
    wss.on('connection', (ws) => {
      ws.send(encodeWisp({ type: WISP_CONTINUE, streamId: 0, bufferRemaining: 16 }));
      ws.on('message', (m) => {
        const p = decodeWisp(new Uint8Array(m as Buffer));
        if (p instanceof Error || p.type !== WISP_CONNECT) return;
        ws.send(encodeWisp({ type: WISP_DATA, streamId: p.streamId, data: Buffer.from('partial') }));
        setTimeout(() => (mode === 'close' ? ws.close(4001, 'bye') : ws.send(Uint8Array.of(0xee, 1, 2, 3, 4, 5))), 50);
      });
    });
    const port = await listenOn(http);
    const { guest, wisp, states, gw } = setup(`ws://127.0.0.1:${port}/`);
    for (const m of ['close', 'garbage'] as const) {
      mode = m;
      await until(() => wisp.up, 5000, 'wisp up');
      const c = new GuestTcp(guest, m === 'close' ? 42006 : 42007, 9999);
      await c.connect();
      await until(() => c.gotRst, 5000, `reset after ${m}`);
      expect(Buffer.from(c.data).toString()).toBe('partial');
    }
    const problems = states.filter((s) => !s.up).map((s) => s.problem);
    expect(problems[0]).toBe(`ws://127.0.0.1:${port}/: closed by the server (code 4001)`);
    expect(problems[1]).toMatch(/not a wisp server \(unknown wisp packet type 238\)/);
    expect(gw.stats().counts['internal-error']).toBeUndefined();
  });
});
