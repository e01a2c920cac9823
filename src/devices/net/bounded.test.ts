/**
 * Regressions of issue #16 for virtio-net: what one kick may cost the host, and frames a real
 * guest sends that must not be refused.
 */
import { describe, expect, it } from 'vitest';
import { Feature, NetFeature, features } from '../../virtio/constants.ts';
import { TCP_ACK, TCP_PSH } from '../../wire/tcp.ts';
import { VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_SIZE } from './spec.ts';
import { VirtioNet } from './net.ts';
import { memoryLinkPair } from '../../backends/memory-frame-link.ts';
import { GUEST_MAC, NetHarness, PEER_MAC, checksumsOk, ethernet, ipv4, partial, tcp } from './testing.ts';

const N = NetFeature;
const NO_MRG = features(Feature.VIRTIO_F_VERSION_1, N.VIRTIO_NET_F_MAC, N.VIRTIO_NET_F_STATUS, N.VIRTIO_NET_F_MTU);
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** A TCP/IPv4 super-frame of `payload` bytes as Linux hands it over for TSO. */
function superFrame(payload: number, seq = 1) {
  return partial(ethernet(ipv4({ protocol: 6, payload: tcp({ seq, flags: TCP_PSH | TCP_ACK, payload: bytes(payload) }) })));
}

/** An 802.1Q-tagged frame of `length` bytes in all (tag included). */
function tagged(length: number, dst = PEER_MAC, src = GUEST_MAC): Uint8Array {
  const f = ethernet(bytes(length - 18), 0x8100, dst, src);
  const out = new Uint8Array(length);
  out.set(f.subarray(0, 12));
  out.set([0x81, 0x00, 0x00, 0x2a, 0x08, 0x00], 12); // TPID, TCI (VLAN 42), inner EtherType
  out.set(bytes(length - 18), 18);
  return out;
}

describe('virtio-net TSO: gso_size', () => {
  it('a gso_size below what Linux TCP can send (TCP_MIN_GSO_SIZE 8) drops the packet before any segment is made', () => {
    const t = NetHarness.create({ memorySize: 1 << 20 });
    const { frame, hdr } = superFrame(65535 - 40);
    t.send(frame, { ...hdr, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1 });
    expect(t.wire.length).toBe(0);
    expect(t.txDone()).toEqual([0]);
    expect(t.device.stats.toRecord().txDropsGsoTooSmall).toBe(1);
    expect(t.device.stats.txDrops).toBe(1);
  });

  it('gso_size 8 (the smallest Linux TCP sends) is still segmented', () => {
    const t = NetHarness.create();
    const { frame, hdr } = superFrame(100);
    t.send(frame, { ...hdr, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 8 });
    expect(t.wire.length).toBe(13);
    expect(t.wire.every(checksumsOk)).toBe(true);
  });
});

describe('virtio-net tx: work per pass', () => {
  it('one pass stops at its frame/byte budget; the rest go out on a later task', () => {
    const jobs: Array<() => void> = [];
    const t = NetHarness.create({ memorySize: 8 << 20, defer: (job) => void jobs.push(job) });
    const chains = 40;
    for (let i = 0; i < chains; i++) {
      const { frame, hdr } = superFrame(65535 - 40, i * 65495);
      t.add(frame, { ...hdr, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 });
    }
    t.txq.kick();
    expect(jobs.length).toBe(1);
    jobs.shift()!();
    const perChain = Math.ceil(65495 / 1448);
    // One pass: a few maximal super-frames (its byte budget), not the 40 the ring holds.
    expect(t.wire.length).toBeGreaterThan(0);
    expect(t.wire.length).toBeLessThan(chains * perChain);
    expect(t.txq.used().length).toBeLessThan(chains);
    // The rest was scheduled, kicks still suppressed meanwhile.
    expect(jobs.length).toBe(1);
    expect(t.txq.kick()).toBe(false);
    for (let job = jobs.shift(); job; job = jobs.shift()) job();
    expect(t.wire.length).toBe(chains * perChain);
    expect(t.device.stats.toRecord().txPassesCut).toBeGreaterThan(0);
  });

  it('served inside the notify write too: a pass over budget continues on a microtask', async () => {
    const t = NetHarness.create({ memorySize: 8 << 20 });
    for (let i = 0; i < 40; i++) {
      const { frame, hdr } = superFrame(65535 - 40, i);
      t.add(frame, { ...hdr, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 });
    }
    t.txq.kick();
    const first = t.wire.length;
    expect(first).toBeLessThan(40 * 46);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(t.wire.length).toBe(40 * 46);
  });
});

describe('virtio-net rx without MRG_RXBUF: a buffer too small for the frame', () => {
  it('does not stall larger frames: the small buffer goes back with len 0, the next frames use the next buffers', () => {
    const t = NetHarness.create({ features: NO_MRG });
    t.postRx(1, 200);
    t.postRx(3);
    const big = [1, 2, 3].map((i) => ethernet(bytes(1000, i), 0x88b5, GUEST_MAC, PEER_MAC));
    for (const f of big) t.inject(f);
    const used = t.rxq.used();
    expect(used.map((u) => u.len)).toEqual([0, VIRTIO_NET_HDR_SIZE + 1014, VIRTIO_NET_HDR_SIZE + 1014]);
    expect(used[1].data.subarray(VIRTIO_NET_HDR_SIZE)).toEqual(big[1]);
    expect(t.device.stats.rxDropsBufferTooSmall).toBe(1);
    expect(t.device.stats.rxFrames).toBe(2);
  });
});

describe('virtio-net and 802.1Q', () => {
  it('a full-size VLAN-tagged frame (MTU + 18 = 1518 bytes) goes out', () => {
    const t = NetHarness.create();
    const f = tagged(1518);
    t.send(f);
    expect(t.wire).toEqual([f]);
    expect(t.device.stats.txDropsOversized).toBe(0);
  });

  it('and comes in', () => {
    const t = NetHarness.create();
    t.postRx(2);
    const f = tagged(1518, GUEST_MAC, PEER_MAC);
    t.inject(f);
    expect(t.received().map((r) => r.frame)).toEqual([f]);
  });

  it('the tag buys 4 bytes, no more: 1519 tagged and 1515 untagged are still dropped', () => {
    const t = NetHarness.create({ tso: false });
    t.postRx(4);
    t.send(tagged(1519));
    t.send(ethernet(bytes(1501)));
    t.inject(tagged(1519, GUEST_MAC, PEER_MAC));
    t.inject(ethernet(bytes(1501), 0x88b5, GUEST_MAC, PEER_MAC));
    expect(t.wire.length).toBe(0);
    expect(t.received().length).toBe(0);
    expect(t.device.stats.txDropsOversized).toBe(2);
    expect(t.device.stats.rxDropsOversized).toBe(2);
  });
});

describe('virtio-net rx backlog bounds', () => {
  it('refuses backlog bounds that would not bound anything', () => {
    const [link] = memoryLinkPair();
    for (const bad of [NaN, Infinity, 0, -1, 1.5]) {
      expect(() => new VirtioNet({ link, mac: GUEST_MAC, rxBacklogFrames: bad })).toThrow(RangeError);
      expect(() => new VirtioNet({ link, mac: GUEST_MAC, rxBacklogBytes: bad })).toThrow(RangeError);
    }
  });
});
