/**
 * The wisp uplink: the worker's gateway sends guest TCP and UDP out as streams over one
 * WebSocket to a wisp server (v1). The server resolves names: the gateway's DNS hands the
 * guest a stand-in address per name (198.18.0.0/15) and a connection to it becomes a CONNECT
 * to the name, so whatever the server can resolve (its `localhost` too) works for the guest,
 * with no DNS traffic of our own. Reconnects with backoff; when the WebSocket goes, every
 * stream ends as a reset for the guest and `onState` says why.
 *
 * Wisp v1 has no half-close, and a CLOSE ends a stream at once: a server may drop what it still
 * buffers toward the host (wisp-js does). So a guest FIN becomes a CLOSE only once the stream
 * has been quiet both ways for FIN_QUIET_MS: the server has written out what the guest sent,
 * and a reply that follows the FIN (a request, then the response) still comes back.
 */
import type { WebSocketConstructor, WebSocketLike } from '../../backends/websocket-frame-link.ts';
import { parseIp } from '../../wire/ipv4.ts';
import type { HostSocket, HostUdpSocket, TcpTarget, UdpRemote, Uplink } from '../../relay/uplink.ts';
import { SocketEvents } from '../socket-events.ts';
import {
  WISP_CLOSE,
  WISP_CLOSE_VOLUNTARY,
  WISP_CONNECT,
  WISP_CONTINUE,
  WISP_DATA,
  WISP_STREAM_TCP,
  WISP_STREAM_UDP,
  type WispPacket,
  decodeWisp,
  encodeWisp,
} from './packet.ts';

/** Stand-in addresses for names: 198.18.0.0/15 (RFC 2544), never a real host. */
const NAME_BASE = parseIp('198.18.0.0');
/** Names remembered at once (bound on the table; the oldest is reused beyond it). */
export const MAX_NAMES = 4096;
/** Open streams at once (the gateway's NAT limits are higher; a server may allow fewer). */
export const MAX_STREAMS = 512;
/**
 * Bytes all streams together may take from the server while the guest is not reading (wisp
 * v1 has no flow control toward the client); the stream that goes beyond is reset.
 */
export const MAX_UNREAD_BYTES = 64 * 1024 * 1024;
/** Quiet time after a guest FIN before the stream's CLOSE (see above). */
export const FIN_QUIET_MS = 1000;
/**
 * Largest DATA packet we send (servers bound messages; ours at 64 KiB). Bytes waiting for
 * CONTINUE credit count as the socket's writableLength, which shrinks the guest's TCP window.
 */
const DATA_CHUNK = 16 * 1024;
/** UDP streams per flow socket (one per destination). */
const MAX_UDP_DESTINATIONS = 16;

export interface WispState {
  up: boolean;
  /** Why not up: the URL and what happened. */
  problem?: string;
  retryInMs?: number;
}

export interface WispUplinkOptions {
  WebSocket: WebSocketConstructor;
  onState?: (s: WispState) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Default MAX_UNREAD_BYTES. */
  maxUnreadBytes?: number;
}

interface StreamEnd {
  onData(data: Uint8Array): void;
  onContinue(credit: number): void;
  onClose(reason: number | null): void;
}

export class WispUplink implements Uplink {
  private ws: WebSocketLike | undefined;
  private ready = false;
  private initialCredit = 0;
  private readonly streams = new Map<number, StreamEnd>();
  private nextId = 1;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly names = new Map<string, number>();
  private readonly byAddress = new Map<number, string>();
  private nextName = 0;
  /** Bytes streams took while their guest was not reading (bound: MAX_UNREAD_BYTES). */
  unread = 0;
  /** Counters for the panel and tests. */
  readonly stats = { opens: 0, streams: 0, protocolErrors: 0 };

  readonly maxUnreadBytes: number;

  constructor(
    readonly url: string,
    private readonly opts: WispUplinkOptions,
  ) {
    this.maxUnreadBytes = opts.maxUnreadBytes ?? MAX_UNREAD_BYTES;
    this.connect();
  }

  get up(): boolean {
    return this.ready;
  }

  lookup = async (name: string): Promise<number[]> => {
    const key = name.toLowerCase();
    let ip = this.names.get(key);
    if (ip === undefined) {
      ip = NAME_BASE + 1 + (this.nextName++ % MAX_NAMES);
      const old = this.byAddress.get(ip);
      if (old !== undefined) this.names.delete(old);
      this.names.set(key, ip);
      this.byAddress.set(ip, key);
    }
    return [ip];
  };

  /** The host a CONNECT names: the guest's name for a stand-in address, else the address. */
  hostFor(host: string): string {
    let ip: number;
    try {
      ip = parseIp(host);
    } catch {
      return host;
    }
    return this.byAddress.get(ip) ?? host;
  }

  connectTcp(target: TcpTarget): HostSocket {
    return new WispTcpSocket(this, this.hostFor(target.host), target.port);
  }

  createUdp(): HostUdpSocket {
    return new WispUdpSocket(this);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.drop();
  }

  /** Opens a stream; undefined when the server is not there (the caller resets). */
  open(streamType: number, hostname: string, port: number, end: StreamEnd): { id: number; credit: number } | undefined {
    if (!this.ready || this.streams.size >= MAX_STREAMS) return undefined;
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    this.streams.set(id, end);
    this.stats.streams++;
    this.send({ type: WISP_CONNECT, streamId: id, streamType, port, hostname });
    return { id, credit: this.initialCredit };
  }

  send(p: WispPacket): void {
    try {
      this.ws?.send(encodeWisp(p) as Uint8Array<ArrayBuffer>);
    } catch {
      // closing: the close handler resets the streams
    }
  }

  /** Our side ends a stream (guest closed or reset it). */
  finish(id: number, reason = WISP_CLOSE_VOLUNTARY): void {
    if (!this.streams.delete(id)) return;
    this.send({ type: WISP_CLOSE, streamId: id, reason });
  }

  private connect(): void {
    if (this.closed) return;
    let ws: WebSocketLike;
    try {
      ws = new this.opts.WebSocket(this.url);
    } catch (e) {
      return this.retry(`${this.url}: ${(e as Error).message}`);
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onerror = () => {};
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      const data = ev.data;
      if (!(data instanceof ArrayBuffer)) return this.protocolError(ws, 'a text message');
      const p = decodeWisp(new Uint8Array(data));
      if (p instanceof Error) return this.protocolError(ws, p.message);
      this.packet(p);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      const code = (ev as { code?: unknown } | undefined)?.code;
      const why = typeof code === 'number' && code !== 1005 && code !== 1006 ? ` (code ${code})` : '';
      this.drop();
      this.retry(opened ? `${this.url}: closed by the server${why}` : `${this.url}: unreachable (could not connect${why})`);
    };
  }

  private protocolError(ws: WebSocketLike, what: string): void {
    this.stats.protocolErrors++;
    this.ws = undefined;
    ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
    try {
      ws.close(1002, 'protocol error');
    } catch {
      /* already closing */
    }
    this.drop();
    this.retry(`${this.url}: not a wisp server (${what})`);
  }

  private packet(p: WispPacket): void {
    if (p.streamId === 0) {
      // The server's initial CONTINUE: the link is usable.
      if (p.type === WISP_CONTINUE && !this.ready) {
        this.initialCredit = p.bufferRemaining;
        this.ready = true;
        this.failures = 0;
        this.stats.opens++;
        this.opts.onState?.({ up: true });
      }
      return;
    }
    const end = this.streams.get(p.streamId);
    if (!end) return; // a stream we already closed
    switch (p.type) {
      case WISP_DATA:
        return end.onData(p.data.slice());
      case WISP_CONTINUE:
        return end.onContinue(p.bufferRemaining);
      case WISP_CLOSE:
        this.streams.delete(p.streamId);
        return end.onClose(p.reason);
      default:
        return; // a server never sends CONNECT
    }
  }

  /** The WebSocket is gone: every stream ends as a reset. */
  private drop(): void {
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
      try {
        ws.close(1000, 'closed');
      } catch {
        /* already closing */
      }
    }
    this.ready = false;
    const ends = [...this.streams.values()];
    this.streams.clear();
    for (const e of ends) e.onClose(null);
  }

  private retry(problem: string): void {
    if (this.closed) return;
    this.failures++;
    const base = Math.min(this.opts.maxBackoffMs ?? 10_000, (this.opts.minBackoffMs ?? 500) * 2 ** Math.max(0, this.failures - 1));
    const delay = Math.round(base * (0.5 + 0.5 * Math.random()));
    this.opts.onState?.({ up: false, problem, retryInMs: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

class WispTcpSocket extends SocketEvents implements StreamEnd {
  private id = 0;
  private credit = 0;
  private queue: Uint8Array[] = [];
  writableLength = 0;
  private ending = false;
  private paused = false;
  private unread = 0;
  private quietTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly wisp: WispUplink,
    hostname: string,
    port: number,
  ) {
    super();
    const opened = wisp.open(WISP_STREAM_TCP, hostname, port, this);
    // v1 has no CONNECT reply: the stream is usable at once and a CLOSE says it failed.
    queueMicrotask(() => {
      if (!opened) return this.finish(true);
      this.id = opened.id;
      this.credit = opened.credit;
      this.opened();
      this.flush();
    });
  }

  write(data: Uint8Array): boolean {
    if (this.destroyed || this.ending) return false;
    for (let at = 0; at < data.length; at += DATA_CHUNK) this.queue.push(data.slice(at, at + DATA_CHUNK));
    this.writableLength += data.length;
    this.flush();
    return this.writableLength === 0;
  }

  end(): this {
    this.ending = true;
    this.flush();
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    this.forgetUnread();
    return this;
  }

  onData(data: Uint8Array): void {
    if (this.paused) {
      this.unread += data.length;
      if ((this.wisp.unread += data.length) > this.wisp.maxUnreadBytes) {
        // The server does not stop for a guest that is not reading: bound what we hold.
        this.wisp.finish(this.id, WISP_CLOSE_VOLUNTARY);
        return this.finish(true);
      }
    }
    if (this.quietTimer !== undefined) this.closeWhenQuiet();
    this.data(data);
  }

  onContinue(credit: number): void {
    this.credit = credit;
    this.flush();
  }

  onClose(reason: number | null): void {
    if (reason === WISP_CLOSE_VOLUNTARY) {
      this.remoteEnded();
      // Our FIN goes out first (the NAT sends it on 'end'); then the stream is over.
      queueMicrotask(() => this.finish(false));
    } else {
      this.finish(true);
    }
  }

  protected teardown(): void {
    if (this.id) this.wisp.finish(this.id, WISP_CLOSE_VOLUNTARY);
  }

  protected override finish(hadError: boolean): void {
    clearTimeout(this.quietTimer);
    this.forgetUnread();
    super.finish(hadError);
  }

  private forgetUnread(): void {
    this.wisp.unread -= this.unread;
    this.unread = 0;
  }

  /** After the guest's FIN: CLOSE once nothing has moved either way for FIN_QUIET_MS. */
  private closeWhenQuiet(): void {
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => {
      if (!this.id || this.destroyed) return;
      const id = this.id;
      this.id = 0;
      this.wisp.finish(id, WISP_CLOSE_VOLUNTARY);
      this.remoteEnded();
      queueMicrotask(() => this.finish(false));
    }, FIN_QUIET_MS);
  }

  private flush(): void {
    if (!this.id || this.destroyed) return;
    let drained = false;
    while (this.queue.length && this.credit > 0) {
      const chunk = this.queue.shift()!;
      this.credit--;
      this.writableLength -= chunk.length;
      this.wisp.send({ type: WISP_DATA, streamId: this.id, data: chunk });
      drained = true;
    }
    if (drained && this.writableLength === 0) this.emit('drain');
    // No half-close in wisp v1: a CLOSE, once quiet, is all a FIN can become.
    if (this.ending && this.queue.length === 0 && (drained || this.quietTimer === undefined)) this.closeWhenQuiet();
  }
}

/** A UDP flow's socket: one wisp UDP stream per destination, each datagram one DATA packet. */
class WispUdpSocket implements HostUdpSocket {
  private readonly streams = new Map<string, { id: number; remote: UdpRemote }>();
  private onMessage: ((msg: Uint8Array, remote: UdpRemote) => void) | undefined;

  constructor(private readonly wisp: WispUplink) {}

  send(msg: Uint8Array, port: number, address: string, callback: (err: Error | null) => void): void {
    const key = `${address}:${port}`;
    let s = this.streams.get(key);
    if (!s) {
      if (this.streams.size >= MAX_UDP_DESTINATIONS) return callback(new Error('too many UDP destinations'));
      const remote: UdpRemote = { address, port, family: 'IPv4' };
      const opened = this.wisp.open(WISP_STREAM_UDP, this.wisp.hostFor(address), port, {
        onData: (data) => this.onMessage?.(data, remote),
        onContinue: () => {},
        onClose: () => this.streams.delete(key),
      });
      if (!opened) return callback(new Error('wisp server not connected'));
      s = { id: opened.id, remote };
      this.streams.set(key, s);
    }
    // UDP is not flow-controlled in wisp: a lost datagram is UDP's business.
    this.wisp.send({ type: WISP_DATA, streamId: s.id, data: msg.slice() });
    callback(null);
  }

  on(event: 'message' | 'error', listener: ((msg: Uint8Array, remote: UdpRemote) => void) | ((err: Error) => void)): this {
    if (event === 'message') this.onMessage = listener as (msg: Uint8Array, remote: UdpRemote) => void;
    // Errors: a stream that fails just closes (UDP has no error to pass on).
    return this;
  }

  bind(): this {
    return this;
  }

  close(): this {
    for (const s of this.streams.values()) this.wisp.finish(s.id);
    this.streams.clear();
    return this;
  }
}
