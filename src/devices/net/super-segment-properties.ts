/**
 * virtio-net against frames over the MTU from the link (fast-check; unit tests and the net
 * fuzz campaign): honest super-segments (rx-super.ts), mutated ones (bytes flipped, cut,
 * extended) and garbage up to past 64 KiB, with large receive on or off, the filter
 * promiscuous or not, buffers posted before or after, of any size. Nothing throws; the device
 * never resets; each frame over the MTU is delivered whole, cut, or dropped and counted (or
 * still waits for buffers); a GSO packet the guest gets is one the device checked: gso_size
 * in bounds, its partial checksum completes to a valid one, its data the frame's; frames cut
 * fit the MTU with valid checksums. Then a plain frame still arrives (once none waits).
 */
import fc from 'fast-check';
import { DeviceStatus } from '../../virtio/constants.ts';
import { fail } from '../../virtio/testing/invariants.ts';
import { readU16 } from '../../wire/bytes.ts';
import { ETH_MAX_FRAME, maxFrameLength } from '../../wire/ethernet.ts';
import { mutatedFrameArb } from '../../wire/testing/frame-arbitraries.ts';
import { completePartialChecksum } from './checksum.ts';
import { offloadsRequest, rxModeRequest, sendCtrl } from './ctrl-testing.ts';
import { LRO_MAX_FRAME } from './rx-lro.ts';
import { SUPER_SEGMENT_MIN_GSO } from './rx-super.ts';
import { NET_CTRLQ, NetCtrlRx, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_SIZE } from './spec.ts';
import { GUEST_IP, GUEST_MAC, NetHarness, PEER_IP, PEER_MAC, checksumsOk, ethernet, finishL4, ipv4, tcp } from './testing.ts';
import { NetFeature, featureBit } from '../../virtio/constants.ts';
import { equalBytes } from '../testing/equal-bytes.ts';
import type { DriverRing } from '../../virtio/testing/driver-mock.ts';

const CSUM = featureBit(NetFeature.VIRTIO_NET_F_GUEST_CSUM);
const TSO4 = featureBit(NetFeature.VIRTIO_NET_F_GUEST_TSO4);

/** A super-segment as the relay sends it (link-hello.ts): checksums right, the MSS in the urgent pointer. */
export const superSegmentArb = fc
  .record({
    payload: fc.integer({ min: 1461, max: LRO_MAX_FRAME - 54 }),
    gso: fc.oneof(fc.integer({ min: SUPER_SEGMENT_MIN_GSO, max: 1460 }), fc.integer({ min: 0, max: 0xffff })),
    seq: fc.integer({ min: 0, max: 0xffffffff }),
    flags: fc.constantFrom(0x10, 0x18, 0x11, 0x12, 0x30),
  })
  .map((s) => {
    const t = tcp({ srcPort: 80, dstPort: 40000, seq: s.seq, ack: 1, flags: s.flags, payload: Uint8Array.from({ length: s.payload }, (_, i) => (i * 7) & 0xff) });
    t[18] = s.gso >> 8;
    t[19] = s.gso & 0xff;
    return finishL4(ethernet(ipv4({ protocol: 6, src: PEER_IP, dst: GUEST_IP, payload: t }), 0x0800, GUEST_MAC, PEER_MAC));
  });

const oversizedArb = fc.oneof(
  { weight: 3, arbitrary: superSegmentArb },
  { weight: 4, arbitrary: mutatedFrameArb(superSegmentArb) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1515, maxLength: LRO_MAX_FRAME + 100 }) },
);

export function netSuperSegmentProperty(): fc.IProperty<any> {
  return fc.property(
    oversizedArb,
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
    // Buffers together hold a 64 KiB packet, as a Linux driver's ring does.
    fc.constantFrom(VIRTIO_NET_HDR_SIZE + 1518, 4096, 600, 1000),
    (frame, largeReceive, promisc, buffersFirst, bufferSize) => {
      const t = NetHarness.create();
      const cq = t.driver.queues[NET_CTRLQ] as DriverRing;
      sendCtrl(cq, offloadsRequest(largeReceive ? CSUM | TSO4 : CSUM));
      sendCtrl(cq, rxModeRequest(NetCtrlRx.PROMISC, promisc));
      const s = t.device.stats;
      const before = s.rxDropsOversized + s.rxDropsRunt + s.rxDropsBacklogFull + s.rxDropsSuperSegments + s.rxDropsBufferTooSmall + t.device.control.stats.rxDropsFiltered;
      const oversized = frame.length > maxFrameLength(frame, t.device.mtu);
      const copy = frame.slice();
      if (buffersFirst) t.postRx(200, bufferSize);
      t.inject(frame);
      if (!buffersFirst) t.postRx(200, bufferSize);
      if (t.driver.status & DeviceStatus.DEVICE_NEEDS_RESET) fail('a frame from the link reset the device');
      const got = t.received();
      if (!oversized) return; // the plain path: the traffic property's business
      const drops = s.rxDropsOversized + s.rxDropsRunt + s.rxDropsBacklogFull + s.rxDropsSuperSegments + s.rxDropsBufferTooSmall + t.device.control.stats.rxDropsFiltered - before;
      const outcomes = s.rxSuperSegments + s.rxSuperSegmentsCut + drops + (s.backlogFrames > 0 && got.length === 0 ? 1 : 0);
      if (outcomes !== 1) fail(`an oversized frame had ${outcomes} outcomes (delivered, cut, dropped, waiting)`);
      for (const r of got) {
        if (r.hdr.gsoType === VIRTIO_NET_HDR_GSO_TCPV4) {
          if (!largeReceive) fail('a GSO packet with large receive off');
          if (r.hdr.gsoSize < SUPER_SEGMENT_MIN_GSO || r.hdr.hdrLen + r.hdr.gsoSize > ETH_MAX_FRAME) fail(`gso_size ${r.hdr.gsoSize} with hdr_len ${r.hdr.hdrLen}`);
          if (r.frame.length > LRO_MAX_FRAME) fail(`a ${r.frame.length}-byte super-frame`);
          if (readU16(r.frame, r.hdr.csumStart + 18) !== 0) fail('the urgent pointer reached the guest');
          if (!equalBytes(r.frame.subarray(r.hdr.hdrLen), copy.subarray(r.hdr.hdrLen, r.frame.length))) fail('super-segment data changed');
          const done = r.frame.slice();
          if (!completePartialChecksum(done, r.hdr.csumStart, r.hdr.csumOffset) || !checksumsOk(done)) fail('a super-segment whose partial checksum does not complete');
        } else {
          if (r.hdr.gsoType !== VIRTIO_NET_HDR_GSO_NONE) fail(`gso_type ${r.hdr.gsoType}`);
          if (r.frame.length > ETH_MAX_FRAME) fail(`a ${r.frame.length}-byte frame cut from a super-segment`);
          if (!checksumsOk(r.frame)) fail('a frame cut from a super-segment with a bad checksum');
        }
      }
      // A plain frame still arrives (once nothing waits before it).
      if (s.backlogFrames > 0) return;
      const plain = ethernet(Uint8Array.from({ length: 46 }, (_, i) => i), 0x88b5, GUEST_MAC, PEER_MAC);
      t.postRx(4);
      t.inject(plain);
      const after = t.received();
      if (!after.some((r) => equalBytes(r.frame, plain))) fail('a plain frame did not arrive after an oversized one');
    },
  );
}
