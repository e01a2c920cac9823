/**
 * The relay's TCP NAT (tcp.ts) under a garbage-sending guest and an erratic host
 * (fast-check), shared by the unit tests and the long campaign (bench/fuzz.ts). Host
 * sockets are fakes the case drives (connect, data, end, errors, a full write buffer;
 * 'close' arrives later, as Node's does), and the clock is Node's mock timers, so
 * retransmission, probe, time-wait and idle timers fire inside the case.
 *
 * Invariants: nothing throws; every segment toward the guest is well-formed (checksum,
 * ports, ≤ MSS of payload); every data byte it carries is the host's byte at that
 * sequence number (seq − ISS − 1 into what the host socket produced); what reaches the host
 * socket is the guest's own payload; the connection table stays within its limit; and
 * afterwards a fresh connection still does handshake, data both ways and close.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { mock } from 'node:test';
import fc from 'fast-check';
import { verifyTransportChecksum } from '../../wire/checksum.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, parseTcp, type TcpSegment } from '../../wire/tcp.ts';
import { bump, fail, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { TCP_FRAME_HEADROOM, TcpNat, type TcpTarget } from '../tcp.ts';
import { GW_IP } from '../testing.ts';

export const GUEST_IP = 0x0a00020f;
export const GUEST_MAC = Uint8Array.of(0x52, 0x54, 0, 0, 0, 1);
const SERVICE_PORT = 8080;
const MSS = 1460;
const TARGET: TcpTarget = { host: '127.0.0.1', port: SERVICE_PORT };

/** A net.Socket stand-in: records what TcpNat does to it; the case emits its events. */
export class FakeSocket extends EventEmitter {
  readonly written: Uint8Array[] = [];
  /** Everything the "host" sent through this socket toward the guest. */
  readonly produced: number[] = [];
  writableLength = 0;
  ended = false;
  destroyed = false;
  paused = false;
  /** 'close' waits for the case to deliver it, as Node emits it on a later tick. */
  pendingClose: boolean | undefined;
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  /** A host that reads nothing until 'drain': everything written waits in the socket. */
  write(data: Uint8Array): boolean {
    this.written.push(data.slice());
    this.writableLength += data.length;
    return this.writableLength < 16384;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  destroy(error?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (error) this.emit('error', error);
    this.pendingClose = !!error;
    return this;
  }
  resetAndDestroy(): this {
    return this.destroy();
  }
  /** The host's side ended ('end' emitted): Node emits no 'data' after it. */
  readEnded = false;
  /** The host sends `bytes` toward the guest. */
  data(bytes: Uint8Array): void {
    if (this.destroyed || this.readEnded || this.paused) return; // a paused socket reads nothing
    this.produced.push(...bytes);
    this.emit('data', Buffer.from(bytes));
  }
  hostEnd(): void {
    if (this.destroyed || this.readEnded) return;
    this.readEnded = true;
    this.emit('end');
  }
  deliverClose(): void {
    if (this.pendingClose === undefined) return;
    const hadError = this.pendingClose;
    this.pendingClose = undefined;
    this.emit('close', hadError);
  }
}

interface Flow {
  socket: FakeSocket;
  /** Our ISS, from the SYN-ACK. */
  iss?: number;
  /** Payloads the guest sent on this flow. */
  sent: Uint8Array[];
}

const guestPortArb = fc.constantFrom(40001, 40002, 40003);
const hostOpArb = fc.oneof(
  fc.record({ op: fc.constant('connect' as const), port: guestPortArb }),
  fc.record({ op: fc.constant('data' as const), port: guestPortArb, bytes: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 70000 })) }),
  fc.record({ op: fc.constant('end' as const), port: guestPortArb }),
  fc.record({ op: fc.constant('fail' as const), port: guestPortArb, hadError: fc.boolean() }),
  fc.record({ op: fc.constant('drain' as const), port: guestPortArb }),
  fc.record({ op: fc.constant('close-tick' as const) }),
  fc.record({ op: fc.constant('tick' as const), ms: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1000, max: 5000 }), fc.constantFrom(60_000, 700_000)) }),
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 200, max: 3000 }) }),
);
const guestOpArb = fc.record({
  op: fc.constant('segment' as const),
  port: guestPortArb,
  dstPort: fc.oneof({ weight: 6, arbitrary: fc.constant(SERVICE_PORT) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 65535 }) }),
  flags: fc.oneof(fc.constantFrom(TCP_SYN, TCP_ACK, TCP_ACK | TCP_PSH, TCP_ACK | TCP_FIN, TCP_RST, TCP_RST | TCP_ACK, TCP_SYN | TCP_ACK), fc.integer({ min: 0, max: 0xff })),
  /** seq: relative to what the guest sent so far, or anything. */
  seq: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -3, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: -70000, max: 70000 }) }),
  seqWild: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { freq: 8 }),
  /** ack: relative to our ISS + 1 + what the host produced, or anything. */
  ack: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -2, max: 2 }) }, { weight: 2, arbitrary: fc.integer({ min: -70000, max: 0 }) }),
  ackWild: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { freq: 8 }),
  window: fc.oneof(fc.constantFrom(65535, 0, 1, 1000), fc.integer({ min: 0, max: 65535 })),
  mss: fc.option(fc.oneof(fc.constantFrom(0, 1, 536, 1460, 65535), fc.integer({ min: 0, max: 65535 }))),
  payload: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 1460 })),
  refuse: fc.boolean(),
});
/** An honest handshake on a port, so the garbage mostly meets established connections. */
const openArb = fc.record({ op: fc.constant('open' as const), port: guestPortArb, window: fc.constantFrom(65535, 2000, 0) });
/** In-order data at what we last acknowledged, as fast as it goes, whatever window we advertise. */
const floodArb = fc.record({ op: fc.constant('flood' as const), port: guestPortArb, segments: fc.integer({ min: 1, max: 80 }) });
const opArb = fc.oneof({ weight: 6, arbitrary: guestOpArb }, { weight: 5, arbitrary: hostOpArb }, { weight: 2, arbitrary: openArb }, { weight: 1, arbitrary: floodArb });

const flowKey = (guestPort: number, ourPort = SERVICE_PORT) => `${guestPort}>${ourPort}`;

interface Harness {
  nat: TcpNat;
  /** By `guestPort>ourPort`, as TcpNat keys its connections. */
  flows: Map<string, Flow>;
  /** Every segment toward the guest, parsed. */
  out: TcpSegment[];
  counts: Record<string, number>;
  /** The flow of the segment being input (the connect hook is not told it). */
  inputFlow: string;
}

function makeHarness(maxConnections: number): Harness {
  const h = { flows: new Map(), out: [], counts: {}, inputFlow: '' } as unknown as Harness;
  h.nat = new TcpNat(
    {
      emit: (mac, src, dst, frame, tcpLength) => {
        if (frame.length < Math.max(60, TCP_FRAME_HEADROOM + tcpLength)) fail(`a ${frame.length}-byte frame for a ${tcpLength}-byte segment`);
        checkEmitted(h, mac, src, dst, frame.subarray(TCP_FRAME_HEADROOM, TCP_FRAME_HEADROOM + tcpLength));
      },
      count: (what) => void (h.counts[what] = (h.counts[what] ?? 0) + 1),
      connect: () => {
        const socket = new FakeSocket();
        h.flows.set(h.inputFlow, { socket, sent: [] });
        return socket as unknown as net.Socket;
      },
    },
    { maxConnections, sendBufferBytes: 64 * 1024, timeWaitMs: 2000, idleTimeoutMs: 600_000 },
  );
  return h;
}

/** Every segment TcpNat sends the guest, checked as it leaves. */
function checkEmitted(h: Harness, mac: Uint8Array, src: number, dst: number, bytes: Uint8Array): void {
  if (!mac.every((b, i) => b === GUEST_MAC[i]) || dst !== GUEST_IP || src !== GW_IP) fail('segment addressed to someone else');
  if (!verifyTransportChecksum(src, dst, 6, bytes)) fail('segment checksum wrong');
  const seg = parseTcp(bytes) ?? fail('segment does not parse');
  if (seg.payload.length > MSS) fail(`segment carries ${seg.payload.length} bytes > MSS`);
  if (20 + bytes.length > 1500) fail(`segment makes a ${20 + bytes.length}-byte IP packet`);
  h.out.push(seg);
  const flow = h.flows.get(flowKey(seg.dstPort, seg.srcPort));
  if (seg.flags & TCP_SYN) {
    if (flow) flow.iss = seg.seq;
    return;
  }
  if (seg.payload.length === 0 || seg.flags & TCP_RST) return;
  if (!flow || flow.iss === undefined) fail(`data on port ${seg.dstPort} before any SYN-ACK`);
  const offset = (seg.seq - flow.iss - 1) >>> 0;
  const host = flow.socket.produced;
  if (offset + seg.payload.length > host.length) fail(`data at offset ${offset}+${seg.payload.length} beyond the ${host.length} bytes the host sent`);
  for (let i = 0; i < seg.payload.length; i++) {
    if (seg.payload[i] !== host[offset + i]) fail(`byte ${offset + i} toward the guest differs from the host's`);
  }
}

function guestSegment(h: Harness, o: typeof guestOpArb extends fc.Arbitrary<infer T> ? T : never): TcpSegment {
  const flow = h.flows.get(flowKey(o.port, o.dstPort));
  const sentBytes = flow ? flow.sent.reduce((n, p) => n + p.length, 0) : 0;
  const seq = o.seqWild ?? ((1000 + 1 + sentBytes + o.seq) >>> 0);
  const produced = flow?.socket.produced.length ?? 0;
  const ack = o.ackWild ?? (((flow?.iss ?? 0) + 1 + produced + o.ack) >>> 0);
  const payload = Uint8Array.from({ length: o.payload }, (_, i) => (o.port + sentBytes + i) & 0xff);
  return {
    srcPort: o.port,
    dstPort: o.dstPort,
    seq: o.flags & TCP_SYN && o.seqWild === null ? 1000 : seq,
    ack,
    headerLength: 20,
    flags: o.flags,
    window: o.window,
    checksum: 0,
    urgent: 0,
    options: o.mss === null ? {} : { mss: o.mss },
    payload,
  };
}

function socketOf(h: Harness, port: number): FakeSocket | undefined {
  const s = h.flows.get(flowKey(port))?.socket;
  return s && !s.destroyed ? s : undefined;
}

/** A clean connection after the garbage: handshake, 3000 bytes each way, close. */
function honestConnection(h: Harness): void {
  const port = 41000;
  const seg = (flags: number, seq: number, ack: number, payload = new Uint8Array(0)): TcpSegment => ({
    srcPort: port, dstPort: SERVICE_PORT, seq, ack, headerLength: 20, flags, window: 65535, checksum: 0, urgent: 0, options: { mss: MSS }, payload,
  });
  const resolve = () => TARGET;
  h.inputFlow = flowKey(port);
  h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, seg(TCP_SYN, 5000, 0), resolve);
  const flow = h.flows.get(flowKey(port)) ?? fail('no host socket for a fresh SYN');
  flow.socket.emit('connect');
  const synAck = h.out.findLast((s) => s.dstPort === port && s.flags === (TCP_SYN | TCP_ACK)) ?? fail('no SYN-ACK after the garbage');
  if (synAck.ack !== 5001) fail('SYN-ACK acknowledges the wrong sequence');
  const iss = synAck.seq;
  h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, seg(TCP_ACK, 5001, (iss + 1) >>> 0), resolve);
  const fromHost = Uint8Array.from({ length: 3000 }, (_, i) => (i * 3) & 0xff);
  const before = h.out.length;
  flow.socket.data(fromHost);
  mock.timers.tick(0); // the NAT sends once the burst of host reads is in (setImmediate)
  const got = h.out.slice(before).filter((s) => s.dstPort === port).flatMap((s) => [...s.payload]);
  if (got.length !== 3000 || !got.every((b, i) => b === fromHost[i])) fail(`guest got ${got.length} of 3000 host bytes`);
  const fromGuest = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
  h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, seg(TCP_ACK | TCP_PSH, 5001, (iss + 3001) >>> 0, fromGuest.subarray(0, 1460)), resolve);
  h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, seg(TCP_ACK | TCP_PSH, 6461, (iss + 3001) >>> 0, fromGuest.subarray(1460)), resolve);
  const written = flow.socket.written.flatMap((c) => [...c]);
  if (written.length !== 3000 || !written.every((b, i) => b === fromGuest[i])) fail(`host got ${written.length} of 3000 guest bytes`);
  h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, seg(TCP_ACK | TCP_FIN, 8001, (iss + 3001) >>> 0), resolve);
  if (!flow.socket.ended) fail("guest's FIN did not end the host socket");
  flow.socket.hostEnd();
  const fin = h.out.findLast((s) => s.dstPort === port && s.flags & TCP_FIN) ?? fail('no FIN toward the guest after the host ended');
  h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, seg(TCP_ACK, 8002, (fin.seq + 1) >>> 0), resolve);
  const state = h.nat.stats().find((c) => c.guest.endsWith(`:${port}`))?.state;
  if (state !== 'time-wait') fail(`connection in state ${state} after both FINs were acknowledged`);
}

export type TcpFuzzOp = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** One case: the ops, then a clean connection (exported for regression tests). */
export function tcpNatCase(ops: readonly TcpFuzzOp[], maxConnections: number, coverage = new Map<string, number>()): void {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'setImmediate', 'Date'], now: 1_000_000 });
  const h = makeHarness(maxConnections);
  try {
    for (const o of ops) {
      switch (o.op) {
        case 'segment': {
          const seg = guestSegment(h, o);
          const key = flowKey(o.port, o.dstPort);
          const flow = h.flows.get(key);
          if (flow && seg.payload.length > 0) flow.sent.push(seg.payload);
          const before = flow?.socket.written.length ?? 0;
          h.inputFlow = key;
          h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, seg, () => (o.refuse ? null : TARGET));
          const now = h.flows.get(key);
          // What reached the host is a suffix of one of the guest's payloads on this flow.
          for (const chunk of now?.socket.written.slice(now === flow ? before : 0) ?? []) {
            const ok = now!.sent.some((p) => p.length >= chunk.length && chunk.every((b, i) => b === p[p.length - chunk.length + i]));
            if (!ok) fail(`host got ${chunk.length} bytes the guest never sent`);
          }
          break;
        }
        case 'open': {
          const syn = (flags: number, seq: number, ack: number): TcpSegment => ({
            srcPort: o.port, dstPort: SERVICE_PORT, seq, ack, headerLength: 20, flags, window: o.window, checksum: 0, urgent: 0, options: { mss: MSS }, payload: new Uint8Array(0),
          });
          h.inputFlow = flowKey(o.port);
          h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, syn(TCP_SYN, 1000, 0), () => TARGET);
          socketOf(h, o.port)?.emit('connect');
          const iss = h.flows.get(flowKey(o.port))?.iss;
          if (iss !== undefined) h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, syn(TCP_ACK, 1001, (iss + 1) >>> 0), () => TARGET);
          break;
        }
        case 'flood': {
          const flow = h.flows.get(flowKey(o.port));
          if (!flow || flow.iss === undefined) break;
          for (let i = 0; i < o.segments; i++) {
            const acked = h.out.findLast((x) => x.dstPort === o.port && x.flags & TCP_ACK);
            if (!acked) break;
            const payload = Uint8Array.from({ length: MSS }, (_, k) => (i + k) & 0xff);
            flow.sent.push(payload);
            h.inputFlow = flowKey(o.port);
            h.nat.input(GUEST_MAC, GUEST_IP, GW_IP, { srcPort: o.port, dstPort: SERVICE_PORT, seq: acked.ack, ack: (flow.iss + 1) >>> 0, headerLength: 20, flags: TCP_ACK | TCP_PSH, window: 65535, checksum: 0, urgent: 0, options: {}, payload }, () => TARGET);
          }
          break;
        }
        case 'connect':
          socketOf(h, o.port)?.emit('connect');
          break;
        case 'data':
          socketOf(h, o.port)?.data(Uint8Array.from({ length: o.bytes }, (_, i) => (i * 11 + o.port) & 0xff));
          break;
        case 'end':
          socketOf(h, o.port)?.hostEnd();
          break;
        case 'fail': {
          const s = socketOf(h, o.port);
          if (!s) break;
          s.destroy(o.hadError ? new Error('ECONNRESET') : undefined);
          s.deliverClose();
          break;
        }
        case 'drain': {
          const s = socketOf(h, o.port);
          if (!s) break;
          s.writableLength = 0;
          s.emit('drain');
          break;
        }
        case 'close-tick':
          for (const f of h.flows.values()) f.socket.deliverClose();
          break;
        case 'tick':
          mock.timers.tick(o.ms);
          break;
      }
      if (h.nat.size > maxConnections) fail(`${h.nat.size} connections, limit ${maxConnections}`);
      for (const f of h.flows.values()) {
        // What the guest may have in flight toward a host that reads nothing: our window.
        if (f.socket.writableLength > 65535) fail(`${f.socket.writableLength} bytes queued toward a host that reads nothing (window 65535)`);
      }
    }
    for (const [what, n] of Object.entries(h.counts)) bump(coverage, what, n);
    for (const c of h.nat.stats()) bump(coverage, `ended ${c.state}`);
    // Let every timer run out (retransmissions give up, time-wait ends, idle flows are
    // reset), so a full table is not what refuses the clean connection.
    for (let i = 0; i < 12; i++) mock.timers.tick(60_000);
    for (const f of h.flows.values()) f.socket.deliverClose();
    honestConnection(h);
  } finally {
    h.nat.close();
    mock.timers.reset();
  }
}

export function tcpNatGarbageProperty(coverage = new Map<string, number>()): fc.IProperty<any> {
  return fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 4 }), (ops, maxConnections) =>
    tcpNatCase(ops, maxConnections, coverage),
  );
}

export function tcpNatProperties(): NamedProperty[] {
  const coverage = new Map<string, number>();
  return [{ name: 'relay: TCP NAT under a garbage guest and an erratic host, then a clean connection', property: tcpNatGarbageProperty(coverage), coverage }];
}
