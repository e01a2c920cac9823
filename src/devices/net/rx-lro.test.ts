import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Feature, NetFeature, featureBit } from '../../virtio/constants.ts';
import { readU16, readU32 } from '../../wire/bytes.ts';
import { TCP_ACK as ACK, TCP_FIN as FIN, TCP_PSH as PSH } from '../../wire/tcp.ts';
import { LRO_MAX_SEGMENTS } from './budget.ts';
import { completePartialChecksum } from './checksum.ts';
import { LRO_MAX_FRAME, coalesceTcp4 } from './rx-lro.ts';
import { VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_SIZE } from './spec.ts';
import { GUEST_IP, GUEST_MAC, NetHarness, PEER_IP, PEER_MAC, checksumsOk, ethernet, finishL4, ipv4, tcp, udp, type RxFrame } from './testing.ts';

/** A segment from the peer to the guest, checksums correct unless `corrupt`. */
function segment(o: { seq: number; size: number; flags?: number; port?: number; ack?: number; corrupt?: boolean; fill?: number }): Uint8Array {
  const payload = Uint8Array.from({ length: o.size }, (_, i) => (i * 31 + o.seq + (o.fill ?? 0)) & 0xff);
  const t = tcp({ srcPort: 80, dstPort: o.port ?? 40000, seq: o.seq, ack: o.ack ?? 777, flags: o.flags ?? ACK, payload });
  const f = finishL4(ethernet(ipv4({ protocol: 6, src: PEER_IP, dst: GUEST_IP, payload: t }), 0x0800, GUEST_MAC, PEER_MAC));
  if (o.corrupt) f[f.length - 1] ^= 0x5a;
  return f;
}

/** What a driver takes of the device's offer: all of it, or all but GUEST_TSO4. */
const ALL = NetHarness.create().device.deviceFeatures | featureBit(Feature.VIRTIO_F_VERSION_1);
const NO_GUEST_TSO = ALL & ~featureBit(NetFeature.VIRTIO_NET_F_GUEST_TSO4);

/** Frames into an rx queue with no buffers (they wait together), then buffers: what the guest gets. */
function receiveTogether(frames: Uint8Array[], opts: { features?: bigint; buffers?: number; size?: number } = {}): { h: NetHarness; got: RxFrame[] } {
  const h = NetHarness.create({ features: opts.features });
  for (const f of frames) h.inject(f);
  h.postRx(opts.buffers ?? 250, opts.size ?? VIRTIO_NET_HDR_SIZE + 1518);
  return { h, got: h.received() };
}

/** What Linux's GSO would cut a received super-frame back into: payload chunks of gso_size, seq advanced. */
function resegment(r: RxFrame): { seq: number; payload: Uint8Array; port: number }[] {
  const f = r.frame;
  const data = r.hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE ? 54 : r.hdr.hdrLen;
  const seq0 = readU32(f, 38);
  const size = r.hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE ? f.length : r.hdr.gsoSize;
  const out = [];
  for (let at = data; at < f.length; at += size) out.push({ seq: (seq0 + at - data) >>> 0, payload: f.subarray(at, Math.min(f.length, at + size)), port: readU16(f, 36) });
  return out;
}

describe('large receive (GUEST_TSO4)', () => {
  it('merges a burst of one flow into one TCPV4 super-frame with a partial checksum', () => {
    const frames = Array.from({ length: 44 }, (_, i) => segment({ seq: 0xffff0000 + i * 1460, size: 1460, flags: i === 43 ? PSH | ACK : ACK }));
    const { h, got } = receiveTogether(frames);
    expect(got.length).toBe(1);
    const [r] = got;
    expect(r.hdr).toMatchObject({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1460, hdrLen: 54, csumStart: 34, csumOffset: 16 });
    expect(r.buffers).toBe(r.hdr.numBuffers);
    expect(r.frame.length).toBe(54 + 44 * 1460);
    expect(readU16(r.frame, 16)).toBe(r.frame.length - 14);
    expect(r.frame[47]).toBe(PSH | ACK);
    // The guest completes the checksum as a partial one: then everything verifies.
    const done = r.frame.slice();
    expect(checksumsOk(done)).toBe(false);
    expect(completePartialChecksum(done, r.hdr.csumStart, r.hdr.csumOffset)).toBe(true);
    expect(checksumsOk(done)).toBe(true);
    expect(resegment(r).map((s) => s.payload)).toEqual(frames.map((f) => f.subarray(54)));
    expect(h.device.stats).toMatchObject({ rxLroPackets: 1, rxLroSegments: 44, rxFrames: 44 });
  });

  it('stops at 64 KiB: the rest of the burst starts the next super-frame', () => {
    const frames = Array.from({ length: 60 }, (_, i) => segment({ seq: i * 1460, size: 1460 }));
    const { got } = receiveTogether(frames);
    expect(got.map((r) => r.frame.length)).toEqual([54 + 44 * 1460, 54 + 16 * 1460]);
    expect(got.every((r) => r.frame.length <= LRO_MAX_FRAME)).toBe(true);
  });

  it('does not merge a segment with a bad checksum, a seq gap, another flow, FIN, or a longer payload', () => {
    const cases: Record<string, Uint8Array> = {
      corrupt: segment({ seq: 1460, size: 1460, corrupt: true }),
      gap: segment({ seq: 1461, size: 1460 }),
      flow: segment({ seq: 1460, size: 1460, port: 40001 }),
      ack: segment({ seq: 1460, size: 1460, ack: 778 }),
      fin: segment({ seq: 1460, size: 1460, flags: FIN | ACK }),
      longer: segment({ seq: 1460, size: 1000 }),
    };
    for (const [name, second] of Object.entries(cases)) {
      const first = segment({ seq: 0, size: name === 'longer' ? 900 : 1460 });
      const { got } = receiveTogether([first, second]);
      expect(got.map((r) => r.hdr.gsoType), name).toEqual([VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_NONE]);
      expect(got[0].frame, name).toEqual(first);
      expect(got[1].frame, name).toEqual(second);
      expect(got[1].hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID, name).toBe(name === 'corrupt' ? 0 : VIRTIO_NET_HDR_F_DATA_VALID);
    }
  });

  it('a driver without GUEST_TSO4 gets every frame as it came', () => {
    const frames = Array.from({ length: 10 }, (_, i) => segment({ seq: i * 1460, size: 1460 }));
    const { h, got } = receiveTogether(frames, { features: NO_GUEST_TSO });
    expect(got.map((r) => r.frame)).toEqual(frames);
    expect(got.every((r) => r.hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE && r.hdr.flags === VIRTIO_NET_HDR_F_DATA_VALID)).toBe(true);
    expect(h.device.stats.rxLroPackets).toBe(0);
  });

  it('is not offered without MRG_RXBUF, and can be turned off', () => {
    const bit = featureBit(NetFeature.VIRTIO_NET_F_GUEST_TSO4);
    expect(NetHarness.create().device.deviceFeatures & bit).toBe(bit);
    expect(NetHarness.create({ mergeableRxBuffers: false }).device.deviceFeatures & bit).toBe(0n);
    expect(NetHarness.create({ guestTso: false }).device.deviceFeatures & bit).toBe(0n);
  });

  it('with rxHold, the first frame of a burst goes in at once and the rest merge at the hold', () => {
    const jobs: Array<() => void> = [];
    const h = NetHarness.create({ rxHold: (job) => jobs.push(job) });
    h.postRx(200);
    const frames = Array.from({ length: 20 }, (_, i) => segment({ seq: i * 1460, size: 1460 }));
    for (const f of frames) h.inject(f);
    expect(h.received().map((r) => r.frame)).toEqual([frames[0]]);
    expect(jobs.length).toBe(1);
    jobs.shift()!();
    const rest = h.received();
    expect(rest.length).toBe(1);
    expect(rest[0].hdr.gsoType).toBe(VIRTIO_NET_HDR_GSO_TCPV4);
    expect(resegment(rest[0]).map((s) => s.payload)).toEqual(frames.slice(1).map((f) => f.subarray(54)));
    // After the hold ran, the next frame goes in at once again.
    h.inject(segment({ seq: 20 * 1460, size: 1460 }));
    expect(h.received().length).toBe(1);
  });

  it('a ring too small for a super-frame gets the segments one by one', () => {
    // 8 descriptors: lroFrameLimit allows 2 frames' worth; buffers of 200 bytes cannot hold even that.
    const h = NetHarness.create({ queueSize: 8 });
    const frames = Array.from({ length: 4 }, (_, i) => segment({ seq: i * 600, size: 600 }));
    for (const f of frames) h.inject(f);
    h.postRx(8, 200);
    const got = h.received();
    expect(got.length).toBeGreaterThan(0);
    expect(got.every((r) => r.hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE)).toBe(true);
    expect(got.map((r) => r.frame)).toEqual(frames.slice(0, got.length));
  });

  it('coalesceTcp4 honours its segment bound and never writes past `out`', () => {
    const frames = Array.from({ length: 10 }, (_, i) => segment({ seq: i * 100, size: 100 }));
    const out = new Uint8Array(54 + 450);
    const run = coalesceTcp4((i) => frames[i], 3, out);
    expect(run?.segments).toBe(3);
    const small = coalesceTcp4((i) => frames[i], LRO_MAX_SEGMENTS, out);
    expect(small?.segments).toBe(4); // 54 + 4 × 100 ≤ 504 < 54 + 5 × 100
    expect(small?.length).toBe(454);
  });
});

// ---- property: segment boundaries, checksums, num_buffers under random traffic ----------------

interface Planned {
  frame: Uint8Array;
  valid: boolean;
}

/** Two flows and some UDP, interleaved, with gaps, odd sizes, PSH/FIN and bad checksums now and then. */
const trafficArb = fc
  .array(
    fc.record({
      kind: fc.constantFrom('a', 'a', 'a', 'a', 'b', 'udp'),
      size: fc.oneof(fc.constant(1460), fc.constant(1460), fc.integer({ min: 1, max: 1460 })),
      flags: fc.constantFrom(ACK, ACK, ACK, ACK, PSH | ACK, FIN | ACK),
      gap: fc.integer({ min: 0, max: 20 }),
      corrupt: fc.integer({ min: 0, max: 30 }),
    }),
    { minLength: 1, maxLength: 120 },
  )
  .map((steps) => {
    const seq: Record<string, number> = { a: 0xfffff000, b: 5 };
    return steps.map((s): Planned => {
      if (s.kind === 'udp') {
        const f = finishL4(ethernet(ipv4({ protocol: 17, src: PEER_IP, dst: GUEST_IP, payload: udp(new Uint8Array(s.size)) }), 0x0800, GUEST_MAC, PEER_MAC));
        return { frame: f, valid: true };
      }
      const at = seq[s.kind] + (s.gap === 0 ? 1 : 0);
      seq[s.kind] = (at + s.size) >>> 0;
      const corrupt = s.corrupt === 0;
      return { frame: segment({ seq: at >>> 0, size: s.size, flags: s.flags, port: s.kind === 'a' ? 40000 : 40001, corrupt }), valid: !corrupt };
    });
  });

describe('large receive property', () => {
  it('resegmenting what the guest got gives back every frame sent, in order; super-frames are well-formed', () => {
    fc.assert(
      fc.property(trafficArb, fc.constantFrom(ALL, NO_GUEST_TSO), fc.constantFrom(1518, 4096, 600), (planned, features, size) => {
        const { h, got } = receiveTogether(
          planned.map((p) => p.frame),
          { features, size: VIRTIO_NET_HDR_SIZE + size, buffers: 250 },
        );
        const expanded: { payload: Uint8Array; seq?: number; merged: boolean }[] = [];
        for (const r of got) {
          if (r.hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE) {
            expanded.push({ payload: r.frame, merged: false });
            continue;
          }
          expect(features).toBe(ALL);
          expect(r.hdr.gsoType).toBe(VIRTIO_NET_HDR_GSO_TCPV4);
          expect(r.hdr).toMatchObject({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, csumStart: 34, csumOffset: 16, hdrLen: 54 });
          expect(r.frame.length).toBeLessThanOrEqual(LRO_MAX_FRAME);
          expect(readU16(r.frame, 16)).toBe(r.frame.length - 14);
          const done = r.frame.slice();
          completePartialChecksum(done, r.hdr.csumStart, r.hdr.csumOffset);
          expect(checksumsOk(done)).toBe(true);
          const segs = resegment(r);
          expect(segs.length).toBeGreaterThan(1);
          for (const s of segs) expanded.push({ payload: s.payload, seq: s.seq, merged: true });
        }
        // num_buffers: the buffers used add up to the used ring's entries.
        expect(got.reduce((n, r) => n + r.buffers, 0)).toBe(h.device.stats.rxBuffersUsed);
        expect(expanded.length).toBe(planned.length);
        planned.forEach((p, i) => {
          const e = expanded[i];
          if (!e.merged) return expect(e.payload).toEqual(p.frame);
          expect(p.valid).toBe(true); // a frame with a bad checksum is never merged
          expect(e.payload).toEqual(p.frame.subarray(54));
          expect(e.seq).toBe(readU32(p.frame, 38));
        });
      }),
      { numRuns: 60 },
    );
  });
});
