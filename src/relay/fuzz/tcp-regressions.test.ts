/**
 * Counterexamples the relay fuzz campaign found in the TCP NAT, replayed exactly (see
 * tcp-properties.ts).
 */
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { TCP_ACK, TCP_PSH, TCP_SYN, type TcpSegment, parseTcp } from '../../wire/tcp.ts';
import { TCP_FRAME_HEADROOM, TcpNat } from '../tcp.ts';
import { GW_IP as GW } from '../testing.ts';
import { FakeSocket, GUEST_IP as GUEST, GUEST_MAC as MAC, tcpNatCase, type TcpFuzzOp } from './tcp-properties.ts';

const seg = (flags: number, seq: number, ack: number, payload = new Uint8Array(0)): TcpSegment => ({
  srcPort: 40003, dstPort: 8080, seq, ack, headerLength: 20, flags, window: 65535, checksum: 0, urgent: 0, options: { mss: 1460 }, payload,
});

describe('relay TCP fuzz regressions', () => {
  it('a guest that ignores our window cannot make the host socket buffer more than the window', () => {
    const out: TcpSegment[] = [];
    const socket = new FakeSocket();
    const nat = new TcpNat({ emit: (_m, _s, _d, frame, n) => void out.push(parseTcp(frame.subarray(TCP_FRAME_HEADROOM, TCP_FRAME_HEADROOM + n))!), count: () => {}, connect: () => socket as unknown as net.Socket });
    try {
      const target = () => ({ host: '127.0.0.1', port: 8080 });
      nat.input(MAC, GUEST, GW, seg(TCP_SYN, 1000, 0), target);
      socket.emit('connect');
      const iss = out[0].seq;
      nat.input(MAC, GUEST, GW, seg(TCP_ACK, 1001, iss + 1), target);
      // 88 full segments (128 KB) back to back, each right after what we took: the host reads none.
      for (let i = 0; i < 88; i++) {
        nat.input(MAC, GUEST, GW, seg(TCP_ACK | TCP_PSH, 1001 + socket.writableLength, iss + 1, new Uint8Array(1460).fill(i)), target);
      }
      expect(socket.writableLength).toBe(65535); // was 128480
      const last = out.at(-1)!;
      expect(last.window).toBe(0);
      expect(last.ack).toBe(1001 + 65535);
    } finally {
      nat.close();
    }
  });

  it('replays the campaign counterexample (open, flood 11, a SYN|URG, flood 77)', () => {
    const ops = [
      { op: 'open', port: 40003, window: 65535 },
      { op: 'flood', port: 40003, segments: 11 },
      { op: 'segment', port: 40003, dstPort: 8080, flags: 34, seq: 0, seqWild: null, ack: 0, ackWild: null, window: 0, mss: null, payload: 1, refuse: false },
      { op: 'flood', port: 40003, segments: 77 },
    ] as TcpFuzzOp[];
    expect(() => tcpNatCase(ops, 1)).not.toThrow();
  });
});
