/**
 * A wisp (v1) server on the lab's HTTP server at `/wisp/`: stock v86's wisp backend and the
 * page's `?net=wisp` reach this host's TCP and UDP through it. The relay's NAT policy
 * applies to its streams: 'off' refuses every stream, 'host' allows only this host's
 * loopback (`localhost`, 127.0.0.1: what 10.0.2.2 stands for in the gateway), 'all' any
 * host the server can resolve, except the unspecified and multicast ranges.
 *
 * Bounds: streams per connection (maxStreams), a stream's unsent bytes toward its host socket
 * (flow control by CONTINUE credit, and a hard cap), WebSocket bytes queued toward the client
 * (host sockets pause beyond it), message size (ws maxPayload).
 */
import dgram from 'node:dgram';
import type { IncomingMessage, Server } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  WISP_CLOSE,
  WISP_CLOSE_BLOCKED,
  WISP_CLOSE_INVALID,
  WISP_CLOSE_NETWORK_ERROR,
  WISP_CLOSE_REFUSED,
  WISP_CLOSE_THROTTLED,
  WISP_CLOSE_UNREACHABLE,
  WISP_CLOSE_VOLUNTARY,
  WISP_CONNECT,
  WISP_CONTINUE,
  WISP_DATA,
  WISP_STREAM_TCP,
  WISP_STREAM_UDP,
  type WispPacket,
  decodeWisp,
  encodeWisp,
} from '../net/wisp/packet.ts';
import type { NatPolicy } from './nat-policy.ts';

export interface WispServerOptions {
  /** Default '/wisp/' ('/wisp' too). */
  path: string;
  nat: NatPolicy;
  /** Required as ?token= when set (as for the relay). */
  token: string | null;
  /** Allowed Origin values; null: no Origin, or one whose host is the Host header. */
  allowedOrigins: string[] | '*' | null;
  maxStreams: number;
  /** DATA packets a client may send on a stream before our CONTINUE. */
  credit: number;
  /** Bytes queued toward the client before host sockets pause. */
  maxBufferedBytes: number;
  /**
   * Upgrade paths another listener answers (the relay's /relay/…); others get a 404 rather
   * than a socket left hanging. Default: none when this is the server's only upgrade listener.
   */
  othersPath?: string;
}

export const DEFAULT_WISP_OPTIONS: WispServerOptions = {
  path: '/wisp/',
  nat: 'host',
  token: null,
  allowedOrigins: null,
  maxStreams: 128,
  credit: 128,
  maxBufferedBytes: 4 * 1024 * 1024,
};

/** A stream's bytes waiting for its host socket beyond which it is closed (a client ignoring credit). */
const MAX_STREAM_BACKLOG = 8 * 1024 * 1024;
/**
 * This host's loopback, by name; 10.0.2.2 too, the lab gateway's address, which stands for the
 * loopback of whatever makes the outside connection (stock v86's own wisp gateway sends it as is).
 */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', 'ip6-localhost', '10.0.2.2']);

/** Where a CONNECT may go under `nat`, or null (blocked). */
export function wispTarget(nat: NatPolicy, hostname: string): string | null {
  const h = hostname.toLowerCase();
  if (nat === 'off' || h === '' ) return null;
  if (LOOPBACK_NAMES.has(h) || h.endsWith('.localhost')) return '127.0.0.1';
  if (nat !== 'all') return null;
  if (net.isIPv4(h)) {
    const first = Number(h.split('.')[0]);
    if (first === 0 || first >= 224) return null;
  }
  return h;
}

export interface WispServer {
  readonly connections: number;
  close(): void;
}

interface Stream {
  tcp?: net.Socket;
  udp?: dgram.Socket;
  credit: number;
}

export function attachWispServer(server: Server, options: Partial<WispServerOptions> = {}): WispServer {
  const o = { ...DEFAULT_WISP_OPTIONS, ...options };
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
  const base = o.path.replace(/\/+$/, '');

  const refuse = (socket: Duplex, status: number, text: string) => {
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  };

  const originOk = (req: IncomingMessage) => {
    const origin = req.headers.origin;
    if (!origin) return true;
    if (o.allowedOrigins === '*') return true;
    if (o.allowedOrigins) return o.allowedOrigins.includes(origin);
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== base && url.pathname !== `${base}/`) {
      const theirs = o.othersPath !== undefined ? url.pathname.startsWith(o.othersPath) : server.listenerCount('upgrade') > 1;
      if (!theirs) refuse(socket, 404, 'Not Found');
      return;
    }
    if (o.token !== null && url.searchParams.get('token') !== o.token) return refuse(socket, 401, 'Unauthorized');
    if (!originOk(req)) return refuse(socket, 403, 'Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws));
  };

  function serve(ws: WebSocket): void {
    const streams = new Map<number, Stream>();
    let paused = false;
    const send = (p: WispPacket) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(encodeWisp(p), () => checkBuffer());
      checkBuffer();
    };
    // Host sockets pause while the client is slow to take what we send.
    const checkBuffer = () => {
      const over = ws.bufferedAmount > o.maxBufferedBytes;
      if (over === paused) return;
      paused = over;
      for (const s of streams.values()) (over ? s.tcp?.pause() : s.tcp?.resume());
    };
    const close = (id: number, reason: number, tell = true) => {
      const s = streams.get(id);
      if (!s) return;
      streams.delete(id);
      // A client's voluntary CLOSE is all a wisp v1 FIN can be: let what it sent reach the host.
      if (!tell && reason === WISP_CLOSE_VOLUNTARY && s.tcp && !s.tcp.destroyed) {
        const tcp = s.tcp;
        tcp.end();
        setTimeout(() => tcp.destroy(), 30_000).unref();
      } else s.tcp?.destroy();
      try {
        s.udp?.close();
      } catch {
        /* closed */
      }
      if (tell) send({ type: WISP_CLOSE, streamId: id, reason });
    };

    const connect = (id: number, streamType: number, hostname: string, port: number) => {
      if (streams.has(id) || id === 0) return send({ type: WISP_CLOSE, streamId: id, reason: WISP_CLOSE_INVALID });
      if (streams.size >= o.maxStreams) return send({ type: WISP_CLOSE, streamId: id, reason: WISP_CLOSE_THROTTLED });
      const host = wispTarget(o.nat, hostname);
      if (!host || port === 0) return send({ type: WISP_CLOSE, streamId: id, reason: WISP_CLOSE_BLOCKED });
      const s: Stream = { credit: o.credit };
      streams.set(id, s);
      if (streamType === WISP_STREAM_UDP) {
        const udp = dgram.createSocket('udp4');
        s.udp = udp;
        udp.on('message', (msg) => send({ type: WISP_DATA, streamId: id, data: msg }));
        udp.on('error', () => close(id, WISP_CLOSE_NETWORK_ERROR));
        udp.connect(port, host, () => undefined);
        return;
      }
      if (streamType !== WISP_STREAM_TCP) return close(id, WISP_CLOSE_INVALID);
      const tcp = net.connect({ host, port });
      s.tcp = tcp;
      tcp.setNoDelay(true);
      if (paused) tcp.pause();
      tcp.on('data', (data: Buffer) => send({ type: WISP_DATA, streamId: id, data }));
      tcp.on('drain', () => grant(id));
      tcp.on('error', (e: NodeJS.ErrnoException) => {
        const reason = e.code === 'ECONNREFUSED' ? WISP_CLOSE_REFUSED : e.code === 'ENOTFOUND' || e.code === 'EHOSTUNREACH' ? WISP_CLOSE_UNREACHABLE : WISP_CLOSE_NETWORK_ERROR;
        close(id, reason);
      });
      tcp.on('close', () => close(id, WISP_CLOSE_VOLUNTARY));
    };

    /** Gives a stream its credit back once its host socket took what it had. */
    const grant = (id: number) => {
      const s = streams.get(id);
      if (!s || s.tcp?.writableNeedDrain) return;
      if (s.credit <= o.credit / 2) {
        s.credit = o.credit;
        send({ type: WISP_CONTINUE, streamId: id, bufferRemaining: o.credit });
      }
    };

    const data = (id: number, bytes: Uint8Array) => {
      const s = streams.get(id);
      if (!s) return;
      s.credit--;
      if (s.udp) {
        s.udp.send(bytes, (err) => err && close(id, WISP_CLOSE_NETWORK_ERROR));
        return;
      }
      const tcp = s.tcp!;
      if (tcp.writableLength > MAX_STREAM_BACKLOG) return close(id, WISP_CLOSE_THROTTLED);
      tcp.write(bytes);
      grant(id);
    };

    ws.on('message', (raw, isBinary) => {
      if (!isBinary) return ws.close(1003, 'wisp packets are binary');
      const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as ArrayBuffer);
      const p = decodeWisp(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
      if (p instanceof Error) return ws.close(1002, 'bad wisp packet');
      if (p.type === WISP_CONNECT) return connect(p.streamId, p.streamType, p.hostname, p.port);
      if (p.type === WISP_DATA) return data(p.streamId, p.data);
      if (p.type === WISP_CLOSE) return close(p.streamId, p.reason, false);
      // CONTINUE from a client: not a thing in v1.
    });
    ws.on('close', () => {
      for (const id of [...streams.keys()]) close(id, WISP_CLOSE_VOLUNTARY, false);
    });
    ws.on('error', () => undefined);
    send({ type: WISP_CONTINUE, streamId: 0, bufferRemaining: o.credit });
  }

  server.on('upgrade', onUpgrade);
  return {
    get connections() {
      return wss.clients.size;
    },
    close() {
      server.off('upgrade', onUpgrade);
      for (const c of wss.clients) c.terminate();
      wss.close();
    },
  };
}
