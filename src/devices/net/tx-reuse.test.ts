import { describe, expect, it } from 'vitest';
import { TCP_ACK as ACK, TCP_PSH as PSH } from '../../wire/tcp.ts';
import { VIRTIO_NET_HDR_GSO_TCPV4 } from './spec.ts';
import { NetHarness, checksumsOk, ethernet, ipv4, partial, tcp } from './testing.ts';

/** Two TSO packets with different bytes, sent as two chains in one kick. */
function sendTwo(t: NetHarness): Uint8Array[] {
  const payloads = [0, 1].map((k) => Uint8Array.from({ length: 9000 }, (_, i) => (i * 13 + k * 101) & 0xff));
  for (const [k, payload] of payloads.entries()) {
    const { frame, hdr } = partial(ethernet(ipv4({ protocol: 6, id: k, payload: tcp({ seq: k << 20, flags: PSH | ACK, payload }) })));
    t.add(frame, { ...hdr, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448, hdrLen: 54 }, [12 + 54, 4096]);
  }
  t.txq.kick();
  expect(t.txDone()).toEqual([0, 0]);
  return payloads;
}

/** The TCP payloads of `frames`, joined per packet (segments carry seq 0… and 1 MiB…). */
function joined(frames: Uint8Array[]): number[][] {
  const out: number[][] = [[], []];
  for (const f of frames) {
    expect(checksumsOk(f)).toBe(true);
    out[f[39] >> 4].push(...f.subarray(54));
  }
  return out;
}

/** Wraps the device's link: every frame send() is given, as given (no copy). */
function watchSends(t: NetHarness): Uint8Array[] {
  const seen: Uint8Array[] = [];
  const link = t.device.link;
  const send = link.send.bind(link);
  link.send = (frame) => {
    seen.push(frame);
    return send(frame);
  };
  return seen;
}

describe('virtio-net tx bytes, reused only when nobody keeps them', () => {
  it('with a link that copies and no capture, the second chain reuses the first one\'s bytes', () => {
    const t = NetHarness.create();
    const seen = watchSends(t);
    const payloads = sendTwo(t);
    expect(seen.length).toBe(2 * Math.ceil(9000 / 1448));
    const second = seen.find((f) => f[39] >> 4 === 1)!;
    expect(second.buffer).toBe(seen[0].buffer);
    expect(second.byteOffset).toBe(seen[0].byteOffset);
    // What reached the far end (copies) is intact.
    expect(joined(t.wire)).toEqual(payloads.map((p) => [...p]));
  });

  it('with a link that may keep frames, every frame it was given stays as it was sent', () => {
    const t = NetHarness.create();
    Object.defineProperty(t.device.link, 'sendCopies', { value: false });
    const seen = watchSends(t);
    const payloads = sendTwo(t);
    expect(new Set(seen.map((f) => `${f.byteOffset}`)).size).toBe(seen.length);
    expect(joined(seen)).toEqual(payloads.map((p) => [...p]));
  });

  it('a capture that may keep frames stops the reuse; one that copies does not', () => {
    for (const onCaptureCopies of [false, true]) {
      const captured: Uint8Array[] = [];
      const t = NetHarness.create({ onCapture: (f, dir) => dir === 'tx' && captured.push(onCaptureCopies ? f.slice() : f), onCaptureCopies });
      const seen = watchSends(t);
      const payloads = sendTwo(t);
      expect(joined(captured)).toEqual(payloads.map((p) => [...p]));
      expect(seen.find((f) => f[39] >> 4 === 1)!.byteOffset === seen[0].byteOffset).toBe(onCaptureCopies);
    }
  });
});
