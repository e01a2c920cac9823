/**
 * How TcpNat paces data toward a guest behind large receive: host reads that arrive in one
 * burst go out as whole super-segments, and after a loss the window grows back by bytes
 * acknowledged, not by ACKs counted.
 */
import { describe, expect, it } from 'vitest';
import type net from 'node:net';
import { TCP_ACK, TCP_SYN, parseTcp, type TcpSegment } from '../wire/tcp.ts';
import { FakeSocket } from './fuzz/tcp-properties.ts';
import { TCP_FRAME_HEADROOM, TcpNat, type TcpTarget } from './tcp.ts';
import { GW_IP } from './testing.ts';

const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);
const GUEST_IP = 0x0a00020f;
const GUEST_PORT = 40100;
const MSS = 1460;
/** The largest frame a NIC may offer: 44 MSS of data fit in it. */
const FRAME_LIMIT = 65549;
const SUPER_DATA = FRAME_LIMIT - TCP_FRAME_HEADROOM - 20;
/** A full super-segment: whole MSS multiples (the guest's GSO cuts it at the MSS). */
const FULL = Math.floor(SUPER_DATA / MSS) * MSS;
const TARGET: TcpTarget = { host: '127.0.0.1', port: 8080 };
const nextTurn = () => new Promise<void>((r) => setImmediate(r));
/** The host's reads: `total` bytes in 64 KiB 'data' events, one burst. */
function hostReads(socket: FakeSocket, total: number, fill: number): void {
  for (let at = 0; at < total; at += 65536) socket.emit('data', Buffer.alloc(Math.min(65536, total - at), fill));
}

function harness() {
  const out: TcpSegment[] = [];
  let socket: FakeSocket | undefined;
  const nat = new TcpNat(
    {
      emit: (_mac, _src, _dst, frame, tcpLength) => out.push(parseTcp(frame.subarray(TCP_FRAME_HEADROOM, TCP_FRAME_HEADROOM + tcpLength))!),
      count: () => {},
      frameLimit: () => FRAME_LIMIT,
      connect: () => (socket = new FakeSocket()) as unknown as net.Socket,
    },
    { sendBufferBytes: 4 << 20, windowBytes: 1 << 20 },
  );
  let guestSeq = 5000;
  let iss = 0;
  const segment = (flags: number, ack: number): TcpSegment => ({
    srcPort: GUEST_PORT, dstPort: 8080, seq: guestSeq, ack, headerLength: 20, flags, window: 65535, checksum: 0, urgent: 0,
    options: flags & TCP_SYN ? { mss: MSS, windowScale: 7 } : {}, payload: new Uint8Array(0),
  });
  const input = (s: TcpSegment) => nat.input(GUEST_MAC, GUEST_IP, GW_IP, s, () => TARGET);
  return {
    out,
    /** Handshake; the guest's window is 65535 << 7 (8 MiB), never the limit here. */
    open(): FakeSocket {
      input(segment(TCP_SYN, 0));
      socket!.emit('connect');
      iss = out.at(-1)!.seq;
      guestSeq++;
      input(segment(TCP_ACK, (iss + 1) >>> 0));
      return socket!;
    },
    /** Sequence offset (from the first data byte) the NAT has sent up to. */
    sentUpTo(): number {
      let upTo = 0;
      for (const s of out) if (s.payload.length > 0) upTo = Math.max(upTo, ((s.seq - iss - 1) >>> 0) + s.payload.length);
      return upTo;
    },
    ack: (offset: number) => input(segment(TCP_ACK, (iss + 1 + offset) >>> 0)),
    /** Acknowledges what is in flight the way a guest behind large receive does: once per super-segment. */
    ackAll(from: number): number {
      const upTo = this.sentUpTo();
      for (let at = from; at < upTo; ) {
        at = Math.min(upTo, at + SUPER_DATA);
        this.ack(at);
      }
      return upTo;
    },
  };
}

describe('TcpNat pacing toward a large-receive guest', () => {
  it('sends one burst of host reads as whole super-segments, with one short tail for the whole burst', async () => {
    const h = harness();
    const socket = h.open();
    // Grow the window first (slow start): 2 MiB from the host, acknowledged round by round.
    hostReads(socket, 2 << 20, 1);
    await nextTurn();
    let acked = 0;
    while (acked < 2 << 20) {
      acked = h.ackAll(acked);
      await nextTurn();
    }
    const before = h.out.length;
    // Five 64 KiB reads in one burst, as a host socket delivers them after a resume().
    hostReads(socket, 5 * 65536, 2);
    await nextTurn();
    const sent = h.out.slice(before).filter((s) => s.payload.length > 0).map((s) => s.payload.length);
    expect(sent.reduce((a, b) => a + b, 0)).toBe(5 * 65536);
    // One segment per read would leave five short tails (65536 - FULL bytes each).
    expect(sent.filter((n) => n < FULL)).toHaveLength(1);
    expect(sent.length).toBe(Math.ceil((5 * 65536) / FULL));
  });

  it('after a fast retransmit, grows the window by about one MSS per round trip of super-segment ACKs', async () => {
    const h = harness();
    const socket = h.open();
    hostReads(socket, 8 << 20, 3);
    await nextTurn();
    let acked = 0;
    for (let round = 0; round < 6; round++) {
      acked = h.ackAll(acked);
      await nextTurn();
    }
    // Three duplicate ACKs: the NAT halves the window (ssthresh = cwnd = flight / 2).
    for (let i = 0; i < 3; i++) h.ack(acked);
    const flights: number[] = [];
    for (let round = 0; round < 12; round++) {
      const upTo = h.ackAll(acked);
      acked = upTo;
      await nextTurn();
      flights.push(h.sentUpTo() - acked);
    }
    // Byte counting: +1 MSS per window acknowledged (≥ 10 MSS over 11 rounds). Counting ACKs
    // (MSS²/cwnd each) grew it by under one MSS in all, since each ACK covers 44 MSS.
    expect(flights.at(-1)! - flights[0]).toBeGreaterThanOrEqual(10 * MSS);
    expect(flights.at(-1)! - flights[0]).toBeLessThanOrEqual(12 * MSS);
  });
});
