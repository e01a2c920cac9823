/**
 * TCP NAT, terminated in the relay. A guest's connection to (ip, port) ends here: this side
 * speaks TCP to the guest (handshake, MSS, windows both ways, FIN/RST, retransmission
 * toward the guest with an RTO, fast retransmit on three duplicate ACKs, a congestion
 * window so a burst does not overrun the guest's rx queue) and bridges the byte stream to a
 * host socket the uplink opens to the NAT target (uplink.ts: a Node HostSocket in the relay). The SYN-ACK goes out only once that socket has
 * connected, so "connection refused" on the host becomes an RST for the guest.
 *
 * Window scaling (RFC 7323 §2) when the guest's SYN offers it: a guest that ACKs once per
 * 64 KiB super-frame (large receive, GUEST_TSO4) would otherwise stall a 64 KiB window for a
 * round trip per ACK. Slow start grows the congestion window by the bytes acknowledged (the
 * "path" is a lossless local link; per-ACK growth of one MSS would crawl with ACKs that
 * cover 44 segments). No SACK (the link to the guest is ordered and lossless but for a full
 * rx backlog), no timestamps, no urgent data. Out-of-order segments from the guest are
 * dropped and answered with a duplicate ACK.
 *
 * Super-segments: toward a NIC that takes them (hooks.frameLimit above the MTU frame; see
 * src/wire/link-hello.ts) new data goes in segments of up to that frame size, whole MSS
 * multiples when the window or cwnd cuts them short, never beyond either; each carries the
 * guest's MSS in the urgent pointer (URG unset) for the NIC's gso_size. Retransmissions and
 * window probes stay at most one MSS, as toward any other guest.
 */
import { ETH_HLEN, ETH_MIN_FRAME, macEquals } from '../wire/ethernet.ts';
import { IPV4_HEADER_LEN, ipToString } from '../wire/ipv4.ts';
import { type HostSocket, type TcpTarget, afterBurst } from './uplink.ts';
import { TCP_ACK, TCP_FIN, TCP_HEADER_LEN, TCP_PSH, TCP_RST, TCP_SYN, type TcpBuild, type TcpSegment, tcpHeaderLength, writeTcpHeader } from '../wire/tcp.ts';

export interface TcpOptions {
  /** Our MSS toward the guest (capped by the guest's). Default 1460. */
  mss: number;
  /**
   * Receive window we advertise (bytes from the guest the host socket may buffer), default
   * 256 KiB; above 65535 only toward guests that scale windows (else 65535). Bounded at 1 GiB (RFC 7323: shift ≤ 14).
   */
  windowBytes: number;
  /** Bytes from the host socket we hold (unacked + unsent) before pausing it. Default 256 KiB. */
  sendBufferBytes: number;
  rtoInitialMs: number;
  rtoMinMs: number;
  rtoMaxMs: number;
  /** Retransmissions of one segment before the connection is reset. Default 8. */
  maxRetries: number;
  connectTimeoutMs: number;
  /** Linger after both FINs are acknowledged, to re-ACK a retransmitted FIN. Default 2000. */
  timeWaitMs: number;
  /** Connections no segment crossed for this long are reset. Default 2 h. */
  idleTimeoutMs: number;
  maxConnections: number;
}

export const DEFAULT_TCP_OPTIONS: TcpOptions = {
  mss: 1460,
  windowBytes: 256 * 1024,
  sendBufferBytes: 512 * 1024,
  rtoInitialMs: 1000,
  rtoMinMs: 200,
  rtoMaxMs: 30_000,
  maxRetries: 8,
  connectTimeoutMs: 10_000,
  timeWaitMs: 2000,
  idleTimeoutMs: 2 * 3600_000,
  maxConnections: 256,
};

export type { TcpTarget } from './uplink.ts';

/** Room for the Ethernet and IPv4 headers in front of a segment in the frames emit() gets. */
export const TCP_FRAME_HEADROOM = ETH_HLEN + IPV4_HEADER_LEN;

export interface TcpHooks {
  /**
   * Sends a TCP segment to the guest: `tcpLength` bytes (header + data, checksum done) at
   * frame[TCP_FRAME_HEADROOM], the Ethernet and IPv4 headers before it for the hook to write
   * in place; the frame is at least Ethernet's 60 bytes (zero padding after the segment).
   */
  emit(guestMac: Uint8Array, src: number, dst: number, frame: Uint8Array, tcpLength: number): void;
  count(what: string): void;
  /**
   * Largest frame (Ethernet header included) the guest's NIC takes: above the MTU frame when
   * it offered super-segments. Absent: MSS-sized segments only.
   */
  frameLimit?(guestMac: Uint8Array): number;
  /** Opens the host side of a new connection (the uplink's connectTcp). */
  connect: (target: TcpTarget) => HostSocket;
}

export interface TcpConnStats {
  guest: string;
  remote: string;
  target: string;
  state: string;
  bytesToGuest: number;
  bytesFromGuest: number;
  retransmits: number;
}

/** Ends a host socket with an RST (the guest's connection is gone, not finished). */
function abort(s: HostSocket | null): void {
  if (!s || s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

const seqLt = (a: number, b: number) => ((a - b) | 0) < 0;
const seqLe = (a: number, b: number) => ((a - b) | 0) <= 0;
const seqSub = (a: number, b: number) => (a - b) >>> 0;

type State = 'connecting' | 'syn-rcvd' | 'established' | 'time-wait' | 'closed';

class Conn {
  state: State = 'connecting';
  socket: HostSocket | null = null;
  // receive side (guest → us)
  irs: number;
  rcvNxt: number;
  finReceived = false;
  // send side (us → guest)
  readonly iss = (Math.random() * 2 ** 32) >>> 0;
  sndUna: number;
  sndNxt: number;
  sndMax: number;
  sndWnd = 0;
  /** Window shifts (RFC 7323): the guest's, applied to its windows, and ours; 0 without scaling. */
  sndScale = 0;
  rcvScale = 0;
  /** The guest's SYN offered window scaling, so ours goes in the SYN-ACK. */
  readonly scaling: boolean;
  mss: number;
  cwnd: number;
  ssthresh = 1 << 30;
  dupAcks = 0;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 3465 byte counting). */
  caAcked = 0;
  /** A send is scheduled for the end of the host's current burst of reads. */
  sendScheduled = false;
  /** Data from the host not yet acknowledged by the guest, starting at sndUna. */
  queue: Uint8Array[] = [];
  queued = 0;
  hostEnded = false;
  finSent = false;
  /** Set once the FIN's sequence number is fixed (the first time it is sent). */
  finSeqKnown = false;
  finSeq = 0;
  finAcked = false;
  paused = false;
  // timers
  rto: number;
  srtt = 0;
  rttvar = 0;
  timed: { seq: number; at: number } | null = null;
  retries = 0;
  timer: ReturnType<typeof setTimeout> | null = null;
  ackScheduled = false;
  lastActivity = Date.now();
  stats = { bytesToGuest: 0, bytesFromGuest: 0, retransmits: 0 };

  constructor(
    readonly key: string,
    readonly guestMac: Uint8Array,
    readonly guestIp: number,
    readonly guestPort: number,
    readonly ourIp: number,
    readonly ourPort: number,
    readonly target: TcpTarget,
    syn: TcpSegment,
    opts: TcpOptions,
  ) {
    this.irs = syn.seq;
    this.rcvNxt = (syn.seq + 1) >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.mss = Math.max(64, Math.min(opts.mss, syn.options.mss ?? 536));
    this.cwnd = 10 * this.mss;
    this.sndWnd = syn.window; // never scaled in a SYN
    this.scaling = syn.options.windowScale !== undefined;
    if (this.scaling) {
      this.sndScale = Math.min(14, syn.options.windowScale!);
      while (this.rcvScale < 14 && opts.windowBytes >>> this.rcvScale > 65535) this.rcvScale++;
    }
    this.rto = opts.rtoInitialMs;
  }

  /** Copies `len` queued bytes starting `offset` bytes after sndUna to out[at]. */
  copyQueued(offset: number, len: number, out: Uint8Array, at: number): void {
    let pos = 0;
    let skip = offset;
    for (const c of this.queue) {
      if (pos >= len) break;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const part = c.subarray(skip, skip + (len - pos));
      out.set(part, at + pos);
      pos += part.length;
      skip = 0;
    }
  }

  dropAcked(n: number): void {
    this.queued -= n;
    while (n > 0 && this.queue.length) {
      const c = this.queue[0];
      if (c.length <= n) {
        n -= c.length;
        this.queue.shift();
      } else {
        this.queue[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}

export class TcpNat {
  private readonly conns = new Map<string, Conn>();
  readonly opts: TcpOptions;
  private idleSweep: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly hooks: TcpHooks,
    opts: Partial<TcpOptions> = {},
  ) {
    this.opts = { ...DEFAULT_TCP_OPTIONS, ...opts };
  }

  get size(): number {
    return this.conns.size;
  }

  /**
   * A segment from the guest (checksum already verified). `resolve` gives the NAT target for
   * a new connection, or null when policy refuses it. Its payload is written to the host
   * socket as is, not copied: the bytes must not change afterwards (the relay's frames are
   * their own copies, see ownFrame in relay.ts).
   */
  input(guestMac: Uint8Array, src: number, dst: number, seg: TcpSegment, resolve: () => TcpTarget | null): void {
    const key = `${src}:${seg.srcPort}>${dst}:${seg.dstPort}`;
    const c = this.conns.get(key);
    if (!c) {
      if (seg.flags & TCP_RST) return;
      if ((seg.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN) return this.open(key, guestMac, src, dst, seg, resolve);
      this.hooks.count('tcp-no-connection');
      return this.resetFor(guestMac, src, dst, seg);
    }
    c.lastActivity = Date.now();
    this.segment(c, seg);
  }

  private open(key: string, guestMac: Uint8Array, src: number, dst: number, seg: TcpSegment, resolve: () => TcpTarget | null): void {
    const target = resolve();
    if (!target) {
      this.hooks.count('tcp-nat-denied');
      return this.resetFor(guestMac, src, dst, seg);
    }
    if (this.conns.size >= this.opts.maxConnections) {
      this.hooks.count('tcp-too-many');
      return this.resetFor(guestMac, src, dst, seg);
    }
    const c = new Conn(key, guestMac.slice(0, 6), src, seg.srcPort, dst, seg.dstPort, target, seg, this.opts);
    this.conns.set(key, c);
    this.hooks.count('tcp-open');
    this.ensureSweep();
    let sock: HostSocket;
    try {
      sock = this.hooks.connect(target);
    } catch {
      this.conns.delete(key);
      return this.resetFor(guestMac, src, dst, seg);
    }
    c.socket = sock;
    sock.setNoDelay(true);
    sock.setTimeout(this.opts.connectTimeoutMs, () => {
      if (c.state === 'connecting') sock.destroy(new Error('connect timeout'));
    });
    sock.once('connect', () => {
      sock.setTimeout(0);
      if (c.state !== 'connecting') return;
      c.state = 'syn-rcvd';
      this.sendSynAck(c);
      this.armTimer(c);
    });
    sock.on('data', (chunk: Uint8Array) => this.fromHost(c, chunk));
    sock.on('end', () => {
      c.hostEnded = true;
      this.trySend(c);
    });
    sock.on('drain', () => this.sendAck(c));
    sock.on('error', () => {
      /* 'close' follows */
    });
    sock.on('close', (hadError) => {
      if (c.state === 'closed' || c.state === 'time-wait') return;
      if (hadError || c.state === 'connecting' || !c.hostEnded) {
        // Refused, reset or timed out: the guest gets an RST.
        this.hooks.count(c.state === 'connecting' ? 'tcp-connect-failed' : 'tcp-host-reset');
        this.sendRst(c);
        this.destroy(c);
      }
    });
  }

  private fromHost(c: Conn, chunk: Uint8Array): void {
    if (c.state === 'closed' || c.state === 'time-wait') return;
    c.queue.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    c.queued += chunk.length;
    if (c.queued >= this.opts.sendBufferBytes && !c.paused) {
      c.paused = true;
      c.socket?.pause();
    }
    // Send once the burst of reads is in: 64 KiB reads sent one by one would each leave a
    // tail of less than a super-segment (64 KiB - 44 MSS) to go alone, doubling the frames.
    if (c.sendScheduled) return;
    c.sendScheduled = true;
    afterBurst(() => {
      c.sendScheduled = false;
      this.trySend(c);
    });
  }

  private segment(c: Conn, seg: TcpSegment): void {
    if (seg.flags & TCP_RST) {
      // Accept an RST whose sequence number is in (or at the edge of) the window.
      if (seqLe(seqSub(c.rcvNxt, 1), seg.seq) && seqLe(seg.seq, (c.rcvNxt + this.opts.windowBytes) >>> 0)) {
        this.hooks.count('tcp-guest-reset');
        abort(c.socket);
        this.destroy(c);
      }
      return;
    }
    if (seg.flags & TCP_SYN) {
      // A retransmitted SYN: answer again once the SYN-ACK exists.
      if (c.state === 'syn-rcvd' && seg.seq === c.irs) this.sendSynAck(c);
      else if (c.state !== 'connecting') this.sendAck(c);
      return;
    }
    if (c.state === 'connecting') return;
    if (!(seg.flags & TCP_ACK)) return;

    // --- ACK of what we sent
    const ack = seg.ack;
    if (seqLt(c.sndMax, ack)) {
      // Acknowledges something never sent.
      this.sendAck(c);
      return;
    }
    if (c.state === 'syn-rcvd') {
      if (ack !== ((c.iss + 1) >>> 0)) return this.sendRstSeq(c, ack);
      c.state = 'established';
      c.sndUna = ack;
      if (seqLt(c.sndNxt, ack)) c.sndNxt = ack;
      c.retries = 0;
      c.rto = Math.max(this.opts.rtoMinMs, Math.min(c.rto, this.opts.rtoInitialMs));
      this.clearTimer(c);
      c.sndWnd = seg.window << c.sndScale;
    } else if (seqLt(c.sndUna, ack)) {
      let acked = seqSub(ack, c.sndUna);
      if (c.finSeqKnown && seqLt(c.finSeq, ack)) {
        c.finAcked = true;
        acked -= 1;
      }
      if (acked > 0) c.dropAcked(Math.min(acked, c.queued));
      if (c.timed && seqLt(c.timed.seq, ack)) {
        this.sampleRtt(c, Date.now() - c.timed.at);
        c.timed = null;
      }
      c.sndUna = ack;
      if (seqLt(c.sndNxt, ack)) c.sndNxt = ack;
      c.retries = 0;
      c.dupAcks = 0;
      // Bounded by the send buffer: more window than bytes we may hold is never used.
      if (c.cwnd < c.ssthresh) c.cwnd = Math.min(this.opts.sendBufferBytes, c.cwnd + acked);
      else this.avoidCongestion(c, acked);
      c.sndWnd = seg.window << c.sndScale;
      if (c.sndUna === c.sndNxt) this.clearTimer(c);
      else this.armTimer(c, true);
      if (c.paused && c.queued < this.opts.sendBufferBytes / 2) {
        c.paused = false;
        c.socket?.resume();
      }
    } else if (ack === c.sndUna) {
      const inFlight = c.sndNxt !== c.sndUna;
      if (inFlight && c.sndWnd > 0 && seg.payload.length === 0 && !(seg.flags & TCP_FIN) && seg.window << c.sndScale === c.sndWnd) {
        if (++c.dupAcks === 3) {
          // Fast retransmit of the first unacknowledged segment.
          c.ssthresh = Math.max(2 * c.mss, Math.floor(seqSub(c.sndNxt, c.sndUna) / 2));
          c.cwnd = c.ssthresh;
          c.caAcked = 0;
          this.retransmitFirst(c);
        }
      }
      c.sndWnd = seg.window << c.sndScale;
    }

    // --- data and FIN from the guest
    let data = seg.payload;
    let seq = seg.seq;
    const fin = (seg.flags & TCP_FIN) !== 0;
    if (data.length > 0 || fin) {
      if (c.finReceived) {
        this.sendAck(c); // a retransmission after their FIN: re-ACK
      } else if (seqLt(c.rcvNxt, seq)) {
        this.hooks.count('tcp-out-of-order');
        this.sendAck(c);
      } else {
        const skip = seqSub(c.rcvNxt, seq);
        if (skip > 0) {
          if (skip >= data.length + (fin ? 1 : 0)) {
            this.sendAck(c); // an old duplicate
            data = new Uint8Array(0);
          } else {
            data = data.subarray(Math.min(skip, data.length));
            seq = c.rcvNxt;
          }
        }
        if (seq === c.rcvNxt) {
          // Only what fits the window we advertise is acceptable (RFC 793 3.3); a guest
          // ignoring it must not make the host socket buffer without bound. The rest, and a
          // FIN behind it, waits for the guest's retransmission; the ACK says where we are.
          const room = this.window(c);
          const beyond = data.length > room;
          if (beyond) {
            this.hooks.count('tcp-beyond-window');
            data = data.subarray(0, room);
          }
          if (data.length > 0) {
            c.rcvNxt = (c.rcvNxt + data.length) >>> 0;
            c.stats.bytesFromGuest += data.length;
            c.socket?.write(data);
          }
          if (fin && !beyond) {
            c.rcvNxt = (c.rcvNxt + 1) >>> 0;
            c.finReceived = true;
            c.socket?.end();
          }
          this.scheduleAck(c, fin || beyond);
        }
      }
    }

    this.trySend(c);
    this.maybeFinish(c);
  }

  /**
   * Congestion avoidance by bytes acknowledged (RFC 3465): one MSS more per cwnd's worth of
   * acknowledged bytes, i.e. per round trip. Counting ACKs instead (MSS²/cwnd each) would grow
   * it 44 times slower toward a guest that ACKs once per super-segment: after one timeout the
   * window stayed near 40 KiB for the rest of a 32 MiB download.
   */
  private avoidCongestion(c: Conn, acked: number): void {
    c.caAcked += acked;
    if (c.caAcked < c.cwnd) return;
    c.caAcked -= c.cwnd;
    c.cwnd = Math.min(this.opts.sendBufferBytes, c.cwnd + c.mss);
  }

  private sampleRtt(c: Conn, r: number): void {
    if (c.srtt === 0) {
      c.srtt = r;
      c.rttvar = r / 2;
    } else {
      c.rttvar = 0.75 * c.rttvar + 0.25 * Math.abs(c.srtt - r);
      c.srtt = 0.875 * c.srtt + 0.125 * r;
    }
    c.rto = Math.min(this.opts.rtoMaxMs, Math.max(this.opts.rtoMinMs, c.srtt + 4 * c.rttvar));
  }

  /**
   * The receive window in bytes: what the host socket may still buffer, of at most
   * windowBytes, or 64 KiB toward a guest that does not scale windows (the field's reach).
   */
  private window(c: Conn): number {
    const buffered = c.socket ? c.socket.writableLength : 0;
    return Math.max(0, Math.min(65535 << c.rcvScale, this.opts.windowBytes) - buffered);
  }

  /**
   * A segment of the connection, with `data` bytes of the queue (from `offset` after sndUna)
   * copied straight into the frame: the one copy of the host's bytes on their way out.
   */
  private emit(c: Conn, flags: number, seq: number, data?: { offset: number; len: number }, withMss = false): void {
    this.emitSegment(c.guestMac, {
      src: c.ourIp,
      dst: c.guestIp,
      srcPort: c.ourPort,
      dstPort: c.guestPort,
      seq,
      ack: flags & TCP_ACK ? c.rcvNxt : 0,
      flags,
      // RFC 7323 §2.2: the window in a SYN is never scaled (and never more than 65535).
      window: flags & TCP_SYN ? Math.min(65535, this.window(c)) : this.window(c) >>> c.rcvScale,
      // A super-segment says where to cut it (see the top of the file).
      urgent: data && data.len > c.mss ? c.mss : undefined,
      options: withMss ? { mss: c.mss, windowScale: c.scaling ? c.rcvScale : undefined } : undefined,
    }, data && ((out, at) => c.copyQueued(data.offset, data.len, out, at)), data?.len ?? 0);
  }

  /** Builds a segment in a frame (headroom, header, `fill`ed payload) and hands it to the hook. */
  private emitSegment(guestMac: Uint8Array, p: Omit<TcpBuild, 'payload'>, fill?: (out: Uint8Array, at: number) => void, len = 0): void {
    const tcpLength = tcpHeaderLength(p.options) + len;
    const frame = new Uint8Array(Math.max(ETH_MIN_FRAME, TCP_FRAME_HEADROOM + tcpLength));
    fill?.(frame, TCP_FRAME_HEADROOM + tcpLength - len);
    writeTcpHeader(frame, TCP_FRAME_HEADROOM, p, len);
    this.hooks.emit(guestMac, p.src, p.dst, frame, tcpLength);
  }

  private sendSynAck(c: Conn): void {
    this.emit(c, TCP_SYN | TCP_ACK, c.iss, undefined, true);
    c.sndNxt = (c.iss + 1) >>> 0;
    c.sndMax = c.sndNxt;
  }

  private sendAck(c: Conn): void {
    if (c.state === 'connecting' || c.state === 'closed') return;
    this.emit(c, TCP_ACK, c.sndNxt);
  }

  private scheduleAck(c: Conn, now: boolean): void {
    if (now) {
      c.ackScheduled = false;
      return this.sendAck(c);
    }
    if (c.ackScheduled) return;
    c.ackScheduled = true;
    // Coalesce ACKs for segments that arrive in one burst (one WebSocket read).
    afterBurst(() => {
      if (!c.ackScheduled) return;
      c.ackScheduled = false;
      this.sendAck(c);
    });
  }

  private sendRst(c: Conn): void {
    if (c.state === 'connecting') {
      this.emitSegment(c.guestMac, { src: c.ourIp, dst: c.guestIp, srcPort: c.ourPort, dstPort: c.guestPort, seq: 0, ack: c.rcvNxt, flags: TCP_RST | TCP_ACK, window: 0 });
    } else this.emit(c, TCP_RST | TCP_ACK, c.sndNxt);
  }

  private sendRstSeq(c: Conn, seq: number): void {
    this.emitSegment(c.guestMac, { src: c.ourIp, dst: c.guestIp, srcPort: c.ourPort, dstPort: c.guestPort, seq, ack: 0, flags: TCP_RST, window: 0 });
  }

  /** RFC 793 reset for a segment that has no connection. */
  private resetFor(guestMac: Uint8Array, src: number, dst: number, seg: TcpSegment): void {
    const len = seg.payload.length + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0);
    const hasAck = (seg.flags & TCP_ACK) !== 0;
    this.emitSegment(guestMac, {
      src: dst,
      dst: src,
      srcPort: seg.dstPort,
      dstPort: seg.srcPort,
      seq: hasAck ? seg.ack : 0,
      ack: hasAck ? 0 : (seg.seq + len) >>> 0,
      flags: hasAck ? TCP_RST : TCP_RST | TCP_ACK,
      window: 0,
    });
  }

  /** Most data bytes in one segment toward the guest: its MSS, or a super-segment's worth. */
  private segmentData(c: Conn): number {
    const frameLimit = this.hooks.frameLimit?.(c.guestMac) ?? 0;
    return Math.max(c.mss, frameLimit - TCP_FRAME_HEADROOM - TCP_HEADER_LEN);
  }

  private trySend(c: Conn): void {
    if (c.state !== 'established') return;
    const segmentData = this.segmentData(c);
    for (;;) {
      const flight = seqSub(c.sndNxt, c.sndUna) - (c.finSent ? 1 : 0);
      const dataInFlight = Math.max(0, flight);
      const unsent = c.queued - dataInFlight;
      if (unsent <= 0) break;
      const room = Math.min(c.sndWnd, c.cwnd) - dataInFlight;
      if (room <= 0) break;
      let len = Math.min(segmentData, unsent, room);
      // Avoid silly small segments while data is still in flight.
      if (len < Math.min(c.mss, unsent) && dataInFlight > 0) break;
      // A super-segment cut short by the window ends on an MSS boundary (the rest follows).
      if (len > c.mss && len < unsent) len -= len % c.mss;
      const last = len === unsent;
      this.emit(c, TCP_ACK | (last ? TCP_PSH : 0), c.sndNxt, { offset: dataInFlight, len });
      c.stats.bytesToGuest += len;
      if (!c.timed) c.timed = { seq: c.sndNxt, at: Date.now() };
      c.sndNxt = (c.sndNxt + len) >>> 0;
      if (seqLt(c.sndMax, c.sndNxt)) c.sndMax = c.sndNxt;
      c.ackScheduled = false; // the data carries the ACK
      this.armTimer(c);
    }
    const unsentData = c.queued - Math.max(0, seqSub(c.sndNxt, c.sndUna) - (c.finSent ? 1 : 0));
    if (c.hostEnded && !c.finSent && !c.finAcked && unsentData <= 0) {
      c.finSeq = c.sndNxt;
      c.finSeqKnown = true;
      c.finSent = true;
      this.emit(c, TCP_FIN | TCP_ACK, c.sndNxt);
      c.sndNxt = (c.sndNxt + 1) >>> 0;
      if (seqLt(c.sndMax, c.sndNxt)) c.sndMax = c.sndNxt;
      this.armTimer(c);
    }
    // Zero window with data waiting: the timer probes it.
    if (unsentData > 0 && c.sndNxt === c.sndUna) this.armTimer(c);
  }

  private retransmitFirst(c: Conn): void {
    c.stats.retransmits++;
    this.hooks.count('tcp-retransmit');
    c.timed = null; // Karn: no RTT sample from a retransmission
    const dataInFlight = Math.max(0, seqSub(c.sndNxt, c.sndUna) - (c.finSent ? 1 : 0));
    if (dataInFlight > 0) {
      const len = Math.min(c.mss, dataInFlight);
      this.emit(c, TCP_ACK | TCP_PSH, c.sndUna, { offset: 0, len });
    } else if (c.finSent && !c.finAcked) {
      this.emit(c, TCP_FIN | TCP_ACK, c.finSeq);
    }
  }

  private armTimer(c: Conn, restart = false): void {
    if (c.timer && !restart) return;
    if (c.timer) clearTimeout(c.timer);
    c.timer = setTimeout(() => this.onTimer(c), c.rto);
    c.timer.unref?.();
  }

  private clearTimer(c: Conn): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
  }

  private onTimer(c: Conn): void {
    c.timer = null;
    if (c.state === 'closed' || c.state === 'connecting' || c.state === 'time-wait') return;
    if (c.state === 'established' && c.sndWnd === 0 && c.queued > 0) {
      // The guest's window is closed and data waits: probe it with one byte (beyond the
      // window, so the guest answers with an ACK carrying its window). Probes never give
      // up: a guest that reads slowly is not a dead peer.
      this.hooks.count('tcp-window-probe');
      c.timed = null;
      this.emit(c, TCP_ACK, c.sndUna, { offset: 0, len: 1 });
      if (c.sndNxt === c.sndUna) c.sndNxt = (c.sndUna + 1) >>> 0;
      if (seqLt(c.sndMax, c.sndNxt)) c.sndMax = c.sndNxt;
      c.rto = Math.min(this.opts.rtoMaxMs, c.rto * 2);
      this.armTimer(c);
      return;
    }
    if (++c.retries > this.opts.maxRetries) {
      this.hooks.count('tcp-timeout');
      this.sendRst(c);
      abort(c.socket);
      this.destroy(c);
      return;
    }
    c.rto = Math.min(this.opts.rtoMaxMs, c.rto * 2);
    if (c.state === 'syn-rcvd') {
      c.stats.retransmits++;
      this.hooks.count('tcp-retransmit');
      this.sendSynAck(c);
      this.armTimer(c);
      return;
    }
    const dataInFlight = Math.max(0, seqSub(c.sndNxt, c.sndUna) - (c.finSent ? 1 : 0));
    if (c.sndNxt === c.sndUna) {
      c.retries = 0;
      this.trySend(c);
      return;
    }
    // Timeout: collapse the window and go back to the first unacknowledged byte.
    c.ssthresh = Math.max(2 * c.mss, Math.floor(dataInFlight / 2));
    c.cwnd = c.mss;
    c.caAcked = 0;
    c.dupAcks = 0;
    this.retransmitFirst(c);
    const first = Math.min(c.mss, dataInFlight);
    if (dataInFlight > 0) {
      c.sndNxt = (c.sndUna + first) >>> 0;
      if (c.finSent && !c.finAcked) c.finSent = false; // re-sent after the data
    }
    this.armTimer(c);
  }

  private maybeFinish(c: Conn): void {
    if (c.state !== 'established') return;
    if (c.finReceived && c.finAcked) {
      c.state = 'time-wait';
      this.clearTimer(c);
      const t = setTimeout(() => this.destroy(c), this.opts.timeWaitMs);
      t.unref?.();
    }
  }

  private destroy(c: Conn): void {
    if (c.state === 'closed') return;
    const wasOpen = c.state;
    c.state = 'closed';
    this.clearTimer(c);
    if (wasOpen !== 'time-wait') abort(c.socket);
    if (this.conns.get(c.key) === c) this.conns.delete(c.key);
  }

  private ensureSweep(): void {
    if (this.idleSweep) return;
    const every = Math.max(1000, Math.min(60_000, this.opts.idleTimeoutMs / 4));
    this.idleSweep = setInterval(() => {
      const now = Date.now();
      for (const c of this.conns.values()) {
        if (now - c.lastActivity > this.opts.idleTimeoutMs) {
          this.hooks.count('tcp-idle-reset');
          this.sendRst(c);
          this.destroy(c);
        }
      }
      if (this.conns.size === 0 && this.idleSweep) {
        clearInterval(this.idleSweep);
        this.idleSweep = null;
      }
    }, every);
    this.idleSweep.unref?.();
  }

  stats(): TcpConnStats[] {
    return [...this.conns.values()].map((c) => ({
      guest: `${ipToString(c.guestIp)}:${c.guestPort}`,
      remote: `${ipToString(c.ourIp)}:${c.ourPort}`,
      target: `${c.target.host}:${c.target.port}`,
      state: c.state,
      ...c.stats,
    }));
  }

  /** Ends a departed guest's connections, and their host sockets with an RST; returns how many. */
  dropGuest(guestMac: Uint8Array): number {
    let n = 0;
    for (const c of [...this.conns.values()]) {
      if (!macEquals(c.guestMac, guestMac)) continue;
      abort(c.socket);
      this.destroy(c);
      n++;
    }
    return n;
  }

  close(): void {
    for (const c of [...this.conns.values()]) {
      abort(c.socket);
      this.destroy(c);
    }
    if (this.idleSweep) clearInterval(this.idleSweep);
    this.idleSweep = null;
  }
}
