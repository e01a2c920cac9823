/**
 * `npm run abuse:relay`: the relay under abuse on 127.0.0.1 (nothing else is ever contacted),
 * while a real guest keeps pinging the gateway and moving data through the NAT. Bounded in
 * count and time (~1.5 min, hard stop at 170 s); prints figures per phase, never asserts.
 *
 * Three processes, so each figure means what it says: the relay alone in a child (its
 * memoryUsage() sampled every 200 ms over IPC), the attacker in another child (a load
 * generator in this process would starve the emulator and blame the relay for it), and this
 * one: orchestrator, the guest (Node VM runner), and the host ends of the guest's transfers.
 *
 * Phases: garbage and oversized frames; 200 connections/s for 10 s; a client spoofing the
 * guest's MAC (and its IP, and the gateway's IP by ARP); a broadcast flood (and the same flood
 * in another room, as a control for host CPU); slow clients that never read (full-size frames,
 * then 60-byte ones); a room of 50 clients; clients that vanish with NAT connections open.
 * Then a fresh client must still get a DHCP lease and an ARP reply, and the relay must hold
 * no client, port, MAC or NAT state of the attackers. `-- --only slow,spoof` runs some phases.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildDhcp,
  buildEthernet,
  buildIcmp,
  buildTcp,
  buildUdp,
  type DecodedFrame,
  decodeFrame,
  DHCPACK,
  DHCPDISCOVER,
  DHCPOFFER,
  DhcpOption,
  DHCPREQUEST,
  ETHERTYPE_ARP,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ipToString,
  macToString,
  parseIp,
  parseMac,
  TCP_ACK,
  TCP_PSH,
  TCP_SYN,
  u32Bytes,
} from '../src/wire/index.ts';
import type { RelayOptions, RelayStats } from '../src/relay/index.ts';
import { GW_IP, GW_MAC, dhcpClientFrame, ipv4Frame } from '../src/relay/testing.ts';
import { median } from './stats.ts';
import { FrameWaiters } from './suite/frame-waiters.ts';
import { openRelaySocket } from './suite/relay-socket.ts';

const HOST = '127.0.0.1';
const ROOM = 'abuse';
const TOKEN = 'abuse-token';
const GUEST_MAC = '02:ab:00:00:00:01';
const HARD_STOP_MS = 170_000;

/** What the relay runs with: main.ts's limits for non-loopback clients, so they are exercised. */
const RELAY_OPTIONS: Partial<RelayOptions> = {
  token: TOKEN,
  // Room of 50 clients + the guest + churn running through it.
  maxClientsPerRoom: 64,
  rateLimit: { framesPerSecond: 20_000, bytesPerSecond: 50 << 20, burstSeconds: 1 },
  // 30 s by default; short here so the nat-leave phase sees the teardown.
  gateway: { leftGraceMs: 2000 },
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));
const MiB = (n: number) => (n / 1048576).toFixed(1);
type Figures = Record<string, number | string>;

// ------------------------------------------------------------------ frames

const macFrom = (a: number, n: number) => new Uint8Array([0x02, a, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

function arp(op: number, srcMac: Uint8Array, senderIp: number, targetIp: number, dst: Uint8Array = BROADCAST_MAC, targetMac: Uint8Array = new Uint8Array(6)): Uint8Array {
  return buildEthernet({ dst, src: srcMac, etherType: ETHERTYPE_ARP, payload: buildArp({ op, senderMac: srcMac, senderIp, targetMac, targetIp }) });
}

function dhcp(type: number, mac: Uint8Array, xid: number, extra: Array<[number, Uint8Array]> = []): Uint8Array {
  return dhcpClientFrame(mac, buildDhcp({ op: 1, xid, chaddr: mac, options: [[DhcpOption.MESSAGE_TYPE, new Uint8Array([type])], ...extra] }));
}

function echo(srcMac: Uint8Array, srcIp: number, seq: number, dstMac = GW_MAC, dstIp = GW_IP): Uint8Array {
  const icmp = buildIcmp({ type: ICMP_ECHO_REQUEST, id: 0xab, seq, data: new Uint8Array(32) });
  return ipv4Frame(srcMac, dstMac, { src: srcIp, dst: dstIp, protocol: IPPROTO_ICMP, payload: icmp });
}

const junk = (dst: Uint8Array, src: Uint8Array, len: number) => buildEthernet({ dst, src, etherType: 0x88b5, payload: new Uint8Array(Math.max(0, len - 14)) });

// ------------------------------------------------------------------ clients

interface Target {
  port: number;
  guestMac: string;
  guestIp: string;
  /** A host TCP/UDP port on 127.0.0.1 that accepts and holds connections (counts them). */
  holdPort: number;
}

const wsUrl = (t: Target, room = ROOM, token = TOKEN) => `ws://${HOST}:${t.port}/relay/${room}?token=${token}`;

/** A WebSocket client that decodes and counts what it receives. */
class Peer {
  received = 0;
  readonly closed: Promise<number>;
  private readonly waiters = new FrameWaiters();
  onFrame: ((d: DecodedFrame | null, raw: Uint8Array) => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) return;
      this.received++;
      if (!this.onFrame && this.waiters.size === 0) return;
      const raw = new Uint8Array(data);
      const d = decodeFrame(raw);
      this.onFrame?.(d, raw);
      if (!d) return;
      this.waiters.settle(d);
    });
  }

  static open(url: string): Promise<Peer> {
    return openRelaySocket(url, (ws) => new Peer(ws));
  }

  send(f: Uint8Array | string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(f);
  }

  /** The next frame matching `pred`, or null after `ms`. */
  wait(pred: (d: DecodedFrame) => boolean, ms = 3000): Promise<DecodedFrame | null> {
    return this.waiters.next(pred, ms);
  }

  /** Waits until our own send buffer is below `bytes` (so the flood is paced by the relay, not our memory). */
  async paced(bytes = 512 * 1024): Promise<void> {
    while (this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount > bytes) await sleep(2);
  }

  async close(): Promise<void> {
    this.ws.close();
    await Promise.race([this.closed, sleep(2000)]);
    this.ws.terminate();
  }
}

/** DISCOVER → OFFER → REQUEST → ACK; the leased address or null. */
async function lease(p: Peer, mac: Uint8Array, xid: number, ms = 3000): Promise<number | null> {
  const offer = p.wait((d) => d.dhcp?.xid === xid && d.dhcp.messageType === DHCPOFFER, ms);
  p.send(dhcp(DHCPDISCOVER, mac, xid));
  const o = await offer;
  if (!o) return null;
  const ack = p.wait((d) => d.dhcp?.xid === xid && d.dhcp.messageType === DHCPACK, ms);
  p.send(dhcp(DHCPREQUEST, mac, xid, [[DhcpOption.REQUESTED_IP, u32Bytes(o.dhcp!.yiaddr)], [DhcpOption.SERVER_ID, u32Bytes(GW_IP)]]));
  const a = await ack;
  return a ? a.dhcp!.yiaddr : null;
}

/** A WebSocket upgrade by hand, for clients ws would not be: ones that never read, or speak garbage. */
function rawUpgrade(t: Target, room = ROOM): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(t.port, HOST);
    s.on('error', reject);
    s.write(
      `GET /relay/${room}?token=${TOKEN} HTTP/1.1\r\nHost: ${HOST}:${t.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let head = '';
    const onData = (b: Buffer) => {
      head += b.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) {
        s.destroy();
        reject(new Error(head.split('\r\n')[0]));
      } else resolve(s);
    };
    s.on('data', onData);
  });
}

/** A client→server WebSocket frame (masked, as RFC 6455 requires of clients; `mask: false` breaks that rule). */
function wsFrame(payload: Uint8Array, opts: { opcode?: number; mask?: boolean; rsv?: number } = {}): Buffer {
  const { opcode = 2, mask = true, rsv = 0 } = opts;
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = 0x80 | (rsv << 4) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  // A zero mask key: masked by the rules, payload unchanged.
  return Buffer.concat([head, payload]);
}

/** Resolves true if the server closed `s` within `ms`; destroys it either way. */
function serverCloses(s: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, ms);
    s.on('data', () => undefined); // read (and discard) the close frame
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    s.once('end', () => s.destroy());
  });
}

// ------------------------------------------------------------------ attacker phases

async function phaseGarbage(t: Target): Promise<Figures> {
  const peers = await Promise.all(Array.from({ length: 10 }, () => Peer.open(wsUrl(t))));
  let sent = 0;
  // 1000 random binary messages, 0–1514 bytes: runts, group/zero source MACs, random ether types.
  for (let i = 0; i < 1000; i++) {
    peers[i % peers.length].send(randomBytes(rand(0, 1515)));
    sent++;
  }
  // 100 oversized Ethernet frames that are valid WebSocket messages (≤ maxMessageBytes).
  for (let i = 0; i < 100; i++) {
    peers[i % peers.length].send(randomBytes(rand(1515, 65536)));
    sent++;
  }
  for (let i = 0; i < 20; i++) peers[i % peers.length].send('text is not a frame');
  await Promise.all(peers.map((p) => p.paced(0)));
  // Messages over maxMessageBytes: the relay closes the connection (1009).
  const bigCodes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const p = await Peer.open(wsUrl(t));
    p.send(randomBytes(rand(65537, 1 << 20)));
    bigCodes.push(await Promise.race([p.closed, sleep(3000).then(() => -1)]));
    p.ws.terminate();
  }
  // WebSocket protocol garbage after the handshake: unmasked, reserved bits, bad opcode, random.
  const bad: Buffer[] = [
    wsFrame(randomBytes(60), { mask: false }),
    wsFrame(randomBytes(60), { rsv: 4 }),
    wsFrame(randomBytes(60), { opcode: 3 }),
    wsFrame(randomBytes(200), { opcode: 9 }), // a ping over 125 bytes
    Buffer.from([0xff, 0xff, ...randomBytes(20)]), // 64-bit length beyond maxPayload
  ];
  let protoClosed = 0;
  for (let i = 0; i < 10; i++) {
    const s = await rawUpgrade(t);
    s.write(bad[i % bad.length]);
    if (await serverCloses(s, 2000)) protoClosed++;
  }
  // HTTP garbage instead of a handshake.
  let httpClosed = 0;
  for (let i = 0; i < 5; i++) {
    const s = net.connect(t.port, HOST);
    s.on('error', () => undefined);
    s.write(randomBytes(300));
    if (await serverCloses(s, 2000)) httpClosed++;
  }
  await Promise.all(peers.map((p) => p.close()));
  return {
    'frames sent': sent,
    'text messages': 20,
    'messages > maxMessageBytes → close codes': bigCodes.join(','),
    'protocol-garbage sockets closed by relay': `${protoClosed}/10`,
    'HTTP-garbage sockets closed by relay': `${httpClosed}/5`,
  };
}

async function phaseChurn(t: Target, seconds = 10, perSecond = 200): Promise<Figures> {
  const total = seconds * perSecond;
  const f = { attempted: 0, opened: 0, framesSent: 0, rawHalfRequests: 0, errors: 0, dhcpOffers: 0 };
  const refused: Record<string, number> = {};
  const done: Promise<void>[] = [];
  const launch = (i: number) => {
    f.attempted++;
    // Of every 20: a bad token, a bad room name, half a request, 8 into 150 other rooms (more
    // than maxRooms: rooms get recycled or refused), 9 into the guest's room.
    const kind = i % 20;
    if (kind === 2) {
      // Half an upgrade request, then gone.
      f.rawHalfRequests++;
      const s = net.connect(t.port, HOST);
      s.on('error', () => undefined);
      s.write(`GET /relay/${ROOM}?token=${TOKEN} HTTP/1.1\r\nHost: x\r\nUpg`);
      done.push(sleep(rand(0, 100)).then(() => void s.destroy()));
      return;
    }
    const url = kind === 0 ? wsUrl(t, ROOM, 'wrong') : kind === 1 ? wsUrl(t, 'bad%20room') : kind <= 10 ? wsUrl(t, `churn-${i % 150}`) : wsUrl(t);
    done.push(
      new Promise<void>((resolve) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        ws.on('unexpected-response', (_req, res) => {
          refused[`HTTP ${res.statusCode}`] = (refused[`HTTP ${res.statusCode}`] ?? 0) + 1;
          ws.terminate();
        });
        ws.on('error', () => f.errors++);
        ws.on('close', () => resolve());
        ws.on('message', (d: Buffer) => {
          if (decodeFrame(new Uint8Array(d))?.dhcp?.messageType === DHCPOFFER) f.dhcpOffers++;
        });
        ws.on('open', () => {
          f.opened++;
          // A fresh MAC per connection: what a thousand short-lived guests look like.
          const mac = macFrom(0xc0, i);
          const what = i % 4;
          if (what === 0) ws.send(dhcp(DHCPDISCOVER, mac, i));
          else if (what === 1) ws.send(arp(ARP_REQUEST, mac, parseIp('10.0.2.250'), GW_IP));
          else if (what === 2) ws.send(junk(BROADCAST_MAC, mac, 64));
          if (what !== 3) f.framesSent++;
          setTimeout(() => (i % 2 ? ws.close() : ws.terminate()), rand(0, 100));
        });
      }),
    );
  };
  const t0 = performance.now();
  let next = 0;
  while (next < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * perSecond) + 1);
    while (next < due) launch(next++);
    await sleep(2);
  }
  const launchSeconds = (performance.now() - t0) / 1000;
  await Promise.race([Promise.all(done), sleep(10_000)]);
  return {
    'connections attempted': f.attempted,
    'over seconds': launchSeconds.toFixed(1),
    opened: f.opened,
    'refused (client view)': JSON.stringify(refused),
    'half requests then gone': f.rawHalfRequests,
    'client-side errors': f.errors,
    'frames sent': f.framesSent,
    'DHCP offers seen': f.dhcpOffers,
  };
}

async function phaseSpoof(t: Target): Promise<Figures> {
  const victim = parseMac(t.guestMac);
  const victimIp = parseIp(t.guestIp);
  const stolen = { toVictimMac: 0, victimPings: 0, replies: 0 };
  const watch = (me: Uint8Array) => (d: DecodedFrame | null) => {
    if (!d) return;
    if (macToString(d.eth.dst) === t.guestMac) stolen.toVictimMac++;
    // The guest's pings to the gateway arriving here would be its traffic, stolen.
    if (d.icmp?.type === ICMP_ECHO_REQUEST && d.ipv4?.src === victimIp) stolen.victimPings++;
    if (d.icmp?.type === ICMP_ECHO_REPLY && d.ipv4?.dst === victimIp && macToString(d.eth.dst) === macToString(me)) stolen.replies++;
  };
  // A: a new connection that speaks with the victim's MAC from its first frame.
  const a = await Peer.open(wsUrl(t));
  a.onFrame = watch(victim);
  // B: locks to its own MAC, then switches to the victim's.
  const bMac = macFrom(0xb0, 1);
  const b = await Peer.open(wsUrl(t));
  b.onFrame = watch(bMac);
  b.send(arp(ARP_REQUEST, bMac, parseIp('10.0.2.251'), GW_IP));
  // C: ARP poisoning from its own MAC: "10.0.2.2 is at C" to everyone and to the guest,
  // and "the guest's IP is at C" to the gateway. D: the guest's IP from its own MAC.
  const cMac = macFrom(0xc1, 1);
  const c = await Peer.open(wsUrl(t));
  c.onFrame = watch(cMac);
  let sent = 0;
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < 4000; i++) {
    for (const p of [a, b]) {
      p.send(arp(ARP_REQUEST, victim, victimIp, GW_IP));
      p.send(echo(victim, victimIp, i));
      p.send(dhcp(DHCPDISCOVER, victim, 0x5000 + i));
      p.send(junk(BROADCAST_MAC, victim, 60));
      sent += 4;
    }
    c.send(arp(ARP_REQUEST, cMac, GW_IP, GW_IP)); // gratuitous: sender IP = the gateway's
    c.send(arp(ARP_REPLY, cMac, GW_IP, victimIp, victim, victim));
    c.send(arp(ARP_REPLY, cMac, victimIp, GW_IP, GW_MAC, GW_MAC));
    c.send(echo(cMac, victimIp, i)); // IP spoofing
    sent += 4;
    await sleep(100);
  }
  await sleep(500);
  const fig: Figures = {
    'spoofed frames sent': sent,
    'frames to the guest MAC received by attackers': stolen.toVictimMac,
    "guest's pings received by attackers": stolen.victimPings,
    'gateway replies to attackers for the guest IP': stolen.replies,
    'attacker A got': a.received,
  };
  await Promise.all([a, b, c].map((p) => p.close()));
  return fig;
}

/** A broadcast flood, into the guest's room or (as a control: the same load on the host, none of it switched to the guest) another. */
async function phaseBroadcast(t: Target, room = ROOM, ms = 5000, maxFrames = 200_000): Promise<Figures> {
  const mac = macFrom(0xbc, 1);
  const flooder = await Peer.open(wsUrl(t, room));
  const listener = await Peer.open(wsUrl(t, room));
  listener.send(arp(ARP_REQUEST, macFrom(0xbd, 1), parseIp('10.0.2.252'), GW_IP));
  await sleep(100);
  const before = listener.received;
  const frame = junk(BROADCAST_MAC, mac, 64);
  let sent = 0;
  const t0 = performance.now();
  while (sent < maxFrames && performance.now() - t0 < ms) {
    for (let i = 0; i < 200; i++) flooder.send(frame);
    sent += 200;
    await flooder.paced();
  }
  const secs = (performance.now() - t0) / 1000;
  await sleep(500);
  const fig = { 'broadcast frames sent': sent, 'frames/s offered': Math.round(sent / secs), 'reached another client': listener.received - before };
  await Promise.all([flooder.close(), listener.close()]);
  return fig;
}

/**
 * Slow readers: a handshake, one frame so the switch learns their MAC, then never a read.
 * Flooders send them unicast frames. `small`: 60-byte frames only (the most queue entries per
 * counted byte). Else: 6 MB of full-size frames each (fills the kernel's buffers, ~4 MB here,
 * and some of the relay's), then small frames that each share their socket read with a
 * 32 KiB message the switch drops: the relay must not keep a whole read alive for a small
 * frame it queues.
 */
async function phaseSlow(t: Target, small: boolean, ms = 5000): Promise<Figures> {
  const slowMacs = Array.from({ length: 3 }, (_, i) => macFrom(small ? 0x53 : 0x51, i));
  const slow = await Promise.all(slowMacs.map(() => rawUpgrade(t)));
  slow.forEach((s, i) => {
    s.write(wsFrame(junk(BROADCAST_MAC, slowMacs[i], 60)));
    s.pause();
  });
  const flooders = await Promise.all(Array.from({ length: 4 }, () => Peer.open(wsUrl(t))));
  const fMac = (i: number) => macFrom(small ? 0x54 : 0x52, i);
  flooders.forEach((p, i) => p.send(junk(BROADCAST_MAC, fMac(i), 60)));
  await sleep(200);
  let frames = 0;
  let bytes = 0;
  const send = (p: Peer, i: number, dst: Uint8Array, len: number) => {
    p.send(junk(dst, fMac(i), len));
    frames++;
    bytes += len;
  };
  const filler = new Uint8Array(32 * 1024);
  const t0 = performance.now();
  if (!small) {
    for (let k = 0; k < 4000 && performance.now() - t0 < ms; k += 10) {
      flooders.forEach((p, i) => {
        for (let j = 0; j < 10; j++) send(p, i, slowMacs[(k + j + i) % slowMacs.length], 1514);
      });
      await Promise.all(flooders.map((p) => p.paced()));
    }
  }
  for (let k = 0; performance.now() - t0 < ms; k++) {
    flooders.forEach((p, i) => {
      for (let j = 0; j < 20; j++) {
        send(p, i, slowMacs[(k + j) % slowMacs.length], 60);
        if (!small) p.send(filler);
      }
    });
    await Promise.all(flooders.map((p) => p.paced()));
  }
  const secs = (performance.now() - t0) / 1000;
  await sleep(1000);
  for (const s of slow) s.destroy();
  await Promise.all(flooders.map((p) => p.close()));
  return { 'slow readers': slow.length, 'frames toward them': frames, 'MiB toward them': MiB(bytes), 'over seconds': secs.toFixed(1) };
}

async function phaseRoom(t: Target, n = 50): Promise<Figures> {
  const macs = Array.from({ length: n }, (_, i) => macFrom(0x50, i));
  const peers = await Promise.all(macs.map(() => Peer.open(wsUrl(t))));
  const foreign = { count: 0 };
  peers.forEach((p, i) => {
    const me = macToString(macs[i]);
    p.onFrame = (d) => {
      if (d && !(d.eth.dst[0] & 1) && macToString(d.eth.dst) !== me) foreign.count++;
    };
  });
  const ips = await Promise.all(peers.map((p, i) => lease(p, macs[i], 0x7000 + i, 5000)));
  const leased = ips.filter((x) => x !== null).length;
  // Each pings the gateway 10 times, ARPs for the guest, and sends to a neighbour.
  let replies = 0;
  await Promise.all(
    peers.map(async (p, i) => {
      const ip = ips[i] ?? parseIp(`10.0.3.${i}`);
      p.send(arp(ARP_REQUEST, macs[i], ip, parseIp(t.guestIp)));
      for (let s = 0; s < 10; s++) {
        const r = p.wait((d) => d.icmp?.type === ICMP_ECHO_REPLY && d.icmp.seq === s, 2000);
        p.send(echo(macs[i], ip, s));
        p.send(junk(macs[(i + 1) % n], macs[i], 100));
        if (await r) replies++;
        await sleep(100);
      }
    }),
  );
  const got = peers.reduce((a, p) => a + p.received, 0);
  await Promise.all(peers.map((p) => p.close()));
  return {
    clients: n,
    'DHCP leases': `${leased}/${n}`,
    'gateway ping replies': `${replies}/${n * 10}`,
    'frames received': got,
    'unicast for another MAC received': foreign.count,
  };
}

/**
 * Clients that leave with NAT state behind: each leases, opens a TCP connection through the
 * gateway to a host service (handshake done, a few bytes sent) and a UDP flow, then drops its
 * WebSocket without a word. The relay should not keep their host sockets.
 */
async function phaseNatLeave(t: Target, n = 20): Promise<Figures> {
  let established = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const mac = macFrom(0x4e, i);
      const p = await Peer.open(wsUrl(t));
      const ip = await lease(p, mac, 0x4e00 + i);
      if (ip === null) return p.ws.terminate();
      const sport = 40000 + i;
      const iss = 1000;
      const seg = (flags: number, seq: number, ack: number, payload?: Uint8Array) =>
        ipv4Frame(mac, GW_MAC, {
          src: ip,
          dst: GW_IP,
          protocol: IPPROTO_TCP,
          payload: buildTcp({ src: ip, dst: GW_IP, srcPort: sport, dstPort: t.holdPort, seq, ack, flags, window: 65535, options: flags & TCP_SYN ? { mss: 1460 } : undefined, payload }),
        });
      const synAck = p.wait((d) => d.tcp?.dstPort === sport && (d.tcp.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK), 3000);
      p.send(seg(TCP_SYN, iss, 0));
      const sa = await synAck;
      if (sa) {
        established++;
        p.send(seg(TCP_ACK, iss + 1, (sa.tcp!.seq + 1) >>> 0));
        p.send(seg(TCP_ACK | TCP_PSH, iss + 1, (sa.tcp!.seq + 1) >>> 0, new TextEncoder().encode('hello\n')));
      }
      const udp = buildUdp({ src: ip, dst: GW_IP, srcPort: sport, dstPort: t.holdPort, payload: new Uint8Array(8) });
      p.send(ipv4Frame(mac, GW_MAC, { src: ip, dst: GW_IP, protocol: IPPROTO_UDP, payload: udp }));
      await sleep(300);
      p.ws.terminate();
    }),
  );
  await sleep(3000); // the gateway's grace for departed clients (2 s here), and a margin
  return { clients: n, 'TCP connections established through the NAT, then the client vanished': established };
}

async function aliveCheck(t: Target): Promise<Figures> {
  const mac = macFrom(0xa1, 1);
  const p = await Peer.open(wsUrl(t));
  const t0 = performance.now();
  const ip = await lease(p, mac, 0xa11e);
  const leaseMs = performance.now() - t0;
  const reply = p.wait((d) => d.arp?.op === ARP_REPLY && d.arp.senderIp === GW_IP);
  p.send(arp(ARP_REQUEST, mac, ip ?? parseIp('10.0.2.253'), GW_IP));
  const r = await reply;
  await p.close();
  return {
    'fresh client DHCP lease': ip === null ? 'NONE' : `${ipToString(ip)} in ${leaseMs.toFixed(0)} ms`,
    'ARP reply from 10.0.2.2': r ? macToString(r.arp!.senderMac) : 'NONE',
  };
}

const PHASES: Record<string, (t: Target) => Promise<Figures>> = {
  garbage: phaseGarbage,
  churn: (t) => phaseChurn(t),
  spoof: phaseSpoof,
  broadcast: (t) => phaseBroadcast(t),
  'broadcast-elsewhere': (t) => phaseBroadcast(t, 'elsewhere'),
  slow: (t) => phaseSlow(t, false),
  'slow-small': (t) => phaseSlow(t, true),
  room50: (t) => phaseRoom(t),
  'nat-leave': (t) => phaseNatLeave(t),
  alive: aliveCheck,
};

// ------------------------------------------------------------------ child roles

interface MemSample {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  clients: number;
  maxBuffered: number;
  totalBuffered: number;
  /** heapUsed + arrayBuffers right after a full GC (once a second; 0 in other samples): what is really held. */
  retained: number;
}

async function relayRole(): Promise<void> {
  const { attachRelay } = await import('../src/relay/index.ts');
  const send = (m: unknown) => process.send?.(m);
  const server = createHttpServer((_, res) => res.writeHead(404).end());
  const relay = attachRelay(server, JSON.parse(process.env.ABUSE_RELAY_OPTIONS ?? '{}') as Partial<RelayOptions>);
  server.listen(0, HOST, () => send({ type: 'ready', port: (server.address() as AddressInfo).port }));
  const gc = (globalThis as { gc?: () => void }).gc;
  let tick = 0;
  setInterval(() => {
    const afterGc = gc !== undefined && ++tick % 5 === 0;
    // Twice: V8 frees ArrayBuffers' memory in a sweep that the next full GC completes.
    if (afterGc) {
      gc();
      gc();
    }
    const m = process.memoryUsage();
    let clients = 0;
    let maxBuffered = 0;
    let totalBuffered = 0;
    for (const r of relay.stats().rooms) {
      for (const c of r.clients) {
        clients++;
        maxBuffered = Math.max(maxBuffered, c.bufferedBytes);
        totalBuffered += c.bufferedBytes;
      }
    }
    const s: MemSample = {
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      clients,
      maxBuffered,
      totalBuffered,
      retained: afterGc ? m.heapUsed + m.arrayBuffers : 0,
    };
    send({ type: 'mem', sample: s });
  }, 200);
  process.on('message', (msg: { type: string; id: number }) => {
    if (msg.type === 'stats') send({ type: 'stats', id: msg.id, stats: relay.stats() });
  });
  // The orchestrator gone (even killed): go too.
  process.on('disconnect', () => process.exit(0));
}

function attackerRole(): void {
  process.on('message', async (msg: { type: string; id: number; phase: string; target: Target }) => {
    if (msg.type !== 'phase') return;
    try {
      process.send?.({ type: 'done', id: msg.id, figures: await PHASES[msg.phase](msg.target) });
    } catch (e) {
      process.send?.({ type: 'done', id: msg.id, error: (e as Error).stack ?? String(e) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** Request/response over a child's IPC channel. */
class ChildLink {
  private seq = 0;
  private pending = new Map<number, (m: Record<string, unknown>) => void>();
  exit: { code: number | null; signal: string | null } | null = null;
  constructor(
    readonly child: ChildProcess,
    onMessage: (m: Record<string, unknown>) => void = () => undefined,
  ) {
    child.on('message', (m: Record<string, unknown>) => {
      const w = typeof m.id === 'number' ? this.pending.get(m.id) : undefined;
      if (w) {
        this.pending.delete(m.id as number);
        w(m);
      } else onMessage(m);
    });
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      for (const w of this.pending.values()) w({ error: `child exited (${code ?? signal})` });
      this.pending.clear();
    });
  }
  request(m: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.exit) return Promise.resolve({ error: 'child has exited' });
    const id = ++this.seq;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        resolve({ error: `no answer in ${timeoutMs} ms` });
      }, timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.child.send({ ...m, id });
    });
  }
}

function spawnRole(role: string, env: Record<string, string> = {}, execArgv: string[] = []): ChildProcess {
  return fork(fileURLToPath(import.meta.url), ['--role', role], {
    execArgv: ['--import', 'tsx', ...execArgv],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

// ------------------------------------------------------------------ orchestrator

interface RelaySnapshot {
  drops: Record<string, number>;
  gateway: Record<string, number>;
  refused: Record<string, number>;
  closed: Record<string, number>;
  accepted: number;
  rooms: number;
  clients: number;
  ports: number;
  macs: number;
  leases: number;
  /** NAT connections and flows of anyone but the guest. */
  tcpConns: number;
  udpFlows: number;
}

function snapshot(s: RelayStats, guestIp: string): RelaySnapshot {
  const add = (into: Record<string, number>, from: Partial<Record<string, number>>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + (v ?? 0);
  };
  const drops: Record<string, number> = {};
  const gateway: Record<string, number> = {};
  let clients = 0;
  let ports = 0;
  let macs = 0;
  let leases = 0;
  let tcpConns = 0;
  let udpFlows = 0;
  for (const r of s.rooms) {
    add(drops, r.drops);
    if (r.gateway) {
      add(gateway, Object.fromEntries(Object.entries(r.gateway.counts).filter(([k]) => k.startsWith('drop') || k.includes('exhausted'))));
      leases += r.gateway.leases.length;
      tcpConns += r.gateway.tcp.filter((c) => !c.guest.startsWith(`${guestIp}:`)).length;
      udpFlows += r.gateway.udpFlows;
    }
    clients += r.clients.length;
    ports += r.ports.length;
    macs += r.macTableSize;
  }
  return { drops, gateway, refused: { ...s.refused }, closed: { ...s.closed }, accepted: s.accepted, rooms: s.rooms.length, clients, ports, macs, leases, tcpConns, udpFlows };
}

function delta(a: Record<string, number>, b: Record<string, number>): string {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const d = (b[k] ?? 0) - (a[k] ?? 0);
    if (d) out.push(`${k} ${d}`);
  }
  return out.length ? out.join(', ') : '—';
}

async function main(): Promise<void> {
  const started = performance.now();
  const hardStop = setTimeout(() => {
    console.error(`relay-abuse: hard stop after ${HARD_STOP_MS / 1000} s`);
    process.exit(2);
  }, HARD_STOP_MS);
  hardStop.unref();

  // --- the relay, alone in a child
  let mem: MemSample[] = [];
  const relayChild = spawnRole('relay', { ABUSE_RELAY_OPTIONS: JSON.stringify(RELAY_OPTIONS) }, ['--expose-gc']);
  let resolvePort!: (p: number) => void;
  const relayPort = new Promise<number>((r) => (resolvePort = r));
  const relay = new ChildLink(relayChild, (m) => {
    if (m.type === 'ready') resolvePort(m.port as number);
    if (m.type === 'mem') mem.push(m.sample as MemSample);
  });
  const attacker = new ChildLink(spawnRole('attacker'));
  const children = [relayChild, attacker.child];
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill();
  };
  process.on('exit', cleanup);
  const port = await relayPort;
  console.log(`relay-abuse: relay pid ${relayChild.pid} on ws://${HOST}:${port}/relay/${ROOM}; attacker pid ${attacker.child.pid}`);
  console.log(
    `relay options: ${JSON.stringify(RELAY_OPTIONS)}; others default: maxFrameBytes 1514, maxMessageBytes 65536, ` +
      `maxBufferedBytes 4 MiB, maxBufferedFrames 4096, floodRateLimit 1000 frames/s + 2 MiB/s, maxRooms 64`,
  );

  // --- host ends of the guest's transfers: a source that sends the payload, a sink that checks it
  const payload = randomBytes(128 * 1024);
  const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
  const want = md5(payload);
  const xfer = { served: 0, upOk: 0, upBad: 0, upBytes: 0 };
  const source = net.createServer((s) => {
    s.on('error', () => undefined);
    s.end(payload, () => xfer.served++);
  });
  const sink = net.createServer((s) => {
    const chunks: Buffer[] = [];
    let n = 0;
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= payload.length) {
        if (md5(Buffer.concat(chunks).subarray(0, payload.length)) === want) {
          xfer.upOk++;
          xfer.upBytes += payload.length;
        } else xfer.upBad++;
        s.end();
      }
    });
  });
  const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, HOST, () => r((s.address() as AddressInfo).port)));
  // Holds what connects (the nat-leave phase): how many are still open tells what the relay keeps.
  const hold = { open: 0 };
  const holdServer = net.createServer((sock) => {
    hold.open++;
    sock.on('error', () => undefined);
    sock.on('data', () => undefined);
    sock.once('close', () => hold.open--);
  });
  const [srcPort, sinkPort, holdPort] = await Promise.all([listen(source), listen(sink), listen(holdServer)]);
  const holdUdp = dgram.createSocket('udp4');
  await new Promise<void>((r) => holdUdp.bind(holdPort, HOST, r));

  // --- the guest
  const { startNodeVm } = await import('../src/vm/node/node-machine.ts');
  const vm = await startNodeVm({ guestDir: 'public/guest', net: { relayUrl: `ws://${HOST}:${port}/relay/${ROOM}?token=${TOKEN}`, mac: GUEST_MAC } });
  const run = async (cmd: string, timeoutMs = 30_000) => (await vm.session.run(cmd, { timeoutMs })).output;
  try {
    await vm.session.ready;
    const leaseOut = await run('for i in $(seq 100); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0');
    const guestIp = /inet (10\.0\.2\.\d+)\//.exec(leaseOut)?.[1];
    if (!guestIp) throw new Error(`guest got no DHCP lease:\n${leaseOut}`);
    console.log(`guest ${GUEST_MAC} at ${guestIp}, up after ${((performance.now() - started) / 1000).toFixed(1)} s`);
    // Downloads + uploads of the payload in a loop through the NAT, logged for phase boundaries.
    await run(
      `rm -f /tmp/stop /tmp/xfer.log; (while [ ! -f /tmp/stop ]; do timeout 30 nc 10.0.2.2 ${srcPort} < /dev/null > /tmp/d.bin; echo "down $(md5sum < /tmp/d.bin | cut -c1-32) $(wc -c < /tmp/d.bin)"; timeout 30 nc 10.0.2.2 ${sinkPort} < /tmp/d.bin > /dev/null; done) >> /tmp/xfer.log 2>&1 &`,
    );
    const target: Target = { port, guestMac: GUEST_MAC, guestIp, holdPort };
    const transfers = async () => {
      const out = await run(`awk '/^down/ { n++; if ($2 == "${want}" && $3 == ${payload.length}) k++ } END { print "C", k + 0, n + 0 }' /tmp/xfer.log`);
      const m = /C (\d+) (\d+)/.exec(out);
      return { downOk: Number(m?.[1] ?? 0), down: Number(m?.[2] ?? 0), upOk: xfer.upOk, upBad: xfer.upBad };
    };
    const relayStats = async (): Promise<RelayStats | null> => {
      const r = await relay.request({ type: 'stats' }, 5000);
      return (r.stats as RelayStats | undefined) ?? null;
    };
    const peakOf = (xs: MemSample[]): MemSample => {
      const p: MemSample = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0, clients: 0, maxBuffered: 0, totalBuffered: 0, retained: 0 };
      for (const x of xs) for (const k of Object.keys(p) as Array<keyof MemSample>) p[k] = Math.max(p[k], x[k]);
      return p;
    };

    // Baseline: the guest's transfers only.
    mem = [];
    await sleep(3000);
    const base = {
      rss: median(mem.map((x) => x.rss)),
      heapUsed: median(mem.map((x) => x.heapUsed)),
      arrayBuffers: median(mem.map((x) => x.arrayBuffers)),
      retained: median(mem.filter((x) => x.retained).map((x) => x.retained)),
    };
    console.log(
      `relay baseline (the guest's transfers only): rss ${MiB(base.rss)} MiB, heapUsed ${MiB(base.heapUsed)} MiB, arrayBuffers ${MiB(base.arrayBuffers)} MiB, ` +
        `heap + arrayBuffers after GC ${MiB(base.retained)} MiB`,
    );

    const summary: string[][] = [];
    let peakAll = peakOf([]);
    const onlyAt = process.argv.indexOf('--only');
    const only = onlyAt >= 0 ? process.argv[onlyAt + 1].split(',') : null;
    for (const name of ['quiet', ...Object.keys(PHASES).filter((p) => !only || only.includes(p) || p === 'alive')]) {
      if (relay.exit) break;
      const s0 = snapshot((await relayStats())!, guestIp);
      const x0 = await transfers();
      // A ping of its own per phase (5/s), stopped with SIGINT for busybox's summary.
      await run('ping -i 0.2 10.0.2.2 > /tmp/ping.log 2>&1 & echo $! > /tmp/ping.pid');
      mem = [];
      const t0 = performance.now();
      const r = name === 'quiet' ? { figures: { 'nothing but the guest': 'for 3 s' } } : await attacker.request({ type: 'phase', phase: name, target }, 60_000);
      if (name === 'quiet') await sleep(3000);
      await sleep(1000); // let the relay and the guest settle before counting
      const seconds = (performance.now() - t0) / 1000;
      const pingOut = await run(
        "kill -INT $(cat /tmp/ping.pid); sleep 0.3; tail -2 /tmp/ping.log; awk -F'seq=' '/seq=/ { split($2, a, \" \"); if (a[1] + 1 > m) m = a[1] + 1 } END { print \"S\", m + 0 }' /tmp/ping.log",
      );
      const peak = peakOf(mem);
      peakAll = peakOf([peakAll, peak]);
      const st = await relayStats();
      const figures = (r.figures as Figures | undefined) ?? { error: String(r.error) };
      console.log(`\n== ${name} (${seconds.toFixed(1)} s)`);
      for (const [k, v] of Object.entries(figures)) console.log(`   ${k}: ${v}`);
      if (!st) {
        console.log(`   the relay did not answer (${relay.exit ? `exited ${JSON.stringify(relay.exit)}` : 'hung'})`);
        break;
      }
      const s1 = snapshot(st, guestIp);
      const x1 = await transfers();
      const pm = /(\d+) packets transmitted, (\d+) packets received/.exec(pingOut);
      const transmitted = Number(pm?.[1] ?? 0);
      const got = Number(pm?.[2] ?? 0);
      // Pings after the last reply may still be in flight when SIGINT stops ping: count them
      // only if they span more than a second (5 pings), i.e. the link really went quiet.
      const upToLastReply = Number(/S (\d+)/.exec(pingOut)?.[1] ?? 0);
      const sent = transmitted - upToLastReply > 5 ? transmitted : upToLastReply;
      const loss = sent ? ((100 * (sent - got)) / sent).toFixed(1) : '–';
      const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(pingOut);
      if (name === 'spoof') console.log(`   guest's neighbour entry for 10.0.2.2: ${(await run('ip neigh show 10.0.2.2')).trim() || '(none)'}`);
      console.log(`   relay: accepted ${s1.accepted - s0.accepted}; refused: ${delta(s0.refused, s1.refused)}; closed: ${delta(s0.closed, s1.closed)}`);
      console.log(`   relay drops: ${delta(s0.drops, s1.drops)}; gateway: ${delta(s0.gateway, s1.gateway)}`);
      console.log(
        `   relay memory peak: rss ${MiB(peak.rss)} MiB (${peak.rss >= base.rss ? '+' : ''}${MiB(peak.rss - base.rss)} on the baseline), heapUsed ${MiB(peak.heapUsed)}, external ${MiB(peak.external)}, ` +
          `arrayBuffers ${MiB(peak.arrayBuffers)} MiB; after GC ${MiB(peak.retained)} MiB; largest WebSocket send buffer ${MiB(peak.maxBuffered)} MiB, all ${MiB(peak.totalBuffered)} MiB; clients ≤ ${peak.clients}`,
      );
      console.log(
        `   guest: ping ${got}/${sent} (${loss} % loss${rtt ? `, RTT min/avg/max ${rtt[1]}/${rtt[2]}/${rtt[3]} ms` : ''}); ` +
          `transfers md5-verified: down ${x1.downOk - x0.downOk}/${x1.down - x0.down}, up ${x1.upOk - x0.upOk} (bad ${x1.upBad - x0.upBad})`,
      );
      console.log(
        `   after: rooms ${s1.rooms}, clients ${s1.clients}, ports ${s1.ports}, MACs ${s1.macs}, leases ${s1.leases}, ` +
          `NAT state of others than the guest: TCP ${s1.tcpConns}, UDP ${s1.udpFlows}; host connections still open ${hold.open}`,
      );
      summary.push([
        name,
        seconds.toFixed(1),
        `${loss} %`,
        rtt ? rtt[2] : '–',
        `${x1.downOk - x0.downOk}/${x1.upOk - x0.upOk}`,
        MiB(peak.rss),
        MiB(peak.retained),
        MiB(peak.maxBuffered),
      ]);
    }

    // --- the guest's side, then teardown
    await run('touch /tmp/stop');
    const final = snapshot((await relayStats()) ?? ({ rooms: [], refused: {}, closed: {}, ignored: {}, accepted: 0 } as RelayStats), guestIp);
    const gEnd = await transfers();
    console.log('');
    const header = ['phase', 's', 'guest ping loss', 'avg RTT ms', 'xfers down/up', 'relay peak rss MiB', 'held after GC MiB', 'max ws buffer MiB'];
    const widths = header.map((h, i) => Math.max(h.length, ...summary.map((r) => r[i].length)));
    console.log(header.map((h, i) => h.padEnd(widths[i])).join(' | '));
    console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const r of summary) console.log(r.map((c, i) => c.padEnd(widths[i])).join(' | '));
    console.log('');
    console.log(
      `guest transfers: ${gEnd.downOk}/${gEnd.down} downloads of ${payload.length} bytes md5-verified in the guest, ` +
        `${xfer.upOk} uploads md5-verified on the host (${MiB(xfer.upBytes)} MiB, ${xfer.upBad} bad)`,
    );
    console.log(
      `relay peak memory: rss ${MiB(peakAll.rss)} MiB (baseline ${MiB(base.rss)}), heapUsed ${MiB(peakAll.heapUsed)} MiB, arrayBuffers ${MiB(peakAll.arrayBuffers)} MiB, ` +
        `heap + arrayBuffers after GC ${MiB(peakAll.retained)} MiB (baseline ${MiB(base.retained)}); now rss ${mem.length ? MiB(mem[mem.length - 1].rss) : '?'} MiB`,
    );
    console.log(
      `relay at the end: ${relay.exit ? `EXITED ${JSON.stringify(relay.exit)}` : 'alive'}; rooms ${final.rooms}, clients ${final.clients} (the guest), ports ${final.ports}, MAC table ${final.macs}, accepted ${final.accepted} in all`,
    );
    console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await vm.stop().catch(() => undefined);
    source.close();
    sink.close();
    holdServer.close();
    holdUdp.close();
    cleanup();
  }
  process.exit(0);
}

const roleAt = process.argv.indexOf('--role');
const role = roleAt >= 0 ? process.argv[roleAt + 1] : 'main';
if (role === 'relay') await relayRole();
else if (role === 'attacker') attackerRole();
else await main();
