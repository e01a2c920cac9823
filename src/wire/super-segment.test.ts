import { describe, expect, it } from 'vitest';
import { readU16, readU32, writeU16 } from './bytes.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_URGENT } from './tcp.ts';
import { cutSuperSegment, makeSuperSegment, superSegmentView } from './super-segment.ts';
import { segmentTcp4 } from './tso.ts';
import { tcpFrame, testBytes } from './testing/tcp-frames.ts';

const TCP = 34; // untagged Ethernet + a 20-byte IPv4 header

/** What a guest's TSO frame looks like: the pseudo-header sum (or anything) in the checksum field. */
function tsoFrame(payloadLength: number, flags = TCP_ACK | TCP_PSH): Uint8Array {
  const f = tcpFrame(testBytes(payloadLength), { flags });
  writeU16(f, TCP + 16, 0x1234);
  return f;
}

describe('super-segments', () => {
  it('a TSO frame becomes one: MSS in the urgent pointer, checksums right, the payload unchanged', () => {
    const f = tsoFrame(20000);
    const made = makeSuperSegment(f, 1448, 1500);
    expect(made).toEqual({ tcp: TCP, data: TCP + 20, end: f.length, gsoSize: 1448, segments: Math.ceil(20000 / 1448) });
    expect(readU16(f, TCP + TCP_URGENT)).toBe(1448);
    expect(f.subarray(TCP + 20)).toEqual(testBytes(20000));
    expect(superSegmentView(f, 1500, true)).toEqual(made);
  });

  it('refuses, leaving the frame untouched: FIN, MSS out of range, bytes after the datagram, not TCP', () => {
    const fin = tsoFrame(5000, TCP_ACK | TCP_FIN);
    const copy = fin.slice();
    expect(typeof makeSuperSegment(fin, 1448, 1500)).toBe('string');
    expect(fin).toEqual(copy);
    for (const mss of [63, 1461]) expect(typeof makeSuperSegment(tsoFrame(5000), mss, 1500)).toBe('string');
    const trailing = new Uint8Array(tsoFrame(5000).length + 4);
    trailing.set(tsoFrame(5000));
    expect(typeof makeSuperSegment(trailing, 1448, 1500)).toBe('string');
    const udp = tsoFrame(5000);
    udp[14 + 9] = 17;
    expect(typeof makeSuperSegment(udp, 1448, 1500)).toBe('string');
  });

  it('the check on arrival: checksums only when asked, and the MSS bound by the MTU', () => {
    const f = tsoFrame(9000);
    makeSuperSegment(f, 1400, 1500);
    expect(superSegmentView(f, 1500, true)).toMatchObject({ gsoSize: 1400 });
    expect(superSegmentView(f, 1400, true)).toMatch(/cut at 1400 bytes/); // 1400 + 40 > MTU 1400
    f[f.length - 1] ^= 1; // damaged payload
    expect(superSegmentView(f, 1500, false)).toMatchObject({ gsoSize: 1400 });
    expect(superSegmentView(f, 1500, true)).toMatch(/correct checksums/);
  });

  it('a cut gives what the sender would have cut itself (urgent pointer 0); a damaged one is refused', () => {
    const f = tsoFrame(20000);
    const plain = f.slice();
    const view = makeSuperSegment(f, 1448, 1500);
    if (typeof view === 'string') throw new Error(view);
    const before = f.slice();
    const cut = cutSuperSegment(f, view, 1514);
    expect(f).toEqual(before); // unchanged
    const expected = segmentTcp4(plain, 1448, 1514);
    if (!expected.ok) throw new Error(expected.reason);
    expect(cut).toEqual(expected.frames);
    expect(cut!.every((s) => readU16(s, TCP + TCP_URGENT) === 0 && s.length <= 1514)).toBe(true);
    expect(readU32(cut!.at(-1)!, TCP + 4)).toBe(1000 + 1448 * (cut!.length - 1));
    f[TCP + 30] ^= 0xff;
    expect(cutSuperSegment(f, view, 1514)).toBeUndefined();
  });
});
