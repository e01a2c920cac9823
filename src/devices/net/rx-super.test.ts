/**
 * Super-segments from the link (rx-super.ts): the offer to the link follows the offloads in
 * force, well-formed ones reach the guest as one GSO packet, anything else over the MTU is
 * dropped and counted, and one that arrives or waits after large receive went off is cut or
 * dropped.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryLinkPair } from '../../backends/memory-frame-link.ts';
import { Feature, NetFeature as N, featureBit } from '../../virtio/constants.ts';
import { DriverMock, type DriverRing } from '../../virtio/testing/driver-mock.ts';
import { readU16, readU32, writeU16 } from '../../wire/bytes.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, TCP_URG } from '../../wire/tcp.ts';
import { completePartialChecksum } from './checksum.ts';
import { offloadsRequest, rxModeRequest, sendCtrl } from './ctrl-testing.ts';
import { VirtioNet } from './net.ts';
import { LRO_MAX_FRAME } from './rx-lro.ts';
import { SUPER_SEGMENT_MIN_GSO } from './rx-super.ts';
import { NET_CTRLQ, NetCtrlRx, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_OK } from './spec.ts';
import { GUEST_IP, GUEST_MAC, NetHarness, PEER_IP, PEER_MAC, checksumsOk, ethernet, finishL4, ipv4, tcp } from './testing.ts';

const CSUM = featureBit(N.VIRTIO_NET_F_GUEST_CSUM);
const TSO4 = featureBit(N.VIRTIO_NET_F_GUEST_TSO4);
const OTHER_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x99, 0x88, 0x77);

interface SuperSpec {
  payload: number;
  gso?: number;
  seq?: number;
  flags?: number;
  dst?: Uint8Array;
  protocol?: number;
  frag?: number;
}

/** A super-segment as the relay sends it: correct checksums, the MSS in the urgent pointer. */
function superSegment(o: SuperSpec): Uint8Array {
  const payload = Uint8Array.from({ length: o.payload }, (_, i) => (i * 13 + (i >> 8)) & 0xff);
  const t = tcp({ srcPort: 80, dstPort: 40000, seq: o.seq ?? 5000, ack: 9, flags: o.flags ?? TCP_ACK, payload });
  writeU16(t, 18, o.gso ?? 1460);
  return finishL4(ethernet(ipv4({ protocol: o.protocol ?? 6, src: PEER_IP, dst: GUEST_IP, payload: t, frag: o.frag }), 0x0800, o.dst ?? GUEST_MAC, PEER_MAC));
}

function nic(opts: { superSegments?: boolean } = {}) {
  const t = NetHarness.create(opts);
  const cq = t.driver.queues[NET_CTRLQ] as DriverRing;
  return {
    t,
    ctrl: (offloads: bigint) => expect(sendCtrl(cq, offloadsRequest(offloads)).ack).toBe(VIRTIO_NET_OK),
    promisc: (on: boolean) => expect(sendCtrl(cq, rxModeRequest(NetCtrlRx.PROMISC, on)).ack).toBe(VIRTIO_NET_OK),
  };
}

describe('super-segments from the link', () => {
  it('offers them to the link while large receive is in force, withdraws them when it goes, and on reset', () => {
    const [near, far] = memoryLinkPair();
    far.attach({ onFrame: () => {}, onLinkChange: () => {} });
    const offers: number[] = [];
    const link = Object.assign(near, { offerSuperSegments: (n: number) => void offers.push(n) });
    const device = new VirtioNet({ link, mac: GUEST_MAC });
    const driver = DriverMock.create(device, { memorySize: 1 << 20 });
    driver.initRings({ features: device.deviceFeatures | featureBit(Feature.VIRTIO_F_VERSION_1) });
    expect(offers).toEqual([LRO_MAX_FRAME]);
    const cq = driver.queues[NET_CTRLQ] as DriverRing;
    expect(sendCtrl(cq, offloadsRequest(CSUM)).ack).toBe(VIRTIO_NET_OK);
    expect(sendCtrl(cq, offloadsRequest(CSUM | TSO4)).ack).toBe(VIRTIO_NET_OK);
    device.reset();
    expect(offers).toEqual([LRO_MAX_FRAME, 0, LRO_MAX_FRAME, 0]);
    // A driver without MRG_RXBUF gets no large receive, so no offer either.
    driver.initRings({ features: (device.deviceFeatures | featureBit(Feature.VIRTIO_F_VERSION_1)) & ~featureBit(N.VIRTIO_NET_F_MRG_RXBUF) });
    expect(offers).toHaveLength(4);
    expect(NetHarness.create({ superSegments: false }).device.superSegmentsOffered).toBe(0);
  });

  it('hands a well-formed one to the guest as one TCPV4 packet: gso_size the MSS carried, partial checksum, urgent pointer cleared', () => {
    const { t } = nic();
    const captured: Uint8Array[] = [];
    t.device.onCapture = (f, dir) => dir === 'rx' && captured.push(f);
    const f = superSegment({ payload: 20 * 1460 + 100, flags: TCP_ACK | TCP_PSH });
    t.inject(f);
    t.postRx(60);
    const got = t.received();
    expect(got).toHaveLength(1);
    const [r] = got;
    expect(r.hdr).toMatchObject({ flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1460, hdrLen: 54, csumStart: 34, csumOffset: 16 });
    expect(r.frame.length).toBe(f.length);
    expect(readU16(r.frame, 34 + 18)).toBe(0);
    expect(r.frame.subarray(54)).toEqual(f.subarray(54));
    const done = r.frame.slice();
    expect(completePartialChecksum(done, r.hdr.csumStart, r.hdr.csumOffset)).toBe(true);
    expect(checksumsOk(done)).toBe(true);
    expect(t.device.stats).toMatchObject({ rxSuperSegments: 1, rxSuperSegmentMss: 21, rxFrames: 1, rxLroPackets: 0, rxDrops: 0 });
    expect(captured).toEqual([f]);
  });

  it('drops and counts anything else over the MTU', () => {
    const ok = superSegment({ payload: 3000 });
    const tagged = new Uint8Array(ok.length + 4);
    tagged.set(ok.subarray(0, 12));
    tagged.set([0x81, 0x00, 0x00, 0x05], 12);
    tagged.set(ok.subarray(12), 16);
    const cases: Record<string, Uint8Array> = {
      badChecksum: (() => {
        const f = superSegment({ payload: 3000 });
        f[f.length - 1] ^= 1;
        return f;
      })(),
      noMss: superSegment({ payload: 3000, gso: 0 }),
      tinyMss: superSegment({ payload: 3000, gso: SUPER_SEGMENT_MIN_GSO - 1 }),
      mssOverMtu: superSegment({ payload: 3000, gso: 1461 }),
      syn: superSegment({ payload: 3000, flags: TCP_SYN | TCP_ACK }),
      fin: superSegment({ payload: 3000, flags: TCP_FIN | TCP_ACK }),
      urg: superSegment({ payload: 3000, flags: TCP_URG | TCP_ACK }),
      udp: superSegment({ payload: 3000, protocol: 17 }),
      fragment: superSegment({ payload: 3000, frag: 0x2000 }),
      trailing: Uint8Array.of(...ok, 0, 0),
      tooLong: superSegment({ payload: LRO_MAX_FRAME - 54 + 1 }),
      tagged,
      notIp: ethernet(new Uint8Array(3000), 0x88b5, GUEST_MAC, PEER_MAC),
    };
    for (const [name, f] of Object.entries(cases)) {
      const { t } = nic();
      t.postRx(60);
      t.inject(f);
      expect(t.received(), name).toEqual([]);
      expect(t.device.stats.rxDropsOversized, name).toBe(1);
      expect(t.device.lastDropReason, name).toBeTruthy();
    }
  });

  it('applies the receive filter: one for another MAC is filtered', () => {
    const { t, promisc } = nic();
    promisc(false);
    t.postRx(60);
    t.inject(superSegment({ payload: 5000, dst: OTHER_MAC }));
    expect(t.received()).toEqual([]);
    expect(t.device.control.stats.rxDropsFiltered).toBe(1);
  });

  it('after the guest turned large receive off (the relay has not heard yet): cut into MTU frames here, checksums done', () => {
    // At most 200 segments, so the ring holds them all.
    const cases = fc.integer({ min: 1461, max: 40_000 }).chain((payload) => fc.tuple(fc.constant(payload), fc.integer({ min: Math.max(SUPER_SEGMENT_MIN_GSO, Math.ceil(payload / 200)), max: 1460 })));
    fc.assert(
      fc.property(cases, fc.integer({ min: 0, max: 0xffffffff }), ([payload, gso], seq) => {
        const { t, ctrl } = nic();
        ctrl(CSUM);
        const f = superSegment({ payload, gso, seq });
        const segments = Math.ceil(payload / gso);
        t.inject(f);
        t.postRx(segments + 2);
        const got = t.received();
        expect(got).toHaveLength(segments);
        const data: number[] = [];
        for (const [i, r] of got.entries()) {
          expect(r.hdr.gsoType).toBe(VIRTIO_NET_HDR_GSO_NONE);
          expect(r.hdr.flags).toBe(VIRTIO_NET_HDR_F_DATA_VALID);
          expect(r.frame.length).toBeLessThanOrEqual(1514);
          expect(checksumsOk(r.frame)).toBe(true);
          expect(readU16(r.frame, 34 + 18)).toBe(0);
          expect(readU32(r.frame, 38)).toBe((seq + i * gso) >>> 0);
          data.push(...r.frame.subarray(54));
        }
        expect(Uint8Array.from(data)).toEqual(f.subarray(54));
        expect(t.device.stats.rxSuperSegmentsCut).toBe(1);
      }),
      { numRuns: 30 },
    );
  });

  it('cut: more frames than the backlog may hold drop the whole super-segment, counted, nothing made', () => {
    const { t, ctrl } = nic();
    ctrl(CSUM);
    t.inject(superSegment({ payload: 40_000, gso: 64 })); // 625 frames > 256
    t.postRx(100);
    expect(t.received()).toEqual([]);
    expect(t.device.stats).toMatchObject({ rxDropsBacklogFull: 1, rxSuperSegmentsCut: 0, backlogFrames: 0 });
  });

  it('one still waiting when large receive goes off is dropped and counted; later frames flow', () => {
    const { t, ctrl } = nic();
    t.inject(superSegment({ payload: 10_000 })); // no buffers yet: it waits
    ctrl(CSUM);
    const small = superSegment({ payload: 1000 }); // fits the MTU: a plain frame
    writeU16(small, 34 + 18, 0);
    finishL4(small);
    t.inject(small);
    t.postRx(20);
    const got = t.received();
    expect(got.map((r) => r.frame)).toEqual([small]);
    expect(t.device.stats.rxDropsSuperSegments).toBe(1);
  });

  it('never throws on arbitrary oversized frames, and delivers only what it checked', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1500, max: 20_000 }),
        fc.integer({ min: 0, max: 1600 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        (payload, gso, flips) => {
          const { t } = nic();
          const f = superSegment({ payload, gso });
          for (const [at, v] of flips) f[at % f.length] = v;
          t.postRx(40);
          t.inject(f);
          const got = t.received();
          const s = t.device.stats;
          expect(got.length + s.rxDropsOversized + t.device.control.stats.rxDropsFiltered).toBe(1);
          for (const r of got) {
            expect(r.hdr.gsoType).toBe(VIRTIO_NET_HDR_GSO_TCPV4);
            expect(r.hdr.gsoSize).toBeGreaterThanOrEqual(SUPER_SEGMENT_MIN_GSO);
            expect(r.hdr.hdrLen + r.hdr.gsoSize).toBeLessThanOrEqual(1514);
            const done = r.frame.slice();
            completePartialChecksum(done, r.hdr.csumStart, r.hdr.csumOffset);
            expect(checksumsOk(done)).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
