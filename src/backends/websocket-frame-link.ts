/**
 * FrameLink over a WebSocket to the relay (or to websockproxy): one binary message = one
 * Ethernet frame, no header. Works with the browser's WebSocket and with the `ws` package
 * in Node (pass its constructor). Reconnects by itself with exponential backoff and jitter,
 * so a relay restart is a link down/up for the guest, not a dead NIC.
 *
 * The NIC's offer of super-segments (offerSuperSegments) goes to the relay as a text hello
 * (src/wire/link-hello.ts), again after every reconnect: a new connection is a new switch
 * port that knows nothing of the last one's. So does its tx hello, on every connection: the
 * relay's answer says how large a super-segment the NIC may send (superSegmentSendLimit),
 * and until it comes (from a relay that does not know the hello, never) the NIC sends MTU
 * frames.
 */
import { SUPER_SEGMENT_MAX_FRAME, TX_HELLO_PREFIX, formatLinkHello, parseLinkHello } from '../wire/link-hello.ts';
import type { FrameLink, FrameLinkEvents } from './frame-link.ts';

/**
 * What we use of a WebSocket. Handlers are declared method-style (bivariant) so both the DOM
 * WebSocket (MessageEvent) and ws's WebSocket (its own event types) fit without casts.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  /** A binary message (a frame) or a text one (the hello). */
  send(data: Uint8Array<ArrayBuffer> | string): void;
  close(code?: number, reason?: string): void;
  onopen: EventHandler<unknown> | null;
  onclose: EventHandler<unknown> | null;
  onerror: EventHandler<unknown> | null;
  onmessage: EventHandler<{ data: unknown }> | null;
}
type EventHandler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** WebSocket.OPEN */
const OPEN = 1;

export interface WebSocketFrameLinkOptions {
  /** First and largest reconnect delay (defaults 250 ms, 10 s); doubles per failed attempt. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Refuse sends while the socket has more than this queued (default 1 MiB). */
  maxBufferedBytes?: number;
  /**
   * Why the link is down, for people: the URL and what happened ("closed by the server",
   * "unreachable"), and the delay before the next attempt; undefined once it is up again.
   */
  onProblem?: (problem: string | undefined, retryInMs?: number) => void;
  /** Ask the relay to take super-segments from the NIC (default true). */
  sendSuperSegments?: boolean;
  /**
   * Whether the socket's send() copies the frame before it returns (FrameLink.sendCopies).
   * Default: true for the platform's own WebSocket (the HTML standard has send() copy an
   * ArrayBufferView's bytes), false for others (ws may hold the frame while it compresses).
   */
  sendCopies?: boolean;
  /** For tests: randomness for jitter, and the timer. */
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
}

export interface WebSocketFrameLinkStats {
  /** Connection attempts, successful opens, and closes/failures seen. */
  connects: number;
  opens: number;
  closes: number;
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  /** send() refused: link down, or bufferedAmount over the bound. */
  dropsDown: number;
  dropsBuffered: number;
  /** Empty messages, and text that is no hello: ignored. */
  badMessages: number;
  /** Frames that arrived before attach(). */
  dropsUnattached: number;
  /** Hellos sent (offers and withdrawals, resent ones included). */
  hellosSent: number;
}

export class WebSocketFrameLink implements FrameLink {
  readonly stats: WebSocketFrameLinkStats = {
    connects: 0,
    opens: 0,
    closes: 0,
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    dropsDown: 0,
    dropsBuffered: 0,
    badMessages: 0,
    dropsUnattached: 0,
    hellosSent: 0,
  };
  private socket: WebSocketLike | undefined;
  private events: FrameLinkEvents | undefined;
  private isUp = false;
  private closed = false;
  private failures = 0;
  private timer: unknown;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxBufferedBytes: number;
  private readonly random: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;
  private readonly onProblem: (problem: string | undefined, retryInMs?: number) => void;
  /** What went wrong last, reported with the retry delay. */
  private lastProblem = '';
  /** The NIC's offer of super-segments (0: none), told to every connection. */
  private superSegmentOffer = 0;
  private readonly askToSendSuperSegments: boolean;
  readonly sendCopies: boolean;
  /** What this connection's relay said the NIC may send (0: MTU frames only). */
  private sendLimit = 0;

  /** Connects at once; `attach` starts event delivery. */
  constructor(
    readonly url: string,
    private readonly WebSocketImpl: WebSocketConstructor,
    opts: WebSocketFrameLinkOptions = {},
  ) {
    this.minBackoffMs = opts.minBackoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 1 << 20;
    this.random = opts.random ?? Math.random;
    this.setTimer = opts.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimeout ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
    this.onProblem = opts.onProblem ?? (() => {});
    this.askToSendSuperSegments = opts.sendSuperSegments ?? true;
    this.sendCopies = opts.sendCopies ?? (typeof WebSocket !== 'undefined' && WebSocketImpl === WebSocket);
    this.connect();
  }

  get up(): boolean {
    return this.isUp;
  }

  attach(events: FrameLinkEvents): void {
    if (this.events) throw new Error('WebSocketFrameLink: attach() called twice');
    this.events = events;
  }

  /** Tells the relay now (if connected) and after every reconnect; a repeat of the offer in force sends nothing. */
  offerSuperSegments(maxFrameBytes: number): void {
    const hello = formatLinkHello(maxFrameBytes); // throws on a size no hello can carry
    if (maxFrameBytes === this.superSegmentOffer) return;
    this.superSegmentOffer = maxFrameBytes;
    if (this.isUp) this.sendHello(hello);
  }

  /** The offer in force (0: none). */
  get superSegments(): number {
    return this.superSegmentOffer;
  }

  /** Largest super-segment the relay takes from us on this connection (0: none). */
  get superSegmentSendLimit(): number {
    return this.sendLimit;
  }

  private sendHello(hello: string): void {
    const ws = this.socket;
    if (!ws || ws.readyState !== OPEN) return;
    try {
      ws.send(hello);
      this.stats.hellosSent++;
    } catch {
      // closing: the next connection hears it
    }
  }

  send(frame: Uint8Array): boolean {
    const ws = this.socket;
    if (!this.isUp || !ws || ws.readyState !== OPEN) {
      this.stats.dropsDown++;
      return false;
    }
    // A stalled relay must not make us buffer without bound: drop like a full NIC queue.
    if (ws.bufferedAmount > this.maxBufferedBytes) {
      this.stats.dropsBuffered++;
      return false;
    }
    try {
      // Frames are copies out of guest RAM (plain ArrayBuffers), never shared memory.
      ws.send(frame as Uint8Array<ArrayBuffer>);
    } catch {
      this.stats.dropsDown++;
      return false;
    }
    this.stats.framesOut++;
    this.stats.bytesOut += frame.length;
    return true;
  }

  /** Stop for good: no reconnects, no more events. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
    const ws = this.socket;
    this.socket = undefined;
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
      try {
        ws.close(1000, 'closed');
      } catch {
        // already closing
      }
    }
    this.setUp(false);
    this.events = undefined;
  }

  /** Delay before reconnect attempt number `failures` (1-based): doubling, capped, 50–100% jitter. */
  backoffMs(failures: number): number {
    const base = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** Math.max(0, failures - 1));
    return Math.round(base * (0.5 + 0.5 * this.random()));
  }

  private connect(): void {
    if (this.closed) return;
    this.stats.connects++;
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(this.url);
    } catch (e) {
      // e.g. a malformed URL: keep retrying, the caller sees a link that stays down
      this.lastProblem = `${this.url}: ${(e as Error).message}`;
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.socket = ws;
    ws.onopen = () => {
      if (this.socket !== ws) return;
      this.stats.opens++;
      this.failures = 0;
      this.onProblem(undefined);
      // Before any frame: the port must know what it may send from the start.
      this.sendLimit = 0;
      if (this.superSegmentOffer) this.sendHello(formatLinkHello(this.superSegmentOffer));
      if (this.askToSendSuperSegments) this.sendHello(formatLinkHello(SUPER_SEGMENT_MAX_FRAME, TX_HELLO_PREFIX));
      this.setUp(true);
    };
    ws.onmessage = (event) => {
      if (this.socket !== ws) return;
      this.message(event.data);
    };
    // 'error' is always followed by 'close'; reconnect from there only.
    ws.onerror = () => {};
    let opened = false;
    const onopen = ws.onopen;
    ws.onopen = (ev) => {
      opened = true;
      onopen?.(ev);
    };
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      this.socket = undefined;
      this.sendLimit = 0;
      const code = (ev as { code?: unknown } | undefined)?.code;
      const why = typeof code === 'number' && code !== 1005 && code !== 1006 ? ` (code ${code})` : '';
      // Browsers say nothing more about a failed WebSocket (no status, no error text).
      this.lastProblem = opened ? `${this.url}: closed by the server${why}` : `${this.url}: unreachable (could not connect${why})`;
      this.stats.closes++;
      this.setUp(false);
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    this.failures++;
    const delay = this.backoffMs(this.failures);
    this.onProblem(this.lastProblem || undefined, delay);
    this.timer = this.setTimer(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }

  private message(data: unknown): void {
    let frame: Uint8Array;
    if (typeof data === 'string') {
      // The relay's answer to our tx hello; it never sends one unasked, but check anyway.
      const granted = parseLinkHello(data, TX_HELLO_PREFIX);
      if (granted === undefined || !this.askToSendSuperSegments) this.stats.badMessages++;
      else this.sendLimit = granted;
      return;
    }
    if (data instanceof ArrayBuffer) frame = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    else {
      this.stats.badMessages++;
      return;
    }
    if (frame.length === 0) {
      this.stats.badMessages++;
      return;
    }
    this.stats.framesIn++;
    this.stats.bytesIn += frame.length;
    if (!this.events) {
      this.stats.dropsUnattached++;
      return;
    }
    this.events.onFrame(frame);
  }

  private setUp(up: boolean): void {
    if (this.isUp === up) return;
    this.isUp = up;
    this.events?.onLinkChange(up);
  }
}
