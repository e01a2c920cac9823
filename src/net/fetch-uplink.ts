/**
 * The fetch uplink: no server at all. A guest TCP connection to port 80 (or to any port of
 * the gateway, which stands for the browser's own loopback) is read as one HTTP/1.x request,
 * which becomes the page's fetch(); the response streams back as an HTTP/1.0-style reply
 * (Connection: close, body until FIN). What cannot work ends as a TCP reset, never a hang:
 * other ports (HTTPS from the guest, ssh…), a request that is not HTTP or too big, a fetch
 * that fails (no server, no CORS headers on a cross-origin site). UDP goes nowhere.
 *
 * Names: every name outside the lab resolves to FETCH_NAME_ADDRESS; the request's Host header
 * says where it goes, so one address serves every name.
 */
import { parseIp } from '../wire/ipv4.ts';
import type { HostUdpSocket, TcpTarget, Uplink, UdpRemote } from '../relay/uplink.ts';
import { SocketEvents } from './socket-events.ts';

/** 198.18.0.1 (RFC 2544 benchmarking range): never a real host, so never confused with one. */
export const FETCH_NAME_ADDRESS = '198.18.0.1';
/** A request head longer than this is refused (bound on what one connection buffers). */
export const MAX_REQUEST_HEAD = 16 * 1024;
/** Request bodies larger than this are refused (they are buffered whole before fetch()). */
export const MAX_REQUEST_BODY = 4 * 1024 * 1024;
/** Methods passed on to fetch() (CONNECT and TRACE are not allowed there). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
/** Request headers fetch() may not set (the browser owns them) or that describe our framing. */
const DROPPED_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'expect', 'user-agent', 'accept-encoding', 'cookie', 'origin', 'referer']);

export interface HttpRequestHead {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  host: string | undefined;
  contentLength: number;
  /** Bytes of the head, CRLFCRLF included. */
  length: number;
}

/** Parses a request head from `buf`; undefined: need more bytes; Error: not a request we serve. */
export function parseRequestHead(buf: Uint8Array): HttpRequestHead | undefined | Error {
  let end = -1;
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) {
      end = i + 1;
      break;
    }
  }
  if (end < 0) return buf.length > MAX_REQUEST_HEAD ? new Error('request head too long') : undefined;
  if (end > MAX_REQUEST_HEAD) return new Error('request head too long');
  const text = new TextDecoder('latin1').decode(buf.subarray(0, end - 4));
  const [requestLine, ...lines] = text.split('\r\n');
  const m = /^([A-Z]+) (\/[^ ]*|[a-z]+:\/\/[^ ]+) HTTP\/1\.[01]$/.exec(requestLine);
  if (!m || !METHODS.has(m[1])) return new Error('not an HTTP request');
  const headers: Array<[string, string]> = [];
  let host: string | undefined;
  let contentLength = 0;
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return new Error('malformed header');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'host') host = value;
    else if (name === 'transfer-encoding') return new Error('chunked request bodies are not supported');
    else if (name === 'content-length') {
      if (!/^\d{1,10}$/.test(value)) return new Error('bad content-length');
      contentLength = Number(value);
      if (contentLength > MAX_REQUEST_BODY) return new Error('request body too large');
    }
    if (!DROPPED_HEADERS.has(name) && !name.startsWith('proxy-') && !name.startsWith('sec-')) headers.push([name, value]);
  }
  let path = m[2];
  if (!path.startsWith('/')) {
    // An absolute-form target (a proxy-style request): its authority is the host.
    const u = new URL(path);
    host = u.host;
    path = u.pathname + u.search;
  }
  return { method: m[1], path, headers, host, contentLength, length: end };
}

/**
 * The URL a request goes to: the gateway's connections go to the browser's loopback at the
 * same port (as `--nat host` does for the relay), others to their Host header on port 80.
 */
export function fetchUrl(target: TcpTarget, toLoopback: boolean, head: HttpRequestHead): string | Error {
  if (toLoopback) return `http://${target.host}:${target.port}${head.path}`;
  const host = head.host;
  if (!host || !/^[a-z0-9.-]+(:\d{1,5})?$/i.test(host)) return new Error('no usable Host header');
  return `http://${host}${head.path}`;
}

const STATUS_TEXT_FALLBACK = 'Status';

class FetchSocket extends SocketEvents {
  private buf = new Uint8Array(0);
  private head: HttpRequestHead | undefined;
  private started = false;
  private readonly abort = new AbortController();
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private paused = false;
  private pumping = false;
  readonly writableLength = 0;

  constructor(
    private readonly target: TcpTarget,
    private readonly toLoopback: boolean,
    private readonly fetchImpl: typeof fetch,
    private readonly refuse: string | undefined,
  ) {
    super();
    // Accept the connection at once (the guest must send its request before we can know
    // where it goes); a port that cannot work is refused (the guest's SYN gets an RST).
    queueMicrotask(() => (this.refuse ? this.fail() : this.opened()));
  }

  write(data: Uint8Array): boolean {
    if (this.destroyed || this.started) return true;
    const next = new Uint8Array(this.buf.length + data.length);
    next.set(this.buf);
    next.set(data, this.buf.length);
    this.buf = next;
    if (!this.head) {
      const head = parseRequestHead(this.buf);
      if (head === undefined) return true;
      if (head instanceof Error) return this.fail(), true;
      this.head = head;
    }
    if (this.buf.length >= this.head.length + this.head.contentLength) this.start(this.head);
    else if (this.buf.length > MAX_REQUEST_HEAD + MAX_REQUEST_BODY) this.fail();
    return true;
  }

  /** The guest half-closed: a request still incomplete never will be. */
  end(): this {
    if (!this.started) this.fail();
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    void this.pump();
    return this;
  }

  protected teardown(): void {
    this.abort.abort();
    void this.reader?.cancel().catch(() => undefined);
  }

  private fail(): void {
    this.resetAndDestroy();
  }

  private start(head: HttpRequestHead): void {
    this.started = true;
    const url = fetchUrl(this.target, this.toLoopback, head);
    if (url instanceof Error) return this.fail();
    const body = head.contentLength > 0 ? this.buf.slice(head.length, head.length + head.contentLength) : undefined;
    this.buf = new Uint8Array(0);
    this.fetchImpl(url, {
      method: head.method,
      headers: head.headers,
      body: head.method === 'GET' || head.method === 'HEAD' ? undefined : body,
      signal: this.abort.signal,
      redirect: 'manual',
      credentials: 'omit',
    }).then(
      (res) => this.respond(res, head.method === 'HEAD'),
      () => this.fail(),
    );
  }

  private respond(res: Response, headOnly: boolean): void {
    if (this.destroyed) return;
    // An opaque redirect (redirect: 'manual') has status 0: nothing we can pass on.
    if (res.type === 'opaqueredirect' || res.status === 0) return this.fail();
    const lines = [`HTTP/1.0 ${res.status} ${res.statusText || STATUS_TEXT_FALLBACK}`];
    // fetch() already undid any content-encoding, so the length may differ: body until FIN.
    res.headers.forEach((value, name) => {
      if (name !== 'content-length' && name !== 'content-encoding' && name !== 'transfer-encoding' && name !== 'connection') lines.push(`${name}: ${value}`);
    });
    lines.push('connection: close', '', '');
    this.data(new TextEncoder().encode(lines.join('\r\n')));
    if (headOnly || !res.body) return this.done();
    this.reader = res.body.getReader();
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping || !this.reader) return;
    this.pumping = true;
    try {
      while (!this.paused && !this.destroyed) {
        const { done, value } = await this.reader.read();
        if (done) return this.done();
        this.data(value);
      }
    } catch {
      this.fail(); // the response broke off mid-body: the guest must not take it as complete
    } finally {
      this.pumping = false;
    }
  }

  private done(): void {
    this.remoteEnded();
    // Close once the NAT has sent our FIN (it closes on its own when both sides are done).
    queueMicrotask(() => this.finish(false));
  }
}

/** UDP has nowhere to go without a server: datagrams are dropped (DNS is answered by the gateway). */
class NoUdp implements HostUdpSocket {
  send(_msg: Uint8Array, _port: number, _address: string, callback: (err: Error | null) => void): void {
    callback(new Error('no UDP in fetch mode'));
  }
  on(_event: 'message' | 'error', _listener: ((msg: Uint8Array, remote: UdpRemote) => void) | ((err: Error) => void)): this {
    return this;
  }
  bind(): this {
    return this;
  }
  close(): this {
    return this;
  }
}

export interface FetchUplinkOptions {
  /** Where the gateway's own address goes (the NAT's hostAddress); default 127.0.0.1. */
  loopback?: string;
  fetch?: typeof fetch;
}

export function fetchUplink(opts: FetchUplinkOptions = {}): Uplink {
  const loopback = opts.loopback ?? '127.0.0.1';
  const fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
  const nameAddress = parseIp(FETCH_NAME_ADDRESS);
  return {
    connectTcp(target) {
      const toLoopback = target.host === loopback;
      const refuse = toLoopback || target.port === 80 ? undefined : `port ${target.port}: only HTTP (port 80) works in fetch mode`;
      return new FetchSocket(target, toLoopback, fetchImpl, refuse);
    },
    createUdp: () => new NoUdp(),
    lookup: async () => [nameAddress],
  };
}
