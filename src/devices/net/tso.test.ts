import { describe, expect, it } from 'vitest';
import { readU16 as u16, readU32 as u32 } from '../../wire/bytes.ts';
import { TCP_ACK as ACK, TCP_CWR as CWR, TCP_FIN as FIN, TCP_PSH as PSH } from '../../wire/tcp.ts';
import { segmentTcp4 } from '../../wire/tso.ts';
import { superSegmentView } from '../../wire/super-segment.ts';
import { VIRTIO_NET_HDR_GSO_ECN, VIRTIO_NET_HDR_GSO_TCPV4 } from './spec.ts';
import { NetHarness, checksumsOk, ethernet, ipv4, partial, tcp } from './testing.ts';

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff);

function superFrame(payload: Uint8Array, flags: number, seq = 0xfffff000, id = 0xfffe): Uint8Array {
  return ethernet(ipv4({ protocol: 6, id, payload: tcp({ seq, flags, payload }) }));
}

describe('TSO (HOST_TSO4) segmentation', () => {
  it('cuts a 64 KiB send into MSS frames: lengths, seq, ids, flags, checksums', () => {
    const payload = bytes(65535 - 40);
    const r = segmentTcp4(superFrame(payload, PSH | ACK | FIN | CWR), 1448, 1514);
    if (!r.ok) throw new Error(r.reason);
    const n = Math.ceil(payload.length / 1448);
    expect(r.frames.length).toBe(n);
    const joined: number[] = [];
    r.frames.forEach((f, i) => {
      expect(f.length).toBe(54 + Math.min(1448, payload.length - i * 1448));
      expect(u16(f, 16)).toBe(f.length - 14); // IP total length
      expect(u16(f, 18)).toBe((0xfffe + i) & 0xffff); // IP id, wrapping
      expect(u32(f, 38)).toBe((0xfffff000 + i * 1448) >>> 0); // seq, wrapping
      const flags = f[47];
      expect(flags & ACK).toBe(ACK);
      expect(flags & (FIN | PSH)).toBe(i === n - 1 ? FIN | PSH : 0);
      expect(flags & CWR).toBe(i === 0 ? CWR : 0);
      expect(checksumsOk(f)).toBe(true);
      joined.push(...f.subarray(54));
    });
    expect(Uint8Array.from(joined)).toEqual(payload);
  });

  it('a super-frame that fits one segment yields one frame with checksums done', () => {
    const r = segmentTcp4(superFrame(bytes(100), PSH | ACK), 1448, 1514);
    if (!r.ok) throw new Error(r.reason);
    expect(r.frames.length).toBe(1);
    expect(checksumsOk(r.frames[0])).toBe(true);
  });

  it('refuses non-TCP, fragments, bad data offsets, gso_size 0 and MSS beyond the MTU', () => {
    const udpFrame = ethernet(ipv4({ protocol: 17, payload: new Uint8Array(3000) }));
    expect(segmentTcp4(udpFrame, 1448, 1514).ok).toBe(false);
    expect(segmentTcp4(ethernet(ipv4({ protocol: 6, frag: 0x2000, payload: tcp({ payload: bytes(3000) }) })), 1448, 1514).ok).toBe(false);
    const badDoff = superFrame(bytes(3000), ACK);
    badDoff[46] = 0x30;
    expect(segmentTcp4(badDoff, 1448, 1514).ok).toBe(false);
    expect(segmentTcp4(superFrame(bytes(3000), ACK), 0, 1514).ok).toBe(false);
    expect(segmentTcp4(superFrame(bytes(3000), ACK), 1461, 1514).ok).toBe(false);
    expect(segmentTcp4(new Uint8Array(20), 1448, 1514).ok).toBe(false);
  });

  it('refuses gso_size under 8 (Linux TCP_MIN_GSO_SIZE) before making any segment; 8 itself is fine', () => {
    for (const mss of [1, 7]) {
      const r = segmentTcp4(superFrame(bytes(65535 - 40), ACK), mss, 1514);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.tooSmall).toBe(true);
    }
    const r = segmentTcp4(superFrame(bytes(65535 - 40), ACK), 8, 1514);
    expect(r.ok && r.frames.length).toBe(Math.ceil(65495 / 8));
  });

  it('through the device: a TSO packet (partial checksum as Linux sends it) leaves as segments', () => {
    const t = NetHarness.create();
    const payload = bytes(20000);
    const { frame, hdr } = partial(superFrame(payload, PSH | ACK, 1));
    // Linux 6.1 splits a TSO skb: header + linear part, then page frags.
    t.send(frame, { ...hdr, gsoType: VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, gsoSize: 1448, hdrLen: 54 }, [12 + 54, 4096, 4096, 4096]);
    expect(t.txDone()).toEqual([0]);
    expect(t.wire.length).toBe(Math.ceil(20000 / 1448));
    expect(t.wire.every(checksumsOk)).toBe(true);
    expect(t.device.stats.txGsoPackets).toBe(1);
    expect(t.device.stats.txGsoSegments).toBe(t.wire.length);
    expect(t.device.stats.txFrames).toBe(t.wire.length);
  });

  it('with superSegmentsOut, to a link that takes super-segments: the TSO packet leaves whole, one a receiver accepts; FIN or too large still cut', () => {
    const t = NetHarness.create({ superSegmentSendLimit: 65549, superSegmentsOut: true });
    const payload = bytes(20000);
    const { frame, hdr } = partial(superFrame(payload, PSH | ACK, 1));
    const gso = { ...hdr, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448, hdrLen: 54 };
    t.send(frame, gso, [12 + 54, 4096, 4096, 4096]);
    expect(t.txDone()).toEqual([0]);
    expect(t.wire).toHaveLength(1);
    const whole = t.wire[0];
    expect(whole.subarray(54)).toEqual(payload);
    const view = superSegmentView(whole, 1500, true); // checksums verified
    expect(view).toMatchObject({ gsoSize: 1448, segments: Math.ceil(20000 / 1448), end: whole.length });
    expect(t.device.stats).toMatchObject({ txGsoPackets: 1, txSuperSegments: 1, txGsoSegments: Math.ceil(20000 / 1448), txFrames: 1 });
    // A FIN takes the per-segment rules: cut.
    t.send(partial(superFrame(payload, FIN | ACK, 2)).frame, gso);
    expect(t.wire).toHaveLength(1 + Math.ceil(20000 / 1448));
    // Larger than the far end takes: cut.
    const small = NetHarness.create({ superSegmentSendLimit: 10000, superSegmentsOut: true });
    small.send(partial(superFrame(payload, ACK, 3)).frame, gso);
    expect(small.wire).toHaveLength(Math.ceil(20000 / 1448));
    expect(small.device.stats.txSuperSegments).toBe(0);
    // Off by default: the device cuts, whatever the link takes.
    const byDefault = NetHarness.create({ superSegmentSendLimit: 65549 });
    byDefault.send(partial(superFrame(payload, ACK, 4)).frame, gso);
    expect(byDefault.wire).toHaveLength(Math.ceil(20000 / 1448));
    expect(byDefault.device.stats.txSuperSegments).toBe(0);
  });
});
