/** A hand-driven guest TCP endpoint for gateway tests (the relay's and the worker's uplinks). */
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from '../wire/tcp.ts';
import { type FakeGuest, GW_IP } from './testing.ts';

export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A hand-driven guest TCP endpoint: sends segments, collects and (optionally) ACKs what arrives. */
export class GuestTcp {
  readonly segments: TcpSegment[] = [];
  readonly data: number[] = [];
  iss = 1000;
  sndNxt = 1001;
  rcvNxt = 0;
  /** The relay's last ACK and window. */
  peerAck = 0;
  peerWindow = 0;
  synAck: TcpSegment | null = null;
  gotFin = false;
  gotRst = false;
  autoAck = true;
  window = 65535;
  /** Return true to lose a segment toward the guest. */
  lose: (s: TcpSegment) => boolean = () => false;
  maxInFlightSeen = 0;
  /** The ack number of the guest's last ACK (what the relay may count as delivered). */
  lastAckSent = 0;

  constructor(
    readonly guest: FakeGuest,
    readonly srcPort: number,
    readonly dstPort: number,
    readonly dst = GW_IP,
  ) {
    const prev = guest.filter;
    guest.filter = (d) => {
      if (!d.tcp || d.tcp.dstPort !== srcPort || d.tcp.srcPort !== dstPort) return prev(d);
      const s = { ...d.tcp, payload: d.tcp.payload.slice() };
      if (this.lose(s)) return false;
      this.onSegment(s);
      return false;
    };
  }

  private onSegment(s: TcpSegment): void {
    this.segments.push(s);
    if (s.flags & TCP_RST) {
      this.gotRst = true;
      return;
    }
    if (s.flags & TCP_ACK) {
      this.peerAck = s.ack;
      this.peerWindow = s.window;
    }
    if (s.flags & TCP_SYN) {
      this.synAck = s;
      this.rcvNxt = (s.seq + 1) >>> 0;
      return;
    }
    if (s.payload.length && s.seq === this.rcvNxt) {
      this.data.push(...s.payload);
      this.rcvNxt = (this.rcvNxt + s.payload.length) >>> 0;
    }
    if (s.flags & TCP_FIN && ((s.seq + s.payload.length) >>> 0) === this.rcvNxt && !this.gotFin) {
      this.gotFin = true;
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
    }
    if (this.autoAck && (s.payload.length || s.flags & TCP_FIN)) queueMicrotask(() => this.ack());
  }

  seg(flags: number, payload?: Uint8Array, seq = this.sndNxt, options?: { mss?: number; windowScale?: number }): void {
    if (flags & TCP_ACK) this.lastAckSent = this.rcvNxt;
    this.guest.tcp({ dst: this.dst, srcPort: this.srcPort, dstPort: this.dstPort, seq, ack: flags & TCP_ACK ? this.rcvNxt : 0, flags, window: this.window, payload, options });
  }

  ack(): void {
    this.seg(TCP_ACK);
  }

  /** `windowScale`: offer RFC 7323 window scaling with this shift (the `window` field is then sent as is, already scaled). */
  async connect(mss = 1400, windowScale?: number): Promise<TcpSegment> {
    this.seg(TCP_SYN, undefined, this.iss, { mss, windowScale });
    await until(() => this.synAck !== null || this.gotRst, 3000, 'SYN-ACK');
    if (!this.synAck) throw new Error('reset');
    this.ack();
    return this.synAck;
  }

  /** Sends `data` in MSS pieces within the relay's advertised window. */
  async send(data: Uint8Array, mss = 1400): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const inFlight = (this.sndNxt - this.peerAck) >>> 0;
      this.maxInFlightSeen = Math.max(this.maxInFlightSeen, inFlight);
      const room = this.peerWindow - inFlight;
      if (room <= 0) {
        const was = this.peerAck;
        await until(() => this.peerAck !== was || this.peerWindow - ((this.sndNxt - this.peerAck) >>> 0) > 0, 5000, 'window');
        continue;
      }
      const len = Math.min(mss, room, data.length - off);
      this.seg(TCP_ACK | TCP_PSH, data.subarray(off, off + len));
      this.sndNxt = (this.sndNxt + len) >>> 0;
      off += len;
      if (off % (mss * 8) === 0) await new Promise((r) => setImmediate(r));
    }
  }

  fin(): void {
    this.seg(TCP_FIN | TCP_ACK);
    this.sndNxt = (this.sndNxt + 1) >>> 0;
  }
}
