/**
 * The relay's WebSocket side: mounted on an existing Node HTTP server through its
 * 'upgrade' event, at `/relay/<room>` (`/relay` or `/relay/` is room `lab`). Each binary
 * message is one raw Ethernet frame, no header (websockproxy / v86 `network_relay_url`
 * format); text messages are ignored but for the NIC's super-segment hellos
 * (src/wire/link-hello.ts): rx sets what its switch port may be sent, tx (answered) what it
 * may send. Each room is a switch (switch.ts) with a gateway (gateway.ts) on one of its ports.
 *
 * Admission happens before the WebSocket handshake completes, with plain HTTP errors:
 * 400 bad room name, 401 missing/wrong token, 403 Origin not allowed, 503 room full or too
 * many rooms.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { ETH_MAX_FRAME, VLAN_HLEN } from '../wire/ethernet.ts';
import { LINK_HELLO_MAX_CHARS, SUPER_SEGMENT_MAX_FRAME, TX_HELLO_PREFIX, formatLinkHello, parseLinkHello } from '../wire/link-hello.ts';
import { addressingForClients } from './addressing.ts';
import { ClusterLink, type ClusterRoom } from './cluster.ts';
import { type GatewayOptions, type GatewayStats, Gateway } from './gateway.ts';
import { type PortSink, type RateLimit, type RoomStats, SwitchRoom, type SwitchPort, countDrop } from './switch.ts';

export interface RelayOptions {
  /** URL path prefix. Default '/relay'. */
  path: string;
  /** Room for `/relay` and `/relay/`. Default 'lab'. */
  defaultRoom: string;
  /** Largest Ethernet frame (header included, no FCS). Default 1514 (MTU 1500 + 14). */
  maxFrameBytes: number;
  /**
   * WebSocket messages above this close the connection (ws maxPayload). Default
   * SUPER_SEGMENT_MAX_FRAME (65 549): a super-segment from a NIC the relay allowed to send them.
   */
  maxMessageBytes: number;
  maxClientsPerRoom: number;
  maxRooms: number;
  /** Close a client that sent no frame for this long. Default 30 min; 0 = never. */
  idleTimeoutMs: number;
  /** Ping interval to notice dead peers. Default 30 s; 0 = off. */
  pingIntervalMs: number;
  /**
   * Allowed Origin header values (e.g. 'http://127.0.0.1:8080'). Default null: requests
   * without an Origin (Node, tools) and those whose Origin host equals the Host header.
   * '*' allows any.
   */
  allowedOrigins: string[] | '*' | null;
  /** Accept clients that send no Origin header (non-browser clients). Default true. */
  allowNoOrigin: boolean;
  /** If set, every client must pass `?token=<token>`. */
  token: string | null;
  /** Per-client rate limit; null = off (the default; main.ts turns it on beyond loopback). */
  rateLimit: RateLimit | null;
  /** Frames toward a client whose WebSocket has more than this buffered are dropped. Default 4 MiB. */
  maxBufferedBytes: number;
  /** …or more than this many frames waiting for its socket. Default 4096. */
  maxBufferedFrames: number;
  /**
   * Storm control per client: frames it sends that get flooded (broadcast, multicast,
   * unknown unicast). Default 1000/s and 2 MiB/s; null = off.
   */
  floodRateLimit: RateLimit | null;
  gateway: Partial<GatewayOptions> | false;
  /** NATS server URL (nats://HOST:PORT): rooms are shared with the other relays on it. Default null. */
  cluster: string | null;
  /** Called for each admitted or refused client (logging). */
  log?: (msg: string) => void;
}

export const DEFAULT_RELAY_OPTIONS: RelayOptions = {
  path: '/relay',
  defaultRoom: 'lab',
  maxFrameBytes: ETH_MAX_FRAME,
  maxMessageBytes: SUPER_SEGMENT_MAX_FRAME,
  maxClientsPerRoom: 32,
  maxRooms: 64,
  idleTimeoutMs: 30 * 60_000,
  pingIntervalMs: 30_000,
  allowedOrigins: null,
  allowNoOrigin: true,
  token: null,
  rateLimit: null,
  maxBufferedBytes: 4 << 20,
  maxBufferedFrames: 4096,
  floodRateLimit: { framesPerSecond: 1000, bytesPerSecond: 2 << 20 },
  gateway: {},
  cluster: null,
};

export interface ClientInfo {
  room: string;
  remote: string;
  origin: string | null;
  connectedAt: number;
}

export interface RelayStats {
  /**
   * bufferedBytes: what the client's WebSocket holds unsent (capped near maxBufferedBytes);
   * superSegmentBytes: the largest frame its NIC offered to take (0: MTU frames only);
   * superSegmentsIn: the largest it may send (0: MTU frames only).
   */
  rooms: Array<
    RoomStats & {
      gateway: GatewayStats | null;
      clients: Array<ClientInfo & { portId: number; bufferedBytes: number; bufferedFrames: number; superSegmentBytes: number; superSegmentsIn: number }>;
    }
  >;
  /** WebSocket clients admitted since start. */
  accepted: number;
  /** Upgrade requests refused, by reason; client closes by reason. */
  refused: Record<string, number>;
  closed: Record<string, number>;
  /**
   * Text messages ignored (`text`: not a well-formed hello, bad ones included), and other
   * client-level events; `hello`: hellos taken (offers and withdrawals).
   */
  ignored: Record<string, number>;
  /** Cluster link counters, when clustered. */
  cluster?: Record<string, number | string>;
}

export interface Relay {
  readonly options: RelayOptions;
  /** Resolves when the relay can take clients (at once unless clustered: then once NATS and the lease bucket are up). */
  readonly ready: Promise<void>;
  stats(): RelayStats;
  /** Closes every client and the gateways' sockets; the HTTP server is left alone. */
  close(): Promise<void>;
}

const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

interface Room {
  name: string;
  sw: SwitchRoom;
  gateway: Gateway | null;
  /** Its port on the cluster, when clustered. */
  uplink: ClusterRoom | null;
  clients: Map<WebSocket, { port: SwitchPort; info: ClientInfo; sink: ClientSink }>;
  lastUsed: number;
}

/** Parses `/relay`, `/relay/`, `/relay/<room>` (query ignored); undefined = not ours, null = bad room. */
export function roomFromPath(url: string, prefix: string, defaultRoom: string): string | null | undefined {
  const pathname = url.split('?')[0];
  if (pathname === prefix || pathname === `${prefix}/`) return defaultRoom;
  if (!pathname.startsWith(`${prefix}/`)) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(pathname.slice(prefix.length + 1).replace(/\/$/, ''));
  } catch {
    return null;
  }
  return ROOM_NAME.test(name) ? name : null;
}

function originAllowed(req: IncomingMessage, o: RelayOptions): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || origin === '' || origin === 'null') return o.allowNoOrigin && origin !== 'null';
  if (o.allowedOrigins === '*') return true;
  if (o.allowedOrigins) return o.allowedOrigins.includes(origin);
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function tokenOk(url: string, token: string | null): boolean {
  if (token === null) return true;
  const q = url.includes('?') ? new URLSearchParams(url.slice(url.indexOf('?') + 1)) : null;
  const given = Buffer.from(q?.get('token') ?? '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function refuse(socket: Duplex, status: number, text: string): void {
  const body = `${text}\n`;
  // The HTTP server's sockets allow half-open: without this, a refused client that keeps
  // its side open held its socket for good (50 refused → 50 sockets still open).
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * The frame in an ArrayBuffer of its own. ws hands out views into the whole socket read (up
 * to 64 KiB, or a shared 8 KiB pool slab): a 60-byte frame queued toward a client that does
 * not read would pin all of it while bufferedAmount counts 60 bytes — measured 1.1 GiB held
 * for 1.2 MB counted.
 */
export function ownFrame(data: RawData): Uint8Array {
  const parts = Array.isArray(data) ? data : [data instanceof ArrayBuffer ? new Uint8Array(data) : data];
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n); // never pooled, unlike Buffer.allocUnsafe
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * The hello a text message is (link-hello.ts): which one and its size, or undefined; longer
 * ones are not even decoded.
 */
export function linkHello(data: RawData): { kind: 'rx' | 'tx'; bytes: number } | undefined {
  const size = Array.isArray(data) ? data.reduce((n, part) => n + part.byteLength, 0) : data.byteLength;
  if (size > LINK_HELLO_MAX_CHARS) return undefined;
  const text = new TextDecoder().decode(ownFrame(data));
  const rx = parseLinkHello(text);
  if (rx !== undefined) return { kind: 'rx', bytes: rx };
  const tx = parseLinkHello(text, TX_HELLO_PREFIX);
  return tx === undefined ? undefined : { kind: 'tx', bytes: tx };
}

const WS_OPEN = 1; // WebSocket.OPEN

/** What a client's sink needs of a ws WebSocket (tests pass a fake). */
export interface FrameSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array, options: { binary: boolean }, cb: (err?: Error) => void): void;
}

export interface ClientSink extends PortSink {
  /** Frames handed to the socket and not yet written to the kernel. */
  queued(): number;
}

/**
 * The switch port's sink for one client: frames beyond `maxBytes` or `maxFrames` waiting for
 * its socket are refused (the switch counts them 'congested'), so a client that never reads
 * costs at most that. Frames are capped apart from bytes because each queued frame costs
 * ~0.4 KB of bookkeeping: 9.2 MiB of 60-byte frames queued toward three slow readers held
 * 65 MiB (after GC) before this cap, 14 MiB with it (`npm run abuse:relay`, slow-small).
 */
export function clientSink(ws: FrameSocket, maxBytes: number, maxFrames: number): ClientSink {
  let queued = 0;
  const written = () => void queued--; // ws calls back once per frame, also on error
  return {
    deliver(frame) {
      if (ws.readyState !== WS_OPEN || ws.bufferedAmount > maxBytes || queued >= maxFrames) return false;
      queued++;
      ws.send(frame, { binary: true }, written);
      return true;
    },
    queued: () => queued,
  };
}

export function attachRelay(server: Server, options: Partial<RelayOptions> = {}): Relay {
  const o: RelayOptions = { ...DEFAULT_RELAY_OPTIONS, ...options };
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxMessageBytes, perMessageDeflate: false });
  const rooms = new Map<string, Room>();
  // A room's subnet grows with its client limit (a /24 up to 192 clients; 500 → /21).
  const { netmask, dhcpStart, dhcpEnd } = addressingForClients(o.maxClientsPerRoom);
  const gatewayOptions: Partial<GatewayOptions> | false = o.gateway && { netmask, dhcpStart, dhcpEnd, ...o.gateway };
  const refused: Record<string, number> = {};
  const closed: Record<string, number> = {};
  const ignored: Record<string, number> = {};
  let shuttingDown = false;
  let accepted = 0;
  const link = o.cluster ? new ClusterLink({ url: o.cluster, log: o.log }) : null;
  let clusterUp = false;
  link?.ready.then(() => (clusterUp = true), () => undefined);

  const getRoom = (name: string): Room | null => {
    let r = rooms.get(name);
    if (r) return r;
    if (rooms.size >= o.maxRooms) {
      // Forget the least recently used empty room (its leases go with it).
      let victim: Room | null = null;
      for (const x of rooms.values()) if (x.clients.size === 0 && (!victim || x.lastUsed < victim.lastUsed)) victim = x;
      if (!victim) return null;
      victim.gateway?.close();
      victim.uplink?.leave();
      rooms.delete(victim.name);
    }
    const sw = new SwitchRoom(name, { maxFrameBytes: o.maxFrameBytes });
    // Clustered: the room's port on the cluster first, then a gateway whose leases are the cluster's.
    const uplink = link ? link.joinRoom(name, sw, o.maxFrameBytes + VLAN_HLEN) : null;
    const leases = link?.leaseBook(name, (key) => sw.hasLocalMac(key));
    const gateway = gatewayOptions === false ? null : new Gateway(sw, gatewayOptions, leases);
    r = { name, sw, gateway, uplink, clients: new Map(), lastUsed: Date.now() };
    // A guest changed its MAC (switch.ts): its old one left, as when a client goes.
    sw.onMacMoved = (_port, from) => {
      gateway?.clientLeft(from);
      link?.clientLeft(name, from);
    };
    rooms.set(name, r);
    return r;
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '/';
    const roomName = roomFromPath(url, o.path, o.defaultRoom);
    if (roomName === undefined) {
      // Not ours: leave it to another upgrade listener, or refuse if there is none.
      if (server.listenerCount('upgrade') <= 1) refuse(socket, 404, 'Not Found');
      return;
    }
    const no = (reason: string, status: number, text: string) => {
      refused[reason] = (refused[reason] ?? 0) + 1;
      o.log?.(`relay: refused ${req.socket.remoteAddress ?? '?'} (${reason})`);
      refuse(socket, status, text);
    };
    if (shuttingDown) return no('shutting-down', 503, 'Service Unavailable');
    if (link && !clusterUp) return no('cluster-not-ready', 503, 'Service Unavailable');
    if (roomName === null) return no('bad-room', 400, 'Bad Request');
    if (!tokenOk(url, o.token)) return no('token', 401, 'Unauthorized');
    if (!originAllowed(req, o)) return no('origin', 403, 'Forbidden');
    const room = getRoom(roomName);
    if (!room) return no('too-many-rooms', 503, 'Service Unavailable');
    if (room.clients.size >= o.maxClientsPerRoom) return no('room-full', 503, 'Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Re-check: another client may have taken the last place during the handshake.
      if (room.clients.size >= o.maxClientsPerRoom || shuttingDown || rooms.get(room.name) !== room) {
        refused['room-full'] = (refused['room-full'] ?? 0) + 1;
        ws.close(1013, 'room full');
        return;
      }
      accept(ws, room, req);
    });
  };

  const accept = (ws: WebSocket, room: Room, req: IncomingMessage) => {
    const info: ClientInfo = {
      room: room.name,
      remote: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`,
      origin: req.headers.origin ?? null,
      connectedAt: Date.now(),
    };
    const sink = clientSink(ws, o.maxBufferedBytes, o.maxBufferedFrames);
    const port = room.sw.attach(sink, { label: info.remote, lockMac: true, rateLimit: o.rateLimit, floodLimit: o.floodRateLimit });
    room.clients.set(ws, { port, info, sink });
    accepted++;
    room.lastUsed = Date.now();
    o.log?.(`relay: ${info.remote} joined room ${room.name}`);

    let alive = true;
    let idle: NodeJS.Timeout | null = null;
    const resetIdle = () => {
      if (o.idleTimeoutMs <= 0) return;
      if (idle) idle.refresh();
      else {
        idle = setTimeout(() => {
          closed.idle = (closed.idle ?? 0) + 1;
          ws.close(4000, 'idle timeout');
          // A peer that never answers the close handshake goes anyway.
          setTimeout(() => ws.terminate(), 2000).unref();
        }, o.idleTimeoutMs);
        idle.unref();
      }
    };
    resetIdle();
    const ping =
      o.pingIntervalMs > 0
        ? setInterval(() => {
            if (!alive) {
              closed['no-pong'] = (closed['no-pong'] ?? 0) + 1;
              ws.terminate();
              return;
            }
            alive = false;
            ws.ping();
          }, o.pingIntervalMs)
        : null;
    ping?.unref();
    ws.on('pong', () => (alive = true));

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        const hello = linkHello(data);
        let taken = false;
        if (hello?.kind === 'rx') taken = port.setSuperSegments(hello.bytes);
        else if (hello?.kind === 'tx') {
          // Answered every time (a repeat costs one short message); no larger than a message may be.
          const granted = port.allowSuperSegmentsIn(Math.min(hello.bytes, o.maxMessageBytes));
          if (ws.readyState === WS_OPEN) ws.send(formatLinkHello(granted, TX_HELLO_PREFIX));
          taken = true;
        }
        ignored[taken ? 'hello' : 'text'] = (ignored[taken ? 'hello' : 'text'] ?? 0) + 1;
        return;
      }
      resetIdle();
      room.lastUsed = Date.now();
      port.input(ownFrame(data));
    });
    ws.on('error', (e) => {
      // e.g. a message over maxMessageBytes (ws closes with 1009)
      const key = `error-${(e as NodeJS.ErrnoException).code ?? 'other'}`;
      closed[key] = (closed[key] ?? 0) + 1;
      if (/max payload|too big/i.test(e.message)) countDrop(port.counters, 'too-big');
    });
    ws.on('close', () => {
      if (idle) clearTimeout(idle);
      if (ping) clearInterval(ping);
      port.detach();
      if (port.mac) {
        room.gateway?.clientLeft(port.mac);
        link?.clientLeft(room.name, port.mac);
      }
      room.clients.delete(ws);
      room.lastUsed = Date.now();
      o.log?.(`relay: ${info.remote} left room ${room.name}`);
    });
  };

  server.on('upgrade', onUpgrade);

  return {
    options: o,
    ready: link ? link.ready : Promise.resolve(),
    stats(): RelayStats {
      return {
        rooms: [...rooms.values()].map((r) => ({
          ...r.sw.stats(),
          gateway: r.gateway ? r.gateway.stats() : null,
          clients: [...r.clients.entries()].map(([ws, c]) => ({
            ...c.info,
            portId: c.port.id,
            bufferedBytes: ws.bufferedAmount,
            bufferedFrames: c.sink.queued(),
            superSegmentBytes: c.port.superSegmentBytes,
            superSegmentsIn: c.port.superSegmentsIn,
          })),
        })),
        accepted,
        refused: { ...refused },
        closed: { ...closed },
        ignored: { ...ignored },
        ...(link ? { cluster: link.stats() } : {}),
      };
    },
    async close() {
      shuttingDown = true;
      server.off('upgrade', onUpgrade);
      const closing: Promise<void>[] = [];
      for (const r of rooms.values()) {
        for (const ws of r.clients.keys()) {
          closing.push(new Promise((res) => ws.once('close', () => res())));
          ws.close(1001, 'relay shutting down');
          setTimeout(() => ws.terminate(), 1000).unref();
        }
        r.gateway?.close();
        r.uplink?.leave();
      }
      await Promise.all(closing);
      await link?.close();
      rooms.clear();
      await new Promise<void>((res) => wss.close(() => res()));
    },
  };
}
