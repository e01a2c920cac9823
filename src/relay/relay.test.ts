import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { WebSocket } from 'ws';
import {
  BROADCAST_MAC,
  buildDhcp,
  buildEthernet,
  buildUdp,
  decodeFrame,
  DHCPDISCOVER,
  DhcpOption,
  IPPROTO_UDP,
  ipToString,
  parseIp,
  parseMac,
} from '../wire/index.ts';
import { type FrameSocket, type Relay, type RelayOptions, attachRelay, clientSink, ownFrame, roomFromPath } from './relay.ts';
import { GW_IP, GW_MAC, dhcpClientFrame, ipv4Frame } from './testing.ts';
import { until } from './testing-tcp.ts';
import { makeSuperSegment } from '../wire/super-segment.ts';
import { tcpFrame, testBytes } from '../wire/testing/tcp-frames.ts';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startRelay(opts: Partial<RelayOptions> = {}): Promise<{ relay: Relay; base: string; port: number; server: http.Server }> {
  const server = http.createServer((_req, res) => res.end('app\n'));
  const relay = attachRelay(server, opts);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  cleanups.push(() => relay.close());
  return { relay, base: `ws://127.0.0.1:${port}`, port, server };
}

interface Client {
  ws: WebSocket;
  frames: Uint8Array[];
  next(timeoutMs?: number): Promise<Uint8Array>;
  closed: Promise<number>;
}

function connect(url: string, options: WebSocket.ClientOptions = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const frames: Uint8Array[] = [];
    const waiters: Array<(f: Uint8Array) => void> = [];
    ws.binaryType = 'nodebuffer';
    ws.on('message', (d: Buffer, isBinary) => {
      if (!isBinary) return;
      const f = new Uint8Array(d);
      const w = waiters.shift();
      if (w) w(f);
      else frames.push(f);
    });
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('open', () => {
      cleanups.push(() => ws.terminate());
      resolve({
        ws,
        frames,
        closed,
        next(timeoutMs = 2000) {
          const f = frames.shift();
          if (f) return Promise.resolve(f);
          return new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error('no frame')), timeoutMs);
            waiters.push((x) => {
              clearTimeout(t);
              res(x);
            });
          });
        },
      });
    });
  });
}

const mac = (n: number) => parseMac(`52:54:00:00:00:${n.toString(16).padStart(2, '0')}`);
const frame = (dst: Uint8Array, src: Uint8Array, len = 64, fill = 0) =>
  buildEthernet({ dst, src, etherType: 0x88b5, payload: new Uint8Array(len - 14).fill(fill) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A WebSocket upgrade request, for clients written by hand (ones that never read, or never close). */
const upgradeRequest = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** Sends a marker broadcast from `c` and waits until it is back at `probe`: everything before it was handled. */
async function flush(c: Client, probe: Client, src: Uint8Array): Promise<void> {
  c.ws.send(frame(BROADCAST_MAC, src, 60, 0xee));
  for (;;) {
    const f = await probe.next();
    if (f[20] === 0xee && f.length === 60) return;
    probe.frames.push(f);
  }
}

describe('relay over WebSocket', () => {
  it('parses room paths', () => {
    expect(roomFromPath('/relay', '/relay', 'lab')).toBe('lab');
    expect(roomFromPath('/relay/', '/relay', 'lab')).toBe('lab');
    expect(roomFromPath('/relay/red?token=x', '/relay', 'lab')).toBe('red');
    expect(roomFromPath('/relay/a%2Fb', '/relay', 'lab')).toBeNull();
    expect(roomFromPath('/relay/%zz', '/relay', 'lab')).toBeNull();
    expect(roomFromPath('/relayx', '/relay', 'lab')).toBeUndefined();
    expect(roomFromPath('/', '/relay', 'lab')).toBeUndefined();
  });

  it('switches frames between clients of a room, never across rooms; ignores text', async () => {
    const { base, relay } = await startRelay();
    const a1 = await connect(`${base}/relay`);
    const a2 = await connect(`${base}/relay/lab`);
    const b1 = await connect(`${base}/relay/other`);
    a1.ws.send(frame(BROADCAST_MAC, mac(1), 64, 1));
    expect((await a2.next())[20]).toBe(1);
    a2.ws.send(frame(mac(1), mac(2), 64, 2)); // learned unicast
    expect((await a1.next())[20]).toBe(2);
    a1.ws.send('hello'); // text: ignored
    b1.ws.send(frame(BROADCAST_MAC, mac(1), 64, 3)); // same MAC, other room: fine
    await flush(a1, a2, mac(1));
    await sleep(20);
    expect(b1.frames).toEqual([]);
    expect(a1.frames).toEqual([]);
    const s = relay.stats();
    const lab = s.rooms.find((r) => r.name === 'lab')!;
    expect(lab.clients.length).toBe(2);
    expect(lab.ports.filter((p) => p.label !== 'gateway').map((p) => p.mac).sort()).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:02']);
    expect(s.ignored.text).toBe(1);
    expect(s.rooms.find((r) => r.name === 'other')!.drops).toEqual({});
  });

  it('takes a super-segment hello on its client port; counts malformed ones; a new connection starts without', async () => {
    const { base, relay } = await startRelay();
    const a = await connect(`${base}/relay/hello`);
    const b = await connect(`${base}/relay/hello`);
    a.ws.send('virtio-lab rx-tcp4 65549');
    for (const bad of ['virtio-lab rx-tcp4 1514', 'virtio-lab rx-tcp4 65550', 'virtio-lab rx-tcp4 ', `virtio-lab rx-tcp4 ${'1'.repeat(5000)}`]) b.ws.send(bad);
    await flush(a, b, mac(1)); // the text went before: handled by now
    const clients = () => relay.stats().rooms.find((r) => r.name === 'hello')!.clients;
    expect(clients().map((c) => c.superSegmentBytes).sort((x, y) => x - y)).toEqual([0, 65549]);
    expect(relay.stats().ignored).toEqual({ hello: 1, text: 4 });
    a.ws.send('virtio-lab rx-tcp4 0');
    await flush(a, b, mac(1));
    expect(clients().map((c) => c.superSegmentBytes)).toEqual([0, 0]);
    a.ws.send('virtio-lab rx-tcp4 9000');
    a.ws.terminate();
    await a.closed;
    await connect(`${base}/relay/hello`);
    await until(() => clients().length === 2, 2000, 'reconnect');
    expect(clients().map((c) => c.superSegmentBytes)).toEqual([0, 0]);
  });

  it("answers a tx hello; then takes that client's super-segments, cut for a stock client; others get no text", async () => {
    const { base, relay } = await startRelay();
    const a = await connect(`${base}/relay/tx`);
    const stock = await connect(`${base}/relay/tx`);
    const texts: string[][] = [[], []];
    a.ws.on('message', (d: Buffer, isBinary) => isBinary || texts[0].push(d.toString()));
    stock.ws.on('message', (d: Buffer, isBinary) => isBinary || texts[1].push(d.toString()));
    stock.ws.send(frame(BROADCAST_MAC, mac(2), 60)); // learned
    await a.next();
    const seg = tcpFrame(testBytes(20000), { dst: mac(2), src: mac(1) });
    if (typeof makeSuperSegment(seg, 1448, 1500) === 'string') throw new Error('not a super-segment');
    a.ws.send(seg); // before the hello: too big (the connection stays)
    a.ws.send('virtio-lab tx-tcp4 65549');
    await until(() => texts[0].length === 1, 2000, 'the answer');
    expect(texts[0]).toEqual(['virtio-lab tx-tcp4 65549']);
    a.ws.send(seg);
    const cut: Uint8Array[] = [];
    for (let i = 0; i < Math.ceil(20000 / 1448); i++) cut.push(await stock.next());
    expect(cut.every((f) => f.length <= 1514)).toBe(true);
    expect(Uint8Array.from(cut.flatMap((f) => [...f.subarray(54)]))).toEqual(testBytes(20000));
    const room = relay.stats().rooms.find((r) => r.name === 'tx')!;
    expect(room.clients.map((c) => c.superSegmentsIn).sort((x, y) => x - y)).toEqual([0, 65549]);
    expect(room.drops).toEqual({ 'too-big': 1 });
    expect(texts[1]).toEqual([]);
  });

  it("drops frames from another's MAC, oversized and runt frames, counts them, and keeps the client", async () => {
    const { base, relay } = await startRelay({ maxFrameBytes: 1514 });
    const a = await connect(`${base}/relay/x`);
    const b = await connect(`${base}/relay/x`);
    b.ws.send(frame(BROADCAST_MAC, mac(2)));
    await a.next();
    a.ws.send(frame(BROADCAST_MAC, mac(1)));
    await b.next();
    a.ws.send(frame(BROADCAST_MAC, mac(2))); // b's MAC
    a.ws.send(frame(BROADCAST_MAC, mac(1), 1515)); // too big
    a.ws.send(new Uint8Array(5)); // runt
    a.ws.send(frame(BROADCAST_MAC, mac(1), 1514)); // the largest allowed
    expect((await b.next()).length).toBe(1514);
    const port = relay.stats().rooms[0].ports.find((p) => p.mac === '52:54:00:00:00:01')!;
    expect(port.drops).toEqual({ 'mac-in-use': 1, 'too-big': 1, runt: 1 });
    expect(port.framesIn).toBe(5);
    expect(b.frames).toEqual([]);
  });

  it('closes a client whose message exceeds maxMessageBytes', async () => {
    const { base, relay } = await startRelay({ maxMessageBytes: 4096 });
    const a = await connect(`${base}/relay/x`);
    a.ws.send(new Uint8Array(5000));
    expect(await a.closed).toBe(1009);
    await sleep(20);
    expect(relay.stats().rooms[0].clients).toEqual([]);
  });

  it('limits clients per room (503) and rooms are counted separately', async () => {
    const { base, relay } = await startRelay({ maxClientsPerRoom: 2 });
    await connect(`${base}/relay/r`);
    const second = await connect(`${base}/relay/r`);
    await expect(connect(`${base}/relay/r`)).rejects.toThrow('HTTP 503');
    await connect(`${base}/relay/s`);
    second.ws.close();
    await second.closed;
    await sleep(20);
    await connect(`${base}/relay/r`); // a place is free again
    expect(relay.stats().refused['room-full']).toBe(1);
  });

  it('checks Origin: same host or none by default, else an allowlist', async () => {
    const { base, port, relay } = await startRelay();
    await connect(`${base}/relay`);
    await connect(`${base}/relay`, { origin: `http://127.0.0.1:${port}` });
    await expect(connect(`${base}/relay`, { origin: 'http://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(connect(`${base}/relay`, { origin: `http://127.0.0.1:${port + 1}` })).rejects.toThrow('HTTP 403');
    expect(relay.stats().refused.origin).toBe(2);

    const listed = await startRelay({ allowedOrigins: ['https://lab.example'], allowNoOrigin: false });
    await connect(`${listed.base}/relay`, { origin: 'https://lab.example' });
    await expect(connect(`${listed.base}/relay`)).rejects.toThrow('HTTP 403');
    await expect(connect(`${listed.base}/relay`, { origin: `http://127.0.0.1:${listed.port}` })).rejects.toThrow('HTTP 403');
  });

  it('requires the token when one is set; refuses bad rooms and foreign paths', async () => {
    const { base, relay } = await startRelay({ token: 's3cret' });
    await expect(connect(`${base}/relay/r`)).rejects.toThrow('HTTP 401');
    await expect(connect(`${base}/relay/r?token=wrong`)).rejects.toThrow('HTTP 401');
    await connect(`${base}/relay/r?token=s3cret`);
    await expect(connect(`${base}/relay/bad%20room?token=s3cret`)).rejects.toThrow('HTTP 400');
    await expect(connect(`${base}/elsewhere`)).rejects.toThrow('HTTP 404');
    expect(relay.stats().refused).toEqual({ token: 2, 'bad-room': 1 });
  });

  it('closes idle clients', async () => {
    const { base, relay } = await startRelay({ idleTimeoutMs: 150 });
    const t0 = Date.now(); // before a's idle timer starts (b's connect may take a while)
    const a = await connect(`${base}/relay`);
    const b = await connect(`${base}/relay`);
    const keep = setInterval(() => b.ws.send(frame(BROADCAST_MAC, mac(2))), 40);
    cleanups.push(() => clearInterval(keep));
    expect(await a.closed).toBe(4000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(b.ws.readyState).toBe(WebSocket.OPEN);
    expect(relay.stats().closed.idle).toBe(1);
  });

  it.each([
    ['rate-limits a client when configured', 'rateLimit', 'rate-limited'],
    ['limits what a client gets flooded (storm control)', 'floodRateLimit', 'flood-limited'],
  ] as const)('%s', async (_name, option, reason) => {
    const { base, relay } = await startRelay({ [option]: { framesPerSecond: 5, bytesPerSecond: 1e6 } });
    const a = await connect(`${base}/relay`);
    const b = await connect(`${base}/relay`);
    for (let i = 0; i < 20; i++) a.ws.send(frame(BROADCAST_MAC, mac(1)));
    await sleep(100);
    const p = relay.stats().rooms[0].ports.find((x) => x.mac === '52:54:00:00:00:01')!;
    expect(p.drops[reason]).toBeGreaterThanOrEqual(14);
    expect(b.frames.length).toBeLessThanOrEqual(6);
  });

  it('serves DHCP from the room gateway over the wire (v86 network_relay_url compatible framing)', async () => {
    const { base, relay } = await startRelay();
    const a = await connect(`${base}/relay`);
    const me = mac(0x42);
    const msg = buildDhcp({ op: 1, xid: 99, chaddr: me, options: [[DhcpOption.MESSAGE_TYPE, new Uint8Array([DHCPDISCOVER])]] });
    a.ws.send(dhcpClientFrame(me, msg));
    const offer = decodeFrame(await a.next())!;
    expect(offer.dhcp!.messageType).toBe(2);
    expect(ipToString(offer.dhcp!.yiaddr)).toBe('10.0.2.15');
    const s = relay.stats().rooms[0];
    expect(s.gateway!.leases).toEqual([{ ip: '10.0.2.15', mac: '52:54:00:00:00:42' }]);
    const client = s.ports.find((p) => p.mac === '52:54:00:00:00:42')!;
    expect([client.framesIn, client.framesOut]).toEqual([1, 1]);
  });

  it('close() disconnects clients and refuses new ones', async () => {
    const { base, relay } = await startRelay();
    const a = await connect(`${base}/relay`);
    await relay.close();
    expect(await a.closed).toBe(1001);
    await expect(connect(`${base}/relay`)).rejects.toThrow();
  });

  it('closes the socket of a refused client that keeps its side open', async () => {
    const { port, server } = await startRelay({ token: 't' });
    const socks = Array.from({ length: 5 }, () => {
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      cleanups.push(() => void s.destroy());
      s.on('data', () => undefined);
      s.write(upgradeRequest('/relay/x?token=no'));
      return new Promise<void>((r) => s.once('end', () => r()));
    });
    await Promise.all(socks); // each got its 401 and the server's FIN; none of them closes
    await sleep(50);
    expect(await new Promise<number>((r) => server.getConnections((_e, n) => r(n)))).toBe(0);
  });

  it('copies each frame out of the socket read it arrived in', () => {
    const read = new Uint8Array(65536);
    read.set([1, 2, 3], 100);
    const f = ownFrame(Buffer.from(read.buffer, 100, 60));
    expect([f.byteLength, f.buffer.byteLength, f[0], f[2]]).toEqual([60, 60, 1, 3]);
    const parts = ownFrame([Buffer.from(read.buffer, 100, 2), Buffer.from(read.buffer, 102, 40)]);
    expect([parts.buffer.byteLength, parts[2]]).toEqual([42, 3]);
    const ab = ownFrame(read.buffer.slice(100, 164));
    expect([ab.buffer.byteLength, ab[1]]).toEqual([64, 2]);
  });

  it('caps what waits toward a client that does not read, in bytes and in frames', () => {
    const pending: Array<() => void> = [];
    const sock = { readyState: 1, bufferedAmount: 0, send: (_d: Uint8Array, _o: unknown, cb: () => void) => void pending.push(cb) } satisfies FrameSocket;
    const sink = clientSink(sock, 1000, 3);
    const f = new Uint8Array(60);
    expect([sink.deliver(f), sink.deliver(f), sink.deliver(f), sink.deliver(f)]).toEqual([true, true, true, false]);
    pending.shift()!(); // one written to the kernel: room for one more
    expect([sink.deliver(f), sink.deliver(f)]).toEqual([true, false]);
    expect(sink.queued()).toBe(3);
    pending.splice(0).forEach((cb) => cb());
    sock.bufferedAmount = 1001;
    expect(sink.deliver(f)).toBe(false);
    sock.bufferedAmount = 0;
    sock.readyState = 2; // closing
    expect(sink.deliver(f)).toBe(false);
  });

  it('drops frames toward a slow reader over the wire, counted, and stays within its caps', async () => {
    const maxBufferedBytes = 256 * 1024;
    const { port, base, relay } = await startRelay({ maxBufferedBytes, maxBufferedFrames: 512 });
    // A client that never reads: a handshake by hand, one frame to be learned, then paused.
    const slow = net.connect(port, '127.0.0.1');
    cleanups.push(() => void slow.destroy());
    slow.write(upgradeRequest('/relay/s'));
    await new Promise((r) => slow.once('data', r));
    const hello = frame(BROADCAST_MAC, mac(5), 60);
    slow.write(Buffer.concat([Buffer.from([0x82, 0x80 | hello.length, 0, 0, 0, 0]), hello]));
    slow.pause();
    const a = await connect(`${base}/relay/s`);
    const big = frame(mac(5), mac(1), 1514);
    // Far beyond what the kernel's socket buffers hold (a few MiB on loopback).
    for (let i = 0; i < 12_000; i++) {
      a.ws.send(big);
      if (i % 500 === 0) while (a.ws.bufferedAmount > 1 << 20) await sleep(2);
    }
    for (let i = 0; i < 200 && relay.stats().rooms[0].ports.find((p) => p.mac === '52:54:00:00:00:05')?.drops.congested === undefined; i++) await sleep(10);
    const room = relay.stats().rooms[0];
    const slowPort = room.ports.find((p) => p.mac === '52:54:00:00:00:05')!;
    expect(slowPort.drops.congested).toBeGreaterThan(0);
    const c = room.clients.find((x) => x.portId === slowPort.id)!;
    expect(c.bufferedBytes).toBeLessThanOrEqual(maxBufferedBytes + 1600);
    expect(c.bufferedFrames).toBeLessThanOrEqual(512);
  }, 20_000);

  it("closes a departed client's NAT state (here a UDP flow) after the gateway's grace period", async () => {
    const { base, relay } = await startRelay({ gateway: { leftGraceMs: 30 } });
    const a = await connect(`${base}/relay/n`);
    const me = mac(0x21);
    const src = parseIp('10.0.2.15');
    const udp = buildUdp({ src, dst: GW_IP, srcPort: 5000, dstPort: 9, payload: new Uint8Array(4) });
    a.ws.send(ipv4Frame(me, GW_MAC, { src, dst: GW_IP, protocol: IPPROTO_UDP, payload: udp }));
    const flows = () => relay.stats().rooms.find((r) => r.name === 'n')!.gateway!.udpFlows;
    for (let i = 0; i < 100 && flows() === 0; i++) await sleep(5);
    expect(flows()).toBe(1);
    a.ws.close();
    await a.closed;
    for (let i = 0; i < 100 && flows() === 1; i++) await sleep(5);
    expect(flows()).toBe(0);
    expect(relay.stats().rooms.find((r) => r.name === 'n')!.gateway!.counts['udp-closed-guest-gone']).toBe(1);
  });
});
