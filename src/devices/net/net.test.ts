import { describe, expect, it } from 'vitest';
import { DeviceStatus, Feature, IsrBit, NetFeature, PciClass, featureBit, features, hasFeature } from '../../virtio/constants.ts';
import { CommonCfg } from '../../virtio/pci/layout.ts';
import { NetConfigOffset, formatMac, localMac, parseMac, toMac } from './config.ts';
import { VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_HDR_SIZE, VIRTIO_NET_S_LINK_UP } from './spec.ts';
import { GUEST_MAC, PEER_MAC, NetHarness, checksumsOk, ethernet, finishL4, ipv4, partial, tcp, udp } from './testing.ts';

const N = NetFeature;
const BASE = features(Feature.VIRTIO_F_VERSION_1, N.VIRTIO_NET_F_MAC, N.VIRTIO_NET_F_STATUS, N.VIRTIO_NET_F_MTU);
const arp = () => ethernet(new Uint8Array(28).fill(7), 0x0806, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('virtio-net negotiation and config', () => {
  it('is a network function offering MAC, STATUS, MTU, CSUM, GUEST_CSUM, HOST_TSO4, MRG_RXBUF, CTRL_VQ, GUEST_TSO4', () => {
    const t = NetHarness.create();
    expect(t.driver.fn.configSpace[0x0b]).toBe(PciClass.NETWORK_ETHERNET >> 16);
    const offered = t.driver.deviceFeatures();
    for (const bit of [N.VIRTIO_NET_F_MAC, N.VIRTIO_NET_F_STATUS, N.VIRTIO_NET_F_MTU, N.VIRTIO_NET_F_CSUM, N.VIRTIO_NET_F_GUEST_CSUM, N.VIRTIO_NET_F_HOST_TSO4, N.VIRTIO_NET_F_MRG_RXBUF, N.VIRTIO_NET_F_CTRL_VQ, N.VIRTIO_NET_F_GUEST_TSO4, Feature.VIRTIO_F_VERSION_1]) {
      expect(hasFeature(offered, bit)).toBe(true);
    }
    for (const bit of [N.VIRTIO_NET_F_MQ, N.VIRTIO_NET_F_CTRL_VLAN, N.VIRTIO_NET_F_GUEST_TSO6, N.VIRTIO_NET_F_HOST_UFO]) {
      expect(hasFeature(offered, bit)).toBe(false);
    }
    t.driver.writeCommon(CommonCfg.QUEUE_SELECT, 2, 2);
    expect(t.driver.readCommon(CommonCfg.QUEUE_SIZE, 2)).toBe(64); // the control queue
    expect(t.driver.readCommon(CommonCfg.NUM_QUEUES, 2)).toBe(3);
  });

  it('option ctrlVq: false offers no control queue', () => {
    const t = NetHarness.create({ ctrlVq: false });
    expect(hasFeature(t.driver.deviceFeatures(), N.VIRTIO_NET_F_CTRL_VQ)).toBe(false);
    t.driver.writeCommon(CommonCfg.QUEUE_SELECT, 2, 2);
    expect(t.driver.readCommon(CommonCfg.QUEUE_SIZE, 2)).toBe(0);
    expect(t.driver.readCommon(CommonCfg.NUM_QUEUES, 2)).toBe(2);
  });

  it('options turn TSO and MRG_RXBUF off', () => {
    const t = NetHarness.create({ tso: false, mergeableRxBuffers: false });
    const offered = t.driver.deviceFeatures();
    expect(hasFeature(offered, N.VIRTIO_NET_F_HOST_TSO4)).toBe(false);
    expect(hasFeature(offered, N.VIRTIO_NET_F_MRG_RXBUF)).toBe(false);
  });

  it('config holds mac, status and mtu, at any access width', () => {
    for (const byteAccess of [false, true]) {
      const t = NetHarness.create({ byteAccess, mtu: 1400 });
      const mac = Array.from({ length: 6 }, (_, i) => t.driver.readConfig(NetConfigOffset.MAC + i, 1));
      expect(mac).toEqual(Array.from(GUEST_MAC));
      expect(t.driver.readConfig(NetConfigOffset.STATUS, 2)).toBe(VIRTIO_NET_S_LINK_UP);
      expect(t.driver.readConfig(NetConfigOffset.MTU, 2)).toBe(1400);
      expect(t.driver.readConfig(NetConfigOffset.MAX_VIRTQUEUE_PAIRS, 2)).toBe(1);
      // Read-only: a driver write changes nothing.
      t.driver.writeConfig(NetConfigOffset.MAC, 4, 0);
      expect(t.driver.readConfig(NetConfigOffset.MAC, 1)).toBe(GUEST_MAC[0]);
    }
  });

  it('MAC helpers: parse, format, locally administered and stable from a seed', () => {
    expect(formatMac(parseMac('02:AB:cd:00:01:ff'))).toBe('02:ab:cd:00:01:ff');
    expect(() => parseMac('02:ab:cd')).toThrow();
    expect(() => toMac('01:00:5e:00:00:01')).toThrow(/multicast/);
    const seed = new TextEncoder().encode('disk-1234');
    expect(localMac(seed)).toEqual(localMac(seed));
    expect(localMac(seed)).not.toEqual(localMac(new TextEncoder().encode('disk-1235')));
    for (let i = 0; i < 20; i++) expect(localMac()[0] & 3).toBe(2);
  });

  it('link down/up: status bit follows and each change is a config interrupt', () => {
    const t = NetHarness.create();
    const gen0 = t.driver.readCommon(CommonCfg.CONFIG_GENERATION, 1);
    t.peer.setUp(false);
    expect(t.driver.readConfig(NetConfigOffset.STATUS, 2) & VIRTIO_NET_S_LINK_UP).toBe(0);
    expect(t.driver.irq.level).toBe(true);
    expect(t.driver.readIsr() & IsrBit.CONFIG).toBe(IsrBit.CONFIG);
    expect(t.driver.readCommon(CommonCfg.CONFIG_GENERATION, 1)).not.toBe(gen0);
    t.peer.setUp(false); // no change, no interrupt
    expect(t.driver.irq.level).toBe(false);
    t.peer.setUp(true);
    expect(t.driver.readConfig(NetConfigOffset.STATUS, 2)).toBe(VIRTIO_NET_S_LINK_UP);
    expect(t.driver.readIsr() & IsrBit.CONFIG).toBe(IsrBit.CONFIG);
    expect(t.device.stats.linkChanges).toBe(2);
  });

  it('starts with the link down when the link is down', () => {
    const t = NetHarness.create({ linkUp: false });
    expect(t.driver.readConfig(NetConfigOffset.STATUS, 2)).toBe(0);
  });
});

describe('virtio-net transmit', () => {
  it('sends a frame with the header in its own descriptor, or sharing one, or scattered', () => {
    const frame = arp();
    for (const split of [[VIRTIO_NET_HDR_SIZE], [VIRTIO_NET_HDR_SIZE + frame.length], [5, 7, 3, 9, 1], [20]]) {
      const t = NetHarness.create({ features: BASE });
      t.send(frame, {}, split);
      expect(t.wire).toEqual([frame]);
      expect(t.txDone()).toEqual([0]);
      expect(t.device.stats.txFrames).toBe(1);
      expect(t.device.stats.txBytes).toBe(frame.length);
    }
  });

  it('sends a batch with one interrupt, through indirect tables too', () => {
    const t = NetHarness.create();
    for (let i = 0; i < 10; i++) t.add(ethernet(bytes(100, i)), {}, [12], i % 2 === 0);
    t.txq.kick();
    expect(t.wire.length).toBe(10);
    expect(t.wire[3]).toEqual(ethernet(bytes(100, 3)));
    expect(t.txDone()).toEqual(new Array(10).fill(0));
    expect(t.driver.fn.stats.interrupts).toBe(1);
    expect(t.device.stats.maxTxBatch).toBe(10);
  });

  it('completes partial TCP and UDP checksums over IPv4 (NEEDS_CSUM)', () => {
    const t = NetHarness.create();
    const cases = [
      ethernet(ipv4({ protocol: 6, payload: tcp({ payload: bytes(333) }) })),
      ethernet(ipv4({ protocol: 6, payload: tcp({ payload: bytes(0) }) })),
      ethernet(ipv4({ protocol: 17, payload: udp(bytes(101)) })),
      ethernet(ipv4({ protocol: 17, payload: udp(bytes(1000, 9)) })),
    ];
    for (const c of cases) {
      const { frame, hdr } = partial(c.slice());
      expect(checksumsOk(frame)).toBe(false);
      t.send(frame, hdr, [12, 30]);
    }
    expect(t.wire.length).toBe(cases.length);
    for (const [i, f] of t.wire.entries()) {
      expect(checksumsOk(f)).toBe(true);
      expect(f).toEqual(finishL4(cases[i].slice()));
    }
    expect(t.device.stats.txCsumCompleted).toBe(cases.length);
  });

  it('a UDP checksum that computes to 0 goes out as 0xffff', () => {
    // Search a payload whose checksum is 0 (one byte pair decides it).
    const t = NetHarness.create();
    for (let v = 0; v < 0x10000; v++) {
      const f = ethernet(ipv4({ protocol: 17, payload: udp(Uint8Array.of(v >> 8, v & 0xff)) }));
      finishL4(f);
      if (f[40] === 0xff && f[41] === 0xff) {
        const { frame, hdr } = partial(f.slice());
        t.send(frame, hdr);
        expect([t.wire[0][40], t.wire[0][41]]).toEqual([0xff, 0xff]);
        return;
      }
    }
    throw new Error('no payload with a zero checksum found');
  });

  it('drops chains too short for the header, bad checksum offsets and oversized frames; counts each', () => {
    const t = NetHarness.create({ tso: false });
    t.txq.add({ readable: [new Uint8Array(5)] });
    t.txq.add({ readable: [new Uint8Array(VIRTIO_NET_HDR_SIZE + 13)] });
    t.txq.add({ writable: [64] }); // no readable bytes at all
    t.add(ethernet(bytes(40)), { flags: 1, csumStart: 50, csumOffset: 6 });
    t.add(ethernet(bytes(1501)));
    t.add(ethernet(bytes(1500))); // exactly MTU: fine
    t.txq.kick();
    expect(t.txDone()).toEqual([0, 0, 0, 0, 0, 0]);
    expect(t.wire.length).toBe(1);
    const s = t.device.stats;
    expect(s.txDropsMalformed).toBe(3);
    expect(s.txDropsBadOffload).toBe(1);
    expect(s.txDropsOversized).toBe(1);
    expect(t.driver.errors).toEqual([]);
    expect(t.driver.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(0);
  });

  it('GSO without HOST_TSO4 negotiated, or UDP GSO, is dropped', () => {
    const t = NetHarness.create({ features: BASE | featureBit(N.VIRTIO_NET_F_CSUM) });
    const f = ethernet(ipv4({ protocol: 6, payload: tcp({ payload: bytes(3000) }) }));
    t.send(f, { gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 });
    t.send(f, { gsoType: VIRTIO_NET_HDR_GSO_UDP, gsoSize: 1448 });
    expect(t.wire.length).toBe(0);
    expect(t.device.stats.txDropsBadOffload + t.device.stats.txDropsOversized).toBe(2);
  });

  it('link down: sends are dropped and counted, chains still returned', () => {
    const t = NetHarness.create();
    t.peer.setUp(false);
    t.send(arp());
    expect(t.txDone()).toEqual([0]);
    expect(t.wire.length).toBe(0);
    expect(t.device.stats.txDropsLink).toBe(1);
  });

  it('deferred tx: kicks suppressed until the drain, chains added meanwhile are sent too', () => {
    const pending: Array<() => void> = [];
    const t = NetHarness.create({ defer: (drain) => pending.push(drain) });
    t.send(arp());
    expect(t.wire.length).toBe(0);
    t.add(arp());
    expect(t.txq.kick()).toBe(false); // suppressed
    expect(pending.length).toBe(1);
    pending.shift()!();
    expect(t.wire.length).toBe(2);
    expect(t.txDone()).toEqual([0, 0]);
    t.send(arp()); // kicks are back on
    expect(pending.length).toBe(1);
  });

  it('txFirstKickAtOnce: the first kick goes out in the notify, kicks after it wait for the drain, then the next is at once again', () => {
    const pending: Array<() => void> = [];
    const t = NetHarness.create({ defer: (drain) => pending.push(drain), txFirstKickAtOnce: true });
    t.send(arp());
    expect(t.wire.length).toBe(1); // a lone send: no waiting
    t.send(arp());
    t.add(arp());
    expect(t.txq.kick()).toBe(false); // the burst: suppressed until the drain
    expect(t.wire.length).toBe(1);
    for (let job = pending.shift(); job; job = pending.shift()) job();
    expect(t.wire.length).toBe(3);
    expect(t.txDone()).toEqual([0, 0, 0]);
    t.send(arp());
    expect(t.wire.length).toBe(4);
  });

  it('a deferred drain scheduled before a reset does not touch the new session', () => {
    const pending: Array<() => void> = [];
    const t = NetHarness.create({ defer: (drain) => pending.push(drain) });
    t.send(arp());
    t.driver.init();
    pending.shift()!();
    expect(t.wire.length).toBe(0);
    expect(t.driver.errors).toEqual([]);
  });
});

describe('virtio-net receive', () => {
  it('writes header + frame into a posted buffer, num_buffers 1', () => {
    const t = NetHarness.create({ features: BASE });
    t.postRx(4);
    const f = arp();
    expect(t.inject(f)).toBe(true);
    const [got] = t.received();
    expect(got.frame).toEqual(f);
    expect(got.hdr).toMatchObject({ flags: 0, gsoType: 0, numBuffers: 1 });
    expect(t.driver.irq.level).toBe(true);
    expect(t.device.stats.rxFrames).toBe(1);
  });

  it('frames without buffers wait in the backlog and go in on refill', () => {
    const t = NetHarness.create();
    const frames = [0, 1, 2, 3, 4].map((i) => ethernet(bytes(60 + i, i)));
    for (const f of frames) t.inject(f);
    expect(t.device.stats.backlogFrames).toBe(5);
    t.postRx(2);
    expect(t.received().map((r) => r.frame)).toEqual(frames.slice(0, 2));
    expect(t.device.stats.backlogFrames).toBe(3);
    t.postRx(10);
    expect(t.received().map((r) => r.frame)).toEqual(frames.slice(2));
    expect(t.device.stats.backlogHighWaterFrames).toBe(5);
    expect(t.device.stats.rxDrops).toBe(0);
  });

  it('the backlog is bounded by frames and by bytes; drops are counted', () => {
    const t = NetHarness.create({ rxBacklogFrames: 3, rxBacklogBytes: 1 << 20 });
    for (let i = 0; i < 5; i++) t.inject(ethernet(bytes(100, i)));
    expect(t.device.stats.backlogFrames).toBe(3);
    expect(t.device.stats.rxDropsBacklogFull).toBe(2);
    t.postRx(5);
    expect(t.received().length).toBe(3);

    const u = NetHarness.create({ rxBacklogFrames: 100, rxBacklogBytes: 1000 });
    for (let i = 0; i < 5; i++) u.inject(ethernet(bytes(400, i)));
    expect(u.device.stats.backlogFrames).toBe(2);
    expect(u.device.stats.backlogBytes).toBe(828);
    expect(u.device.stats.rxDropsBacklogFull).toBe(3);
  });

  it('drops oversized and runt frames, and frames before DRIVER_OK', () => {
    const t = NetHarness.create();
    t.postRx(4);
    t.inject(ethernet(bytes(1501)));
    t.inject(new Uint8Array(10));
    t.inject(ethernet(bytes(1500)));
    expect(t.received().map((r) => r.frame.length)).toEqual([1514]);
    expect(t.device.stats.rxDropsOversized).toBe(1);
    expect(t.device.stats.rxDropsRunt).toBe(1);
    t.driver.reset();
    t.inject(arp());
    expect(t.device.stats.rxDropsNotReady).toBe(1);
  });

  it('MRG_RXBUF: a frame spans small buffers, num_buffers says how many', () => {
    const t = NetHarness.create();
    t.postRx(8, 500);
    const big = ethernet(bytes(1400));
    t.inject(big);
    t.inject(arp());
    const got = t.received();
    expect(got.map((g) => g.buffers)).toEqual([3, 1]);
    expect(got[0].frame).toEqual(big);
    expect(got[0].hdr.numBuffers).toBe(3);
    expect(t.device.stats.rxMergedFrames).toBe(1);
    expect(t.device.stats.rxBuffersUsed).toBe(4);
  });

  it('MRG_RXBUF: a frame waits until enough buffers are posted, keeping the ones it has', () => {
    const t = NetHarness.create();
    t.postRx(1, 500);
    const big = ethernet(bytes(1400));
    t.inject(big);
    expect(t.received()).toEqual([]);
    expect(t.device.stats.backlogFrames).toBe(1);
    t.postRx(2, 600);
    const [got] = t.received();
    expect(got.frame).toEqual(big);
    expect(got.buffers).toBe(3);
  });

  it('without MRG_RXBUF a buffer too small for the frame drops the frame and comes back with len 0', () => {
    const t = NetHarness.create({ features: BASE });
    t.postRx(1, 200);
    t.inject(ethernet(bytes(1000)));
    t.inject(arp());
    expect(t.rxq.used().map((u) => u.len)).toEqual([0]);
    expect(t.device.stats.rxDropsBufferTooSmall).toBe(1);
    expect(t.device.stats.backlogFrames).toBe(1);
    t.postRx(1, 200);
    expect(t.received().map((g) => g.frame)).toEqual([arp()]);
  });

  it('buffers that cannot hold any frame come back empty, counted', () => {
    const t = NetHarness.create();
    t.postRx(2, 20);
    t.postRx(1);
    t.inject(arp());
    expect(t.received().map((r) => r.frame)).toEqual([arp()]);
    expect(t.device.stats.rxBadBuffers).toBe(2);
  });

  it('GUEST_CSUM: DATA_VALID only on frames whose checksum we verified', () => {
    const t = NetHarness.create();
    t.postRx(8);
    const good = finishL4(ethernet(ipv4({ protocol: 6, payload: tcp({ payload: bytes(100) }) }), 0x0800, PEER_MAC, GUEST_MAC));
    const bad = good.slice();
    bad[bad.length - 1] ^= 1;
    const goodUdp = finishL4(ethernet(ipv4({ protocol: 17, payload: udp(bytes(33)) })));
    const icmp = finishL4(ethernet(ipv4({ protocol: 1, payload: Uint8Array.of(8, 0, 0, 0, 0, 1, 0, 1, ...bytes(56)) })));
    const frag = finishL4(ethernet(ipv4({ protocol: 6, frag: 0x2000, payload: tcp({ payload: bytes(50) }) })));
    for (const f of [good, bad, goodUdp, icmp, arp(), frag]) t.inject(f);
    const flags = t.received().map((r) => r.hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID);
    expect(flags).toEqual([2, 0, 2, 2, 0, 0]);

    const u = NetHarness.create({ features: BASE });
    u.postRx(1);
    u.inject(good);
    expect(u.received()[0].hdr.flags).toBe(0); // not negotiated: never set
  });

  it('capture hook sees tx frames as sent and rx frames as delivered', () => {
    const seen: Array<[string, number]> = [];
    const t = NetHarness.create({ onCapture: (f, dir) => seen.push([dir, f.length]) });
    t.send(arp());
    t.postRx(1);
    t.inject(ethernet(bytes(100)));
    expect(seen).toEqual([
      ['tx', 42],
      ['rx', 114],
    ]);
  });

  it('a malformed rx ring found while delivering from the link sets DEVICE_NEEDS_RESET, never throws', () => {
    const t = NetHarness.create();
    t.rxq.publish(9999 & 0xff); // a head that was never set up (zeroed descriptor: len 0, addr 0)
    t.rxq.publish(300); // head ≥ queue size
    expect(() => t.inject(arp())).not.toThrow();
    expect(() => t.inject(arp())).not.toThrow();
    expect(t.driver.status & DeviceStatus.DEVICE_NEEDS_RESET).toBe(DeviceStatus.DEVICE_NEEDS_RESET);
    expect(t.driver.errors.length).toBe(1);
  });
});

describe('virtio-net receive, edge cases', () => {
  it('MRG_RXBUF: when every ring slot holds a buffer and together they are too small, the frame is dropped, not waited on', () => {
    const t = NetHarness.create({ queueSize: 4 });
    t.postRx(4, 100); // 400 bytes in all, the whole ring
    t.inject(ethernet(new Uint8Array(1000)));
    t.inject(arp());
    const got = t.received();
    expect(got.map((g) => g.frame)).toEqual([arp()]);
    expect(t.device.stats.rxDropsBufferTooSmall).toBe(1);
  });
});
