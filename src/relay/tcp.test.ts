import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { parseMac } from '../wire/ethernet.ts';
import { parseIp } from '../wire/ipv4.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from '../wire/tcp.ts';
import { Gateway, type GatewayOptions } from './gateway.ts';
import { SwitchRoom } from './switch.ts';
import { FakeGuest, GW_IP } from './testing.ts';
import { GuestTcp, until } from './testing-tcp.ts';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});


async function listen(onConn: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  return (server.address() as net.AddressInfo).port;
}

function setup(opts: Partial<GatewayOptions> = {}) {
  const room = new SwitchRoom('lab', { maxFrameBytes: 1514 });
  const gw = new Gateway(room, opts);
  cleanups.push(() => gw.close());
  const guest = new FakeGuest(room, '52:54:00:12:34:56', '10.0.2.15');
  return { room, gw, guest };
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

describe('TCP NAT', () => {
  it('handshake (MSS), data both ways, FIN both ways', async () => {
    let fromGuest = '';
    let serverSawEnd = false;
    const port = await listen((s) => {
      s.write('banner\n');
      s.on('data', (d) => (fromGuest += d.toString()));
      s.on('end', () => {
        serverSawEnd = true;
        s.end('bye\n');
      });
    });
    const { guest, gw } = setup();
    const c = new GuestTcp(guest, 40001, port);
    const synAck = await c.connect(1200);
    expect(synAck.flags).toBe(TCP_SYN | TCP_ACK);
    expect(synAck.ack).toBe(1001);
    expect(synAck.options.mss).toBe(1200); // capped by the guest's MSS
    await until(() => Buffer.from(c.data).toString() === 'banner\n', 3000, 'banner');
    await c.send(new TextEncoder().encode('hello host'));
    await until(() => fromGuest === 'hello host', 3000, 'guest data at the host');
    await until(() => c.peerAck === c.sndNxt, 3000, 'ACK of guest data');
    c.fin();
    await until(() => serverSawEnd && c.gotFin, 3000, 'FINs');
    expect(Buffer.from(c.data).toString()).toBe('banner\nbye\n');
    expect(c.peerAck).toBe(c.sndNxt); // our FIN acknowledged
    await until(() => gw.stats().tcp.every((t) => t.state === 'time-wait'), 3000, 'time-wait');
    expect(gw.stats().tcp[0]).toMatchObject({ guest: '10.0.2.15:40001', remote: `10.0.2.2:${port}`, target: `127.0.0.1:${port}`, bytesToGuest: 11, bytesFromGuest: 10 });
    expect(c.gotRst).toBe(false);
  });

  it('moves 1 MiB each way intact, within the advertised windows', async () => {
    const down = new Uint8Array(1 << 20).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
    const up = new Uint8Array(1 << 20).map((_, i) => (i * 13 + (i >> 11)) & 0xff);
    const got: Buffer[] = [];
    let hostDone = false;
    const port = await listen((s) => {
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => (hostDone = true));
      s.end(down);
    });
    const { guest, gw } = setup();
    const c = new GuestTcp(guest, 40002, port);
    c.window = 16384;
    // Check every data segment against the window the guest advertised.
    const prev = c.lose;
    c.lose = (s) => {
      if (s.payload.length) {
        const outstanding = ((s.seq + s.payload.length - c.rcvNxt) >>> 0) | 0;
        if (outstanding > c.window) throw new Error(`relay overran the window by ${outstanding - c.window}`);
      }
      return prev(s);
    };
    await c.connect(1460);
    await c.send(up);
    c.fin();
    await until(() => c.gotFin && hostDone, 10_000, 'transfer');
    expect(md5(new Uint8Array(c.data))).toBe(md5(down));
    expect(md5(Buffer.concat(got))).toBe(md5(up));
    expect(c.maxInFlightSeen).toBeLessThanOrEqual(65535);
    expect(gw.stats().counts['internal-error']).toBeUndefined();
  }, 20_000);

  it('window scaling: offered back to a guest that offers it; more than 64 KiB in flight toward it', async () => {
    const down = new Uint8Array(1 << 20).map((_, i) => (i * 5 + (i >> 10)) & 0xff);
    const port = await listen((s) => s.end(down));
    const { guest } = setup();
    const c = new GuestTcp(guest, 40012, port);
    c.window = 1024; // × 2^8: 256 KiB
    c.autoAck = false;
    let unacked = 0;
    c.lose = (s) => {
      if (s.payload.length) unacked = Math.max(unacked, ((s.seq + s.payload.length - c.lastAckSent) >>> 0) | 0);
      return false;
    };
    const synAck = await c.connect(1460, 8);
    expect(synAck.options.windowScale).toBe(3); // 256 KiB >> 3 is the first to fit the 16-bit field
    expect(synAck.window).toBeLessThanOrEqual(65535);
    // ACK like a guest behind large receive: once per 128 KiB, or when the data stalls.
    while (!c.gotFin) {
      const was = c.data.length;
      await until(() => c.gotFin || c.data.length - was >= 128 << 10, 100, 'data').catch(() => undefined);
      c.ack();
    }
    expect(md5(new Uint8Array(c.data))).toBe(md5(down));
    expect(unacked).toBeGreaterThan(65535);
    expect(unacked).toBeLessThanOrEqual(1024 << 8);
  }, 20_000);

  describe('super-segments', () => {
    /** Every data segment toward `c`: its payload length, urgent pointer, and how far past the guest's last ACK it reached. */
    function record(c: GuestTcp, windowBytes: () => number) {
      const segs: Array<{ len: number; urgent: number; beyond: number }> = [];
      c.lose = (s) => {
        if (!s.payload.length) return false;
        const reach = ((s.seq + s.payload.length - c.lastAckSent) >>> 0) | 0;
        segs.push({ len: s.payload.length, urgent: s.urgent, beyond: reach - windowBytes() });
        return false;
      };
      return segs;
    }

    it('toward a port that offered them: up to the offer, the MSS in the urgent pointer, never beyond the window', async () => {
      const down = new Uint8Array(1 << 20).map((_, i) => (i * 11 + (i >> 8)) & 0xff);
      const port = await listen((s) => s.end(down));
      const { guest, gw } = setup();
      expect(guest.port.setSuperSegments(16_000)).toBe(true);
      const c = new GuestTcp(guest, 40020, port);
      c.window = 1024; // × 2^6: 64 KiB
      const segs = record(c, () => 1024 << 6);
      await c.connect(1400, 6);
      await until(() => c.gotFin, 10_000, 'transfer');
      expect(md5(new Uint8Array(c.data))).toBe(md5(down));
      const maxData = 16_000 - 14 - 20 - 20;
      expect(Math.max(...segs.map((s) => s.len))).toBeGreaterThan(1400);
      for (const s of segs) {
        expect(s.len).toBeLessThanOrEqual(maxData);
        expect(s.urgent).toBe(s.len > 1400 ? 1400 : 0);
        expect(s.beyond).toBeLessThanOrEqual(0);
      }
      expect(gw.stats().counts['internal-error']).toBeUndefined();
    }, 20_000);

    it('within a small window; a plain port in the same room gets MSS segments', async () => {
      const down = new Uint8Array(300_000).map((_, i) => (i * 3) & 0xff);
      const port = await listen((s) => s.end(down));
      const { room, guest } = setup();
      guest.port.setSuperSegments(65549);
      const plain = new FakeGuest(room, '52:54:00:12:34:57', '10.0.2.16');
      const big = new GuestTcp(guest, 40021, port);
      const small = new GuestTcp(plain, 40022, port);
      big.window = small.window = 10_000; // no scaling: the window is what it says
      const bigSegs = record(big, () => 10_000);
      const smallSegs = record(small, () => 10_000);
      await Promise.all([big.connect(1460), small.connect(1460)]);
      await until(() => big.gotFin && small.gotFin, 10_000, 'transfers');
      for (const c of [big, small]) expect(md5(new Uint8Array(c.data))).toBe(md5(down));
      expect(Math.max(...bigSegs.map((s) => s.len))).toBeGreaterThan(1460);
      for (const s of bigSegs) expect(s.beyond).toBeLessThanOrEqual(0);
      expect(Math.max(...smallSegs.map((s) => s.len))).toBeLessThanOrEqual(1460);
      expect(smallSegs.every((s) => s.urgent === 0)).toBe(true);
      expect(room.stats().drops['too-big']).toBeUndefined();
    }, 20_000);
  });

  it('without the guest offering it, no window scaling and at most 64 KiB in flight', async () => {
    const port = await listen((s) => s.end(new Uint8Array(300_000)));
    const { guest } = setup();
    const c = new GuestTcp(guest, 40013, port);
    c.autoAck = false;
    let unacked = 0;
    c.lose = (s) => {
      if (s.payload.length) unacked = Math.max(unacked, ((s.seq + s.payload.length - c.lastAckSent) >>> 0) | 0);
      return false;
    };
    const synAck = await c.connect(1460);
    expect(synAck.options.windowScale).toBeUndefined();
    while (!c.gotFin) {
      const was = c.data.length;
      await until(() => c.gotFin || c.data.length - was >= 100_000, 100, 'data').catch(() => undefined);
      c.ack();
    }
    expect(c.data.length).toBe(300_000);
    expect(unacked).toBeLessThanOrEqual(65535);
  }, 20_000);

  it('retransmits a segment toward the guest that was lost', async () => {
    const payload = new Uint8Array(5000).map((_, i) => i & 0xff);
    const port = await listen((s) => s.write(payload));
    const { guest, gw } = setup({ tcp: { rtoInitialMs: 100, rtoMinMs: 50 } });
    const c = new GuestTcp(guest, 40003, port);
    let lost = 0;
    c.lose = (s) => {
      if (s.payload.length && lost === 0) {
        lost++;
        return true; // the first data segment never arrives
      }
      return false;
    };
    const t0 = Date.now();
    await c.connect(1400);
    await until(() => c.data.length === payload.length, 5000, 'all data after retransmission');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40);
    expect(c.data).toEqual([...payload]);
    expect(gw.stats().counts['tcp-retransmit']).toBeGreaterThanOrEqual(1);
    expect(gw.stats().tcp[0].retransmits).toBeGreaterThanOrEqual(1);
  });

  it('retransmits a lost SYN-ACK and a lost FIN', async () => {
    const port = await listen((s) => s.end('x'));
    const { guest, gw } = setup({ tcp: { rtoInitialMs: 60, rtoMinMs: 30 } });
    const c = new GuestTcp(guest, 40004, port);
    let synAcks = 0;
    let fins = 0;
    c.lose = (s) => (s.flags & TCP_SYN ? ++synAcks === 1 : s.flags & TCP_FIN ? ++fins === 1 : false);
    await c.connect();
    await until(() => c.gotFin, 3000, 'FIN');
    expect([synAcks, fins]).toEqual([2, 2]);
    expect(Buffer.from(c.data).toString()).toBe('x');
    expect(gw.stats().counts['tcp-retransmit']).toBe(2);
  });

  it('resets the guest when the host refuses, when NAT refuses, and for unknown connections', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { guest, gw } = setup();
    const refused = new GuestTcp(guest, 40005, deadPort);
    await expect(refused.connect()).rejects.toThrow('reset');
    expect(refused.segments[0].flags).toBe(TCP_RST | TCP_ACK);
    expect(refused.segments[0].ack).toBe(1001);
    expect(gw.stats().counts['tcp-connect-failed']).toBe(1);

    const outside = new GuestTcp(guest, 40006, 80, parseIp('192.0.2.1'));
    await expect(outside.connect()).rejects.toThrow('reset');
    expect(gw.stats().counts['tcp-nat-denied']).toBe(1);

    const stray = new GuestTcp(guest, 40007, 80);
    stray.seg(TCP_ACK, new Uint8Array(3), 5000);
    expect(stray.segments.map((s) => [s.flags, s.seq])).toEqual([[TCP_RST, 0]]);
    expect(gw.stats().tcp).toEqual([]);
  });

  it('closes the host socket when the guest resets, and drops out-of-order data with a duplicate ACK', async () => {
    let hostClosed = false;
    let fromGuest = '';
    const port = await listen((s) => {
      s.on('data', (d) => (fromGuest += d.toString()));
      s.on('close', () => (hostClosed = true));
      s.on('error', () => {});
    });
    const { guest, gw } = setup();
    const c = new GuestTcp(guest, 40008, port);
    await c.connect();
    const before = c.segments.length;
    c.seg(TCP_ACK | TCP_PSH, new TextEncoder().encode('later'), c.sndNxt + 10); // a gap
    await until(() => c.segments.length > before, 2000, 'dup ack');
    expect(c.segments.at(-1)!.ack).toBe(c.sndNxt);
    await c.send(new TextEncoder().encode('now'));
    await until(() => fromGuest === 'now', 2000, 'in-order data');
    c.seg(TCP_RST);
    await until(() => hostClosed, 2000, 'host close');
    expect(gw.stats().tcp).toEqual([]);
    expect(gw.stats().counts['tcp-out-of-order']).toBe(1);
  });

  it('resets the guest when the host resets, and probes a zero window', async () => {
    let hostSock: net.Socket | null = null;
    const port = await listen((s) => {
      hostSock = s;
      s.write('abc');
    });
    const { guest } = setup({ tcp: { rtoInitialMs: 50, rtoMinMs: 30 } });
    const c = new GuestTcp(guest, 40009, port);
    c.window = 0;
    c.autoAck = false;
    const t0 = Date.now();
    await c.connect();
    // Window 0: the relay must not send data, only probes (one byte) on its timer.
    await until(() => c.segments.some((s) => s.payload.length === 1), 3000, 'window probe');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    expect(c.segments.every((s) => s.payload.length <= 1)).toBe(true);
    c.window = 65535;
    c.ack();
    await until(() => Buffer.from(c.data).toString() === 'abc', 3000, 'data after the window opens');
    hostSock!.resetAndDestroy();
    await until(() => c.gotRst, 3000, 'RST');
  });

  it("resets a departed guest's connections after the grace period, and floods none of its traffic meanwhile", async () => {
    let host: net.Socket | null = null;
    let hostClosed = false;
    const port = await listen((s) => {
      host = s;
      s.on('error', () => undefined);
      s.on('close', () => (hostClosed = true));
    });
    const { room, gw, guest } = setup({ leftGraceMs: 100 });
    const other = new FakeGuest(room, '52:54:00:00:00:99', '10.0.2.16');
    other.send(other.ipFrame(parseIp('10.0.2.255'), 17, new Uint8Array(8), parseMac('ff:ff:ff:ff:ff:ff'))); // learned
    const c = new GuestTcp(guest, 40100, port);
    await c.connect();
    guest.udp(GW_IP, 40100, port, new Uint8Array(4));
    await until(() => host !== null && gw.stats().udpFlows === 1, 3000, 'host connection and UDP flow');
    guest.port.detach();
    gw.clientLeft(guest.mac);
    host!.write('for the departed guest\n');
    await new Promise((r) => setTimeout(r, 50));
    expect(other.take().filter((d) => d.tcp)).toEqual([]); // not flooded to the room
    expect(gw.stats().counts['drop-guest-gone']).toBeGreaterThan(0);
    expect(gw.stats().tcp.length).toBe(1); // still within the grace period
    await until(() => hostClosed, 3000, 'host socket closed');
    expect(gw.stats().tcp).toEqual([]);
    expect(gw.stats().udpFlows).toBe(0);
    expect(gw.stats().counts).toMatchObject({ 'tcp-reset-guest-gone': 1, 'udp-closed-guest-gone': 1 });
  });

  it('keeps the connections of a guest whose MAC is back within the grace period', async () => {
    const port = await listen((s) => s.on('error', () => undefined));
    const { room, gw, guest } = setup({ leftGraceMs: 50 });
    const c = new GuestTcp(guest, 40200, port);
    await c.connect();
    guest.port.detach();
    gw.clientLeft(guest.mac);
    const back = new FakeGuest(room, '52:54:00:12:34:56', '10.0.2.15'); // the link reconnected
    back.send(back.ipFrame(parseIp('10.0.2.255'), 17, new Uint8Array(8), parseMac('ff:ff:ff:ff:ff:ff')));
    await new Promise((r) => setTimeout(r, 150));
    expect(gw.stats().tcp.length).toBe(1);
  });
});
