/**
 * Properties of virtio-net under random traffic (fast-check): any mix of tx chains (random
 * headers, offloads, lengths, descriptor splits), frames from the link, rx buffers of any
 * size, link flaps and negotiated feature sets never throws out of a BAR handler or the
 * link's event handler, never resets the device (nothing here breaks the ring), writes guest
 * memory only inside posted rx buffers, and accounts for every frame.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Region } from '../virtio/queue/descriptor-chain.ts';
import { DeviceStatus, Feature, NetFeature, featureBit } from '../virtio/constants.ts';
import { NetHarness, ethernet, ipv4, partial, tcp } from './net-testing.ts';

const op = fc.oneof(
  fc.record({
    kind: fc.constant('tx' as const),
    len: fc.oneof(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 1600 }), fc.integer({ min: 1400, max: 5000 })),
    hdr: fc.uint8Array({ minLength: 12, maxLength: 12 }),
    split: fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 5 }),
    indirect: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('tso' as const),
    payload: fc.integer({ min: 0, max: 9000 }),
    mss: fc.integer({ min: 0, max: 1600 }),
    split: fc.array(fc.integer({ min: 1, max: 3000 }), { maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('inject' as const), len: fc.integer({ min: 0, max: 1600 }) }),
  fc.record({
    kind: fc.constant('post' as const),
    sizes: fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 2000 })), { minLength: 1, maxLength: 4 }),
    kick: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('link' as const), up: fc.boolean() }),
);

const N = NetFeature;
const optional = [N.VIRTIO_NET_F_CSUM, N.VIRTIO_NET_F_GUEST_CSUM, N.VIRTIO_NET_F_HOST_TSO4, N.VIRTIO_NET_F_MRG_RXBUF, N.VIRTIO_NET_F_STATUS];

describe('virtio-net under random traffic', () => {
  it('never throws, never writes outside rx buffers, accounts for every frame', () => {
    fc.assert(
      fc.property(fc.subarray(optional), fc.boolean(), fc.array(op, { maxLength: 60 }), (bits, indirectRing, ops) => {
        let features = featureBit(Feature.VIRTIO_F_VERSION_1) | featureBit(N.VIRTIO_NET_F_MAC) | featureBit(N.VIRTIO_NET_F_MTU);
        if (indirectRing) features |= featureBit(Feature.VIRTIO_F_RING_INDIRECT_DESC);
        for (const b of bits) features |= featureBit(b);
        const t = NetHarness.create({ features, rxBacklogFrames: 8, rxBacklogBytes: 6000 });
        const rxRegions: Region[] = [];
        let injected = 0;
        for (const o of ops) {
          switch (o.kind) {
            case 'tx': {
              if (t.txq.freeDescriptors < 8) t.txDone();
              const frame = Uint8Array.from({ length: o.len }, (_, i) => i & 0xff);
              const hdr = o.hdr;
              expect(() => {
                t.add(frame, { flags: hdr[0] & 3, gsoType: hdr[1] & 0x83, gsoSize: hdr[4] | (hdr[5] << 8), csumStart: hdr[6] | (hdr[7] << 3), csumOffset: hdr[8] & 31 }, [12, ...o.split], o.indirect && indirectRing);
                t.txq.kick();
              }).not.toThrow();
              break;
            }
            case 'tso': {
              if (t.txq.freeDescriptors < 8) t.txDone();
              const { frame, hdr } = partial(ethernet(ipv4({ protocol: 6, payload: tcp({ payload: new Uint8Array(o.payload) }) })));
              expect(() => t.send(frame, { ...hdr, gsoType: 1, gsoSize: o.mss }, [12, ...o.split])).not.toThrow();
              break;
            }
            case 'inject':
              injected++;
              expect(() => t.inject(ethernet(new Uint8Array(Math.max(0, o.len - 14)).fill(0x5a)).subarray(0, o.len))).not.toThrow();
              break;
            case 'post':
              if (t.rxq.freeDescriptors < o.sizes.length) break;
              expect(() => {
                for (const size of o.sizes) rxRegions.push(...t.rxq.add({ writable: [size] }).writable);
                if (o.kick) t.rxq.kick();
              }).not.toThrow();
              break;
            case 'link':
              expect(() => t.peer.setUp(o.up)).not.toThrow();
              break;
          }
        }
        const mem = t.driver.memory;
        expect(mem.rejected).toEqual([]);
        for (const w of mem.writtenNotices) {
          expect(rxRegions.some((r) => w.addr >= r.addr && w.addr + w.len <= r.addr + r.len)).toBe(true);
        }
        expect(t.driver.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(0);
        expect(t.driver.errors).toEqual([]);
        const s = t.device.stats;
        // Every injected frame (with the link up) was delivered, dropped for a reason, or is waiting.
        expect(s.rxFrames + s.rxDrops + s.backlogFrames).toBeLessThanOrEqual(injected);
        expect(s.rxFrames + s.rxDrops + s.backlogFrames + t.peer.dropped).toBe(injected);
        for (const r of t.received()) expect(r.hdr.numBuffers).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 150 },
    );
  });
});
