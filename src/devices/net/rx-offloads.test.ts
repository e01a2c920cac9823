/**
 * The rx path against the guest offloads in force (CTRL_GUEST_OFFLOADS, §5.1.6.5.6.1) and the
 * receive filter (CTRL_RX): what a driver turns off after negotiation, it no longer gets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NetFeature as N, featureBit } from '../../virtio/constants.ts';
import type { DriverRing } from '../../virtio/testing/driver-mock.ts';
import { offloadsRequest, rxModeRequest, sendCtrl } from './ctrl-testing.ts';
import { NET_CTRLQ, NetCtrlRx, VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_OK } from './spec.ts';
import { GUEST_IP, GUEST_MAC, NetHarness, PEER_IP, PEER_MAC, checksumsOk, ethernet, finishL4, ipv4, tcp } from './testing.ts';

const CSUM = featureBit(N.VIRTIO_NET_F_GUEST_CSUM);
const TSO4 = featureBit(N.VIRTIO_NET_F_GUEST_TSO4);
const OTHER_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x99, 0x88, 0x77);

/** A segment of one flow toward `dst`; `corrupt` breaks its TCP checksum. */
function segment(seq: number, size: number, o: { dst?: Uint8Array; corrupt?: boolean } = {}): Uint8Array {
  const payload = Uint8Array.from({ length: size }, (_, i) => (i * 7 + seq) & 0xff);
  const f = finishL4(ethernet(ipv4({ protocol: 6, src: PEER_IP, dst: GUEST_IP, payload: tcp({ srcPort: 80, dstPort: 40000, seq, ack: 1, flags: 0x10, payload }) }), 0x0800, o.dst ?? GUEST_MAC, PEER_MAC));
  if (o.corrupt) f[f.length - 1] ^= 0x40;
  return f;
}

/** A NIC whose driver took everything offered (GUEST_TSO4, GUEST_CSUM, MRG_RXBUF, CTRL_VQ …). */
function everything() {
  const t = NetHarness.create();
  const cq = t.driver.queues[NET_CTRLQ] as DriverRing;
  expect(t.device.guestOffloads & (CSUM | TSO4)).toBe(CSUM | TSO4);
  return { t, ctrl: (request: Uint8Array) => expect(sendCtrl(cq, request).ack).toBe(VIRTIO_NET_OK) };
}

/**
 * The frames arrive while no buffer is posted (they wait together, as a burst would), then
 * buffers: one per frame and `spare` more. Buffers left over take the next frames as they
 * come, so a later burst waits together only after `spare` 0 and no merging.
 */
function burst(t: NetHarness, frames: Uint8Array[], spare = 4) {
  for (const f of frames) t.inject(f);
  t.postRx(frames.length + spare);
  return t.received();
}

describe('rx honours the guest offloads in force', () => {
  it('GUEST_TSO4 turned off by CTRL_GUEST_OFFLOADS: only MTU frames, each as sent, DATA_VALID only where the checksums verify', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 2, maxLength: 40 }),
        fc.integer({ min: 1, max: 1460 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (corrupt, size, seq0) => {
          const { t, ctrl } = everything();
          ctrl(offloadsRequest(CSUM));
          const frames = corrupt.map((c, i) => segment((seq0 + i * size) >>> 0, size, { corrupt: c }));
          const got = burst(t, frames);
          expect(got.map((r) => r.frame)).toEqual(frames);
          for (const [i, r] of got.entries()) {
            expect(r.hdr.gsoType).toBe(VIRTIO_NET_HDR_GSO_NONE);
            expect(r.frame.length).toBeLessThanOrEqual(t.device.mtu + 14);
            expect(r.hdr.flags).toBe(corrupt[i] ? 0 : VIRTIO_NET_HDR_F_DATA_VALID);
            expect(checksumsOk(r.frame)).toBe(!corrupt[i]);
          }
          expect(t.device.stats.rxLroPackets).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('GUEST_CSUM off too: flags are zero (no DATA_VALID, no NEEDS_CSUM), frames come fully checksummed', () => {
    const { t, ctrl } = everything();
    ctrl(offloadsRequest(0n));
    const frames = Array.from({ length: 12 }, (_, i) => segment(i * 1460, 1460));
    const got = burst(t, frames);
    expect(got.map((r) => r.frame)).toEqual(frames);
    expect(got.every((r) => r.hdr.flags === 0 && r.hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE && checksumsOk(r.frame))).toBe(true);
  });

  it('a driver that keeps GUEST_TSO4 but drops GUEST_CSUM gets no super-frame (they carry a partial checksum)', () => {
    const { t, ctrl } = everything();
    ctrl(offloadsRequest(TSO4));
    const got = burst(t, Array.from({ length: 8 }, (_, i) => segment(i * 1000, 1000)));
    expect(got.length).toBe(8);
    expect(got.every((r) => r.hdr.flags === 0 && r.hdr.gsoType === VIRTIO_NET_HDR_GSO_NONE)).toBe(true);
  });

  it('GUEST_TSO4 on again: the next burst merges', () => {
    const { t, ctrl } = everything();
    ctrl(offloadsRequest(CSUM));
    expect(burst(t, [segment(0, 1460), segment(1460, 1460)], 0).length).toBe(2);
    ctrl(offloadsRequest(CSUM | TSO4));
    const got = burst(t, Array.from({ length: 10 }, (_, i) => segment(2920 + i * 1460, 1460)));
    expect(got.map((r) => r.hdr.gsoType)).toEqual([VIRTIO_NET_HDR_GSO_TCPV4]);
    expect(t.device.stats.rxLroSegments).toBe(10);
  });

  it('the receive filter applies to super-frames: frames for another MAC never join one, and a burst for it never arrives', () => {
    // Ours interleaved with segments of the same flow addressed elsewhere.
    const ours = Array.from({ length: 6 }, (_, i) => segment(i * 1200, 1200));
    const mixed = ours.flatMap((f, i) => [f, segment(i * 1200, 1200, { dst: OTHER_MAC })]);
    const filtered = everything();
    filtered.ctrl(rxModeRequest(NetCtrlRx.PROMISC, false));
    const got = burst(filtered.t, mixed);
    expect(got.length).toBe(1);
    expect(got[0].hdr.gsoType).toBe(VIRTIO_NET_HDR_GSO_TCPV4);
    expect(got[0].frame.subarray(0, 6)).toEqual(GUEST_MAC);
    expect(got[0].frame.length).toBe(54 + 6 * 1200);
    expect(filtered.t.device.control.stats.rxDropsFiltered).toBe(6);
    expect(burst(filtered.t, Array.from({ length: 6 }, (_, i) => segment(i * 1200, 1200, { dst: OTHER_MAC })))).toEqual([]);
    expect(filtered.t.device.control.stats.rxDropsFiltered).toBe(12);
    // Promiscuous (power-on): the foreign frames come in and, another Ethernet header, break every run.
    const promisc = everything();
    const all = burst(promisc.t, mixed);
    expect(all.map((r) => r.frame)).toEqual(mixed);
    expect(promisc.t.device.stats.rxLroPackets).toBe(0);
  });
});
