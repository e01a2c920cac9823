import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ipv4.ts';
import { completePartialChecksum, rxChecksumValid } from './checksum.ts';
import { checksumsOk, ethernet, finishL4, ipv4, partial, tcp, udp } from './testing.ts';

describe('checksum offloads', () => {
  it('completing a partial checksum gives a verifiable TCP/UDP packet for any payload', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), fc.boolean(), (payload, isTcp) => {
        const f = ethernet(ipv4({ protocol: isTcp ? IPPROTO_TCP : IPPROTO_UDP, payload: isTcp ? tcp({ payload }) : udp(payload) }));
        const { frame, hdr } = partial(f);
        expect(completePartialChecksum(frame, hdr.csumStart!, hdr.csumOffset!)).toBe(true);
        expect(checksumsOk(frame)).toBe(true);
        expect(rxChecksumValid(frame)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects offsets outside the frame', () => {
    const f = new Uint8Array(60);
    expect(completePartialChecksum(f, 60, 0)).toBe(false);
    expect(completePartialChecksum(f, 50, 9)).toBe(false);
    expect(completePartialChecksum(f, 50, 8)).toBe(true);
  });

  it('rx validation: flipping any byte of the L4 part invalidates it', () => {
    const good = finishL4(ethernet(ipv4({ protocol: IPPROTO_TCP, payload: tcp({ payload: Uint8Array.of(1, 2, 3, 4, 5) }) })));
    expect(rxChecksumValid(good)).toBe(true);
    for (let i = 34; i < good.length; i++) {
      const bad = good.slice();
      bad[i] ^= 0x40;
      expect(rxChecksumValid(bad)).toBe(false);
    }
    const truncated = good.subarray(0, good.length - 1);
    expect(rxChecksumValid(truncated)).toBe(false);
    const padded = new Uint8Array(good.length + 6);
    padded.set(good);
    expect(rxChecksumValid(padded)).toBe(true); // Ethernet padding is outside the datagram
  });
});
