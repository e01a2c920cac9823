import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LINKTYPE_ETHERNET, PCAP_MAGIC, PcapRing } from './pcap.ts';

/** A tiny pcap reader, independent of the writer: either byte order, µs timestamps. */
function readPcap(file: Uint8Array) {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magicLE = dv.getUint32(0, true);
  const le = magicLE === PCAP_MAGIC;
  if (!le && dv.getUint32(0, false) !== PCAP_MAGIC) throw new Error('not a pcap file');
  const header = {
    major: dv.getUint16(4, le),
    minor: dv.getUint16(6, le),
    snaplen: dv.getUint32(16, le),
    linktype: dv.getUint32(20, le),
  };
  const packets: Array<{ tsSec: number; tsUsec: number; data: Uint8Array; origLen: number }> = [];
  let at = 24;
  while (at < file.length) {
    if (at + 16 > file.length) throw new Error('truncated record header');
    const incl = dv.getUint32(at + 8, le);
    if (at + 16 + incl > file.length) throw new Error('truncated packet');
    packets.push({ tsSec: dv.getUint32(at, le), tsUsec: dv.getUint32(at + 4, le), origLen: dv.getUint32(at + 12, le), data: file.slice(at + 16, at + 16 + incl) });
    at += 16 + incl;
  }
  return { header, packets };
}

const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe('pcap', () => {
  it('writes a classic Ethernet pcap with per-packet timestamps', () => {
    let now = 1_700_000_000_123.456;
    const ring = new PcapRing({ now: () => now });
    ring.record(frame(60, 1));
    now += 1.5;
    ring.record(frame(1514, 2));
    const { header, packets } = readPcap(ring.toUint8Array());
    expect(header).toEqual({ major: 2, minor: 4, snaplen: 65535, linktype: LINKTYPE_ETHERNET });
    expect(packets.map((p) => p.data.length)).toEqual([60, 1514]);
    expect(packets[1].data.every((b) => b === 2)).toBe(true);
    expect(packets[0].tsSec).toBe(1_700_000_000);
    expect(packets[0].tsUsec).toBe(123456);
    expect(packets[1].tsUsec).toBe(124956);
    expect(ring.fileSize).toBe(24 + 16 * 2 + 60 + 1514);
  });

  it('keeps only the newest packets within the byte budget', () => {
    const ring = new PcapRing({ maxBytes: 1000, now: () => 0 });
    for (let i = 0; i < 20; i++) ring.record(frame(100, i));
    const { packets } = readPcap(ring.toUint8Array());
    expect(packets.length).toBe(8); // 8 × 116 ≤ 1000
    expect(packets.map((p) => p.data[0])).toEqual([12, 13, 14, 15, 16, 17, 18, 19]);
    expect(ring.evicted).toBe(12);
    expect(ring.recorded).toBe(20);
    ring.record(frame(2000, 0)); // larger than the whole budget: not kept
    expect(ring.length).toBe(8);
  });

  it('snaplen truncates but remembers the original length; the caller may reuse its buffer', () => {
    const ring = new PcapRing({ snaplen: 64 });
    const buf = frame(200, 7);
    ring.record(buf);
    buf.fill(0);
    const [p] = readPcap(ring.toUint8Array()).packets;
    expect(p.data.length).toBe(64);
    expect(p.origLen).toBe(200);
    expect(p.data[0]).toBe(7);
  });

  it('an empty capture is a valid file; toBlob has the pcap type', async () => {
    const ring = new PcapRing();
    expect(readPcap(ring.toUint8Array()).packets).toEqual([]);
    ring.record(frame(42, 3));
    const blob = ring.toBlob();
    expect(blob.type).toBe('application/vnd.tcpdump.pcap');
    expect(readPcap(new Uint8Array(await blob.arrayBuffer())).packets.length).toBe(1);
  });

  it('written round one buffer: always the newest packets, intact and in order, within the budget, losing at most what placement must', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 20_000 }),
        fc.integer({ min: 1, max: 4000 }),
        fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 300 }),
        (maxBytes, snap, lengths) => {
          // Every packet fits the budget alone (one that does not is refused, tested above).
          const snaplen = Math.min(snap, maxBytes - 16);
          const ring = new PcapRing({ maxBytes, snaplen, now: () => 0 });
          // Each packet's bytes say which packet it is, so a torn or misplaced one shows.
          const sent = lengths.map((n, i) => new Uint8Array(n).map((_, j) => (i * 31 + j) & 0xff));
          for (const f of sent) ring.record(f);
          const { packets } = readPcap(ring.toUint8Array());
          const kept = packets.length;
          const first = sent.length - kept;
          packets.forEach((p, k) => {
            expect(p.data).toEqual(sent[first + k].subarray(0, snaplen));
            expect(p.origLen).toBe(sent[first + k].length);
          });
          const cost = (f: Uint8Array) => 16 + Math.min(f.length, snaplen);
          const keptCost = packets.reduce((sum, p) => sum + 16 + p.data.length, 0);
          expect(ring.fileSize).toBe(24 + keptCost);
          expect(keptCost).toBeLessThanOrEqual(maxBytes);
          expect(ring.length).toBe(kept);
          expect(kept).toBeGreaterThan(0);
          // The packet before the oldest kept one went for the budget or for room (a lap's
          // tail left unused is less than one packet).
          const before = sent[first - 1];
          const maxLen = Math.min(Math.max(...lengths), snaplen);
          if (before) expect(keptCost + cost(before) + 2 * maxLen).toBeGreaterThanOrEqual(maxBytes);
          expect(ring.recorded).toBe(sent.length);
          expect(ring.evicted).toBe(first);
        },
      ),
      { numRuns: 300 },
    );
  });
});

