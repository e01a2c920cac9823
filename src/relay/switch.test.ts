import { describe, expect, it } from 'vitest';
import { BROADCAST_MAC, ETHERTYPE_IPV4, buildEthernet, macKey, parseMac } from '../wire/ethernet.ts';
import { MAC_MOVE_BURST, SwitchRoom } from './switch.ts';
import { readU16 } from '../wire/bytes.ts';
import { makeSuperSegment } from '../wire/super-segment.ts';
import { TCP_ACK, TCP_FIN } from '../wire/tcp.ts';
import { tcpFrame, testBytes } from '../wire/testing/tcp-frames.ts';

const mac = (n: number) => parseMac(`52:54:00:00:00:${n.toString(16).padStart(2, '0')}`);
const frame = (dst: Uint8Array, src: Uint8Array, len = 60) =>
  buildEthernet({ dst, src, etherType: ETHERTYPE_IPV4, payload: new Uint8Array(Math.max(0, len - 14)) });

/** A client's super-segment of `payload` bytes (MSS 1448). */
function makeSuperSegmentFrame(payload: number, dst: Uint8Array, src: Uint8Array): Uint8Array {
  const f = tcpFrame(testBytes(payload), { dst, src });
  if (typeof makeSuperSegment(f, 1448, 1500) === 'string') throw new Error('not a super-segment');
  return f;
}

function setup(n: number, opts: { maxFrameBytes?: number; now?: () => number } = {}) {
  const room = new SwitchRoom('r', { maxFrameBytes: opts.maxFrameBytes ?? 1514, now: opts.now });
  const inbox: Uint8Array[][] = [];
  const ports = Array.from({ length: n }, (_, i) => {
    inbox.push([]);
    return room.attach({ deliver: (f) => (inbox[i].push(f), true) }, { label: `p${i}`, lockMac: true });
  });
  const counts = () => inbox.map((b) => b.length);
  return { room, ports, inbox, counts };
}

describe('switch', () => {
  it('floods unknown unicast and broadcast, then forwards known unicast only', () => {
    const { ports, counts, room } = setup(3);
    ports[0].input(frame(BROADCAST_MAC, mac(1)));
    expect(counts()).toEqual([0, 1, 1]);
    ports[1].input(frame(mac(1), mac(2))); // known: only to port 0
    expect(counts()).toEqual([1, 1, 1]);
    ports[0].input(frame(mac(3), mac(1))); // mac 3 unknown: flooded
    expect(counts()).toEqual([1, 2, 2]);
    ports[2].input(frame(mac(2), mac(3)));
    expect(counts()).toEqual([1, 3, 2]);
    ports[0].input(frame(parseMac('01:00:5e:00:00:fb'), mac(1))); // multicast
    expect(counts()).toEqual([1, 4, 3]);
    const s = room.stats();
    expect([s.flooded, s.forwarded, s.macTableSize]).toEqual([3, 2, 3]);
    expect(s.ports[0]).toMatchObject({ mac: '52:54:00:00:00:01', framesIn: 3, framesOut: 1, bytesOut: 60 });
  });

  it('isolates rooms', () => {
    const a = setup(2);
    const b = setup(2);
    a.ports[0].input(frame(BROADCAST_MAC, mac(1)));
    b.ports[0].input(frame(BROADCAST_MAC, mac(1))); // the same MAC in another room is fine
    expect(a.counts()).toEqual([0, 1]);
    expect(b.counts()).toEqual([0, 1]);
    expect(b.room.stats().drops).toEqual({});
  });

  it('moves a port to a new MAC a few times (a guest changed its address); beyond that another MAC is spoofing', () => {
    const { ports, counts, room } = setup(2, { now: () => 0 });
    ports[0].input(frame(BROADCAST_MAC, mac(1)));
    ports[1].input(frame(BROADCAST_MAC, mac(1))); // port 1 claims port 0's MAC
    expect(room.stats().ports[1].drops).toEqual({ 'mac-in-use': 1 });
    for (let i = 0; i < MAC_MOVE_BURST; i++) ports[0].input(frame(BROADCAST_MAC, mac(10 + i)));
    ports[0].input(frame(BROADCAST_MAC, mac(9))); // one move too many
    expect(counts()).toEqual([0, 1 + MAC_MOVE_BURST]);
    expect(room.stats().ports[0].drops).toEqual({ spoofed: 1 });
    // port 1 can still pick its own MAC afterwards: port 0's first one, which it left
    ports[1].input(frame(mac(10 + MAC_MOVE_BURST - 1), mac(1)));
    expect(counts()).toEqual([1, 1 + MAC_MOVE_BURST]);
  });

  it('drops group and zero source MACs', () => {
    const { ports, counts, room } = setup(2);
    ports[0].input(frame(BROADCAST_MAC, BROADCAST_MAC));
    ports[0].input(frame(BROADCAST_MAC, new Uint8Array(6)));
    expect(counts()).toEqual([0, 0]);
    expect(room.stats().drops).toEqual({ 'bad-source': 2 });
  });

  it('enforces the frame size limit and counts runts', () => {
    const { ports, counts, room } = setup(2, { maxFrameBytes: 1514 });
    ports[0].input(frame(BROADCAST_MAC, mac(1), 1514));
    ports[0].input(frame(BROADCAST_MAC, mac(1), 1515));
    ports[0].input(new Uint8Array(13));
    ports[0].input(new Uint8Array(0));
    expect(counts()).toEqual([0, 1]);
    expect(room.stats().ports[0].drops).toEqual({ 'too-big': 1, runt: 2 });
    // An 802.1Q-tagged frame may be 4 bytes longer (the tag is not part of the MTU), not 5.
    const tagged = (len: number) => {
      const f = frame(BROADCAST_MAC, mac(1), len);
      f[12] = 0x81;
      f[13] = 0x00;
      return f;
    };
    ports[0].input(tagged(1518));
    ports[0].input(tagged(1519));
    expect(counts()).toEqual([0, 2]);
    expect(room.stats().ports[0].drops).toEqual({ 'too-big': 2, runt: 2 });
    const small = setup(2, { maxFrameBytes: 100 });
    small.ports[0].input(frame(BROADCAST_MAC, mac(1), 101));
    expect(small.counts()).toEqual([0, 0]);
  });

  it('passes super-segments only to ports that offered them, up to their offer; only a port allowed may send them', () => {
    const { room, ports, inbox } = setup(3);
    const big = room.attach({ deliver: () => true }, { label: 'gateway', mac: mac(9), maxFrameBytes: 65549 });
    for (const [i, p] of ports.entries()) p.input(frame(mac(9), mac(i + 1))); // learn the clients
    expect(ports[0].setSuperSegments(65549)).toBe(true);
    expect(ports[1].setSuperSegments(4000)).toBe(true);
    // Out of bounds, or not a client's to make: refused, nothing changed.
    for (const bad of [1514, 1518, 65550, 0.5, -1, Number.NaN]) expect(ports[2].setSuperSegments(bad)).toBe(false);
    expect(big.setSuperSegments(65549)).toBe(false);
    expect(room.frameLimitFor(macKey(mac(1)))).toBe(65549);
    expect(room.frameLimitFor(macKey(mac(2)))).toBe(4000);
    expect(room.frameLimitFor(macKey(mac(3)))).toBe(1514); // a stock client
    expect(room.frameLimitFor(macKey(mac(7)))).toBe(1514); // nobody
    for (const i of [0, 1, 2]) big.input(frame(mac(i + 1), mac(9), 4000));
    big.input(frame(mac(1), mac(9), 65549));
    big.input(frame(mac(2), mac(9), 4001));
    big.input(frame(BROADCAST_MAC, mac(9), 3000)); // flooded: each port judged by its own offer
    expect(inbox.map((b) => b.map((f) => f.length))).toEqual([[4000, 65549, 3000], [4000, 3000], []]);
    // Counted at the port that could not take them.
    expect(room.stats().ports.map((p) => p.drops['too-big'] ?? 0)).toEqual([0, 1, 2, 0]);
    // A client may not send one, offer or not; nor the gateway beyond its bound.
    ports[0].input(frame(mac(9), mac(1), 1515));
    big.input(frame(mac(1), mac(9), 65550));
    expect(room.stats().ports.map((p) => p.drops['too-big'] ?? 0)).toEqual([1, 1, 2, 1]);
    // Withdrawn: MTU frames only again.
    expect(ports[0].setSuperSegments(0)).toBe(true);
    big.input(frame(mac(1), mac(9), 4000));
    expect(inbox[0]).toHaveLength(3);
    expect(room.frameLimitFor(macKey(mac(1)))).toBe(1514);
  });

  it("a client allowed super-segments: whole to the gateway and to ports that offered them, cut for the rest", () => {
    const { room, ports, inbox } = setup(3);
    const atGateway: Uint8Array[] = [];
    const gw = room.attach({ deliver: (f) => (atGateway.push(f), true) }, { label: 'gateway', mac: mac(9), maxFrameBytes: 65549, takesSuperSegments: true });
    const remoteInbox: Uint8Array[] = [];
    const remote = room.attach({ deliver: (f) => (remoteInbox.push(f), true) }, { label: 'cluster', remote: true });
    for (const [i, p] of ports.entries()) p.input(frame(mac(9), mac(i + 1))); // learn the clients
    atGateway.length = 0;
    expect(ports[1].setSuperSegments(65549)).toBe(true);
    // Only a NIC's port is allowed, and only a valid size.
    expect(ports[0].allowSuperSegmentsIn(65549)).toBe(65549);
    for (const bad of [1514, 65550, 0.5]) expect(ports[2].allowSuperSegmentsIn(bad)).toBe(0);
    expect(gw.allowSuperSegmentsIn(65549)).toBe(0);
    expect(remote.allowSuperSegmentsIn(65549)).toBe(0);

    const seg = makeSuperSegmentFrame(20000, mac(9), mac(1));
    ports[0].input(seg);
    expect(atGateway.map((f) => f.length)).toEqual([seg.length]); // whole
    const toPeer = makeSuperSegmentFrame(20000, mac(2), mac(1));
    ports[0].input(toPeer);
    expect(inbox[1].map((f) => f.length)).toEqual([toPeer.length]); // it offered: whole
    const toStock = makeSuperSegmentFrame(20000, mac(3), mac(1));
    ports[0].input(toStock);
    const cut = inbox[2].slice();
    expect(cut).toHaveLength(Math.ceil(20000 / 1448));
    expect(cut.every((f) => f.length <= 1514 && readU16(f, 34 + 18) === 0)).toBe(true);
    expect(Uint8Array.from(cut.flatMap((f) => [...f.subarray(54)]))).toEqual(testBytes(20000));
    // Unknown unicast floods: whole where offered and to the gateway, cut once for the rest (the cluster too).
    ports[0].input(makeSuperSegmentFrame(20000, mac(7), mac(1)));
    expect(inbox[1]).toHaveLength(2);
    expect(inbox[2]).toHaveLength(2 * cut.length);
    expect(remoteInbox).toHaveLength(cut.length);
    expect(room.stats().ports[0].drops).toEqual({});

    // Just over the MTU frame (untagged, 1515 bytes): cut for a stock port, never passed whole.
    const justOver = tcpFrame(testBytes(1461), { dst: mac(3), src: mac(1) });
    if (typeof makeSuperSegment(justOver, 1448, 1500) === 'string') throw new Error('not a super-segment');
    ports[0].input(justOver);
    expect(inbox[2].slice(2 * cut.length).map((f) => f.length)).toEqual([1502, 67]);
    // Not a super-segment (a FIN; no MSS), or damaged where it must be cut: dropped as such.
    ports[0].input(tcpFrame(testBytes(5000), { dst: mac(9), src: mac(1), flags: TCP_ACK | TCP_FIN, urgent: 1448 }));
    ports[0].input(tcpFrame(testBytes(5000), { dst: mac(9), src: mac(1) }));
    const damaged = makeSuperSegmentFrame(5000, mac(3), mac(1));
    damaged[damaged.length - 1] ^= 1;
    ports[0].input(damaged);
    expect(room.stats().ports.map((p) => p.drops['bad-super-segment'] ?? 0)).toEqual([2, 0, 1, 0, 0]);
    // A port not allowed: too big, as before; nor beyond what it was allowed.
    ports[1].input(makeSuperSegmentFrame(5000, mac(9), mac(2)));
    ports[0].allowSuperSegmentsIn(4000);
    ports[0].input(makeSuperSegmentFrame(5000, mac(9), mac(1)));
    expect(room.stats().ports.map((p) => p.drops['too-big'] ?? 0)).toEqual([1, 1, 0, 0, 0]);
    expect(atGateway).toHaveLength(2); // the first one and the flood
  });

  it('never takes an offer from a cluster link', () => {
    const room = new SwitchRoom('r', { maxFrameBytes: 1514 });
    const remote = room.attach({ deliver: () => true }, { label: 'cluster', remote: true });
    expect(remote.setSuperSegments(65549)).toBe(false);
    expect(remote.superSegmentBytes).toBe(0);
  });

  it('forgets a MAC when its port detaches, and lets another port take it', () => {
    const { ports, counts, room } = setup(3);
    ports[0].input(frame(BROADCAST_MAC, mac(1)));
    ports[0].detach();
    expect(room.stats().macTableSize).toBe(0);
    ports[2].input(frame(mac(1), mac(3))); // unknown now: flooded (to port 1; port 0 is gone)
    expect(counts()).toEqual([0, 2, 1]);
    ports[1].input(frame(BROADCAST_MAC, mac(1)));
    expect(room.stats().ports.find((p) => p.label === 'p1')!.mac).toBe('52:54:00:00:00:01');
  });

  it('counts frames a congested port could not take', () => {
    const room = new SwitchRoom('r', { maxFrameBytes: 1514 });
    const p0 = room.attach({ deliver: () => true }, { label: 'a', lockMac: true });
    room.attach({ deliver: () => false }, { label: 'b', lockMac: true });
    p0.input(frame(BROADCAST_MAC, mac(1)));
    expect(room.stats().ports[1].drops).toEqual({ congested: 1 });
    expect(room.stats().ports[1].framesOut).toBe(0);
  });

  it('rate-limits a port by frames and by bytes (token bucket)', () => {
    let now = 0;
    const room = new SwitchRoom('r', { maxFrameBytes: 1514, now: () => now });
    const got: Uint8Array[] = [];
    const p = room.attach({ deliver: () => true }, { label: 'a', lockMac: true, rateLimit: { framesPerSecond: 10, bytesPerSecond: 1_000_000 } });
    room.attach({ deliver: (f) => (got.push(f), true) }, { label: 'b', lockMac: true });
    for (let i = 0; i < 15; i++) p.input(frame(BROADCAST_MAC, mac(1)));
    expect(got.length).toBe(10);
    now += 500; // half a second refills 5 frames
    for (let i = 0; i < 15; i++) p.input(frame(BROADCAST_MAC, mac(1)));
    expect(got.length).toBe(15);
    expect(room.stats().ports[0].drops).toEqual({ 'rate-limited': 15 });

    const q = room.attach({ deliver: () => true }, { label: 'c', lockMac: true, rateLimit: { framesPerSecond: 1000, bytesPerSecond: 1000 } });
    for (let i = 0; i < 3; i++) q.input(frame(BROADCAST_MAC, mac(3), 400));
    expect(room.stats().ports[2].drops).toEqual({ 'rate-limited': 1 });
  });

  it('keeps a pre-set MAC (the gateway) learned from the start', () => {
    const { room, counts } = setup(1);
    const gwFrames: Uint8Array[] = [];
    const gw = room.attach({ deliver: (f) => (gwFrames.push(f), true) }, { label: 'gw', mac: mac(0xfe) });
    expect(room.stats().macTableSize).toBe(1);
    expect(gw.macKey).toBe(macKey(mac(0xfe)));
    gw.input(frame(BROADCAST_MAC, mac(0x77))); // the gateway may not spoof either
    expect(counts()).toEqual([0]);
    expect(room.stats().ports[1].drops).toEqual({ spoofed: 1 });
  });

  it('storm control: limits what a port gets flooded, not its known unicast', () => {
    let now = 0;
    const room = new SwitchRoom('r', { maxFrameBytes: 1514, now: () => now });
    const got: Uint8Array[][] = [[], []];
    const limit = { framesPerSecond: 5, bytesPerSecond: 1e6 };
    const a = room.attach({ deliver: () => true }, { label: 'a', lockMac: true, floodLimit: limit });
    const b = room.attach({ deliver: (f) => (got[0].push(f), true) }, { label: 'b', lockMac: true });
    room.attach({ deliver: (f) => (got[1].push(f), true) }, { label: 'c', lockMac: true });
    b.input(frame(BROADCAST_MAC, mac(2))); // b's MAC is known from here on
    got[1].length = 0;
    for (let i = 0; i < 10; i++) a.input(frame(BROADCAST_MAC, mac(1)));
    for (let i = 0; i < 3; i++) a.input(frame(mac(9), mac(1))); // unknown unicast floods too
    expect(got.map((g) => g.length)).toEqual([5, 5]);
    for (let i = 0; i < 20; i++) a.input(frame(mac(2), mac(1))); // known unicast: not limited
    expect(got.map((g) => g.length)).toEqual([25, 5]);
    expect(room.stats().ports[0].drops).toEqual({ 'flood-limited': 8 });
    now += 1000;
    a.input(frame(BROADCAST_MAC, mac(1)));
    expect(got[1].length).toBe(6);
  });

  it('runs the source guard on client ports only, after their MAC checks', () => {
    const { room, ports, counts } = setup(2);
    const seen: number[] = [];
    room.guard = (f, src) => (seen.push(src), f[14] === 0xee ? 'ip-spoof' : null);
    ports[1].input(frame(BROADCAST_MAC, mac(7)));
    const bad = frame(BROADCAST_MAC, mac(1));
    bad[14] = 0xee;
    ports[0].input(bad);
    ports[0].input(frame(BROADCAST_MAC, mac(1)));
    ports[0].input(frame(BROADCAST_MAC, mac(7))); // port 1's MAC: dropped before the guard
    expect(counts()).toEqual([1, 1]);
    expect(seen).toEqual([macKey(mac(7)), macKey(mac(1)), macKey(mac(1))]);
    expect(room.stats().ports[0].drops).toEqual({ 'ip-spoof': 1, 'mac-in-use': 1 });
    const gw = room.attach({ deliver: () => true }, { label: 'gw', mac: mac(0xfe) });
    const fromGw = frame(BROADCAST_MAC, mac(0xfe));
    fromGw[14] = 0xee;
    gw.input(fromGw);
    expect(counts()).toEqual([2, 2]);
  });
});
