import { describe, expect, it } from 'vitest';
import { buildEthernet, ETHERTYPE_IPV4 } from '../../wire/ethernet.ts';
import { buildIcmp, ICMP_ECHO_REQUEST } from '../../wire/icmp.ts';
import { buildIpv4, IPPROTO_ICMP } from '../../wire/ipv4.ts';
import { GuardedMemory } from '../../virtio/inspect/guarded-memory.ts';
import { ArrayMemory } from '../../virtio/testing/array-memory.ts';
import { chain } from '../testing/chain.ts';
import { encodeNetHdr } from './hdr.ts';
import { netDecoder } from './inspect.ts';

describe('virtio-net inspector decoder', () => {
  it('net: virtio_net_hdr then the frame summary, rx at completion and tx at pop', () => {
    const mem = new ArrayMemory(1 << 16);
    const mac = (b: number) => Uint8Array.of(2, 0, 0, 0, 0, b);
    const ip = buildIpv4({ src: 0x0a000202, dst: 0x0a00020f, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: ICMP_ECHO_REQUEST, id: 7, seq: 1 }) });
    const frame = buildEthernet({ dst: mac(1), src: mac(2), etherType: ETHERTYPE_IPV4, payload: ip });
    mem.write(0x3000, encodeNetHdr({ numBuffers: 1 }));
    mem.write(0x3000 + 12, frame);
    const g = new GuardedMemory(mem);
    const rx = chain([], [[0x3000, 1526]]);
    expect(netDecoder().popped!(g, 0, rx)!.detail).toBe('rx buffer posted · 1526 B');
    const done = netDecoder().completed!(g, 0, rx, 12 + frame.length)!;
    expect(done.detail).toMatch(/ICMP echo request id 7 seq 1/);
    expect(done.fields).toMatchObject({ frameLength: frame.length, numBuffers: 1 });
    const tx = chain([[0x3000, 12 + frame.length]], []);
    expect(netDecoder().popped!(g, 1, tx)!.detail).toMatch(/10\.0\.2\.2 > 10\.0\.2\.15/);
  });

  it("MRG_RXBUF: the buffers after a packet's first are its payload, not packets of their own", () => {
    const mem = new ArrayMemory(1 << 16);
    const mac = (b: number) => Uint8Array.of(2, 0, 0, 0, 0, b);
    const ip = buildIpv4({ src: 0x0a000202, dst: 0x0a00020f, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: ICMP_ECHO_REQUEST, id: 7, seq: 2, data: new Uint8Array(3000) }) });
    const frame = buildEthernet({ dst: mac(1), src: mac(2), etherType: ETHERTYPE_IPV4, payload: ip });
    // The packet over three buffers of up to 1526 bytes; the second holds only payload.
    mem.write(0x3000, encodeNetHdr({ numBuffers: 3 }));
    mem.write(0x3000 + 12, frame.subarray(0, 1514));
    mem.write(0x4000, frame.subarray(1514, 1514 + 1526));
    mem.write(0x6000, frame.subarray(1514 + 1526));
    const g = new GuardedMemory(mem);
    const d = netDecoder();
    const first = d.completed!(g, 0, chain([], [[0x3000, 1526]]), 1526)!;
    expect(first.detail).toBe('[3 bufs] buffer 1 of 3 · 1526 B (the packet is decoded at its last buffer)');
    const second = d.completed!(g, 0, chain([], [[0x4000, 1526]]), 1526)!;
    expect(second.detail).toBe('… buffer 2 of 3 · 1526 B of payload');
    expect(second.fields).toMatchObject({ buffer: 2, numBuffers: 3 });
    const last = d.completed!(g, 0, chain([], [[0x6000, 1526]]), frame.length + 12 - 2 * 1526)!;
    expect(last.detail).toMatch(/^… buffer 3 of 3 · \d+ B, the packet: \[3 bufs\] IP 10\.0\.2\.2 > 10\.0\.2\.15: ICMP echo request id 7 seq 2/);
    expect(last.fields).toMatchObject({ frameLength: frame.length, buffer: 3 });
    // The next packet's first buffer is decoded again.
    mem.write(0x5000, encodeNetHdr({ numBuffers: 1 }));
    mem.write(0x5000 + 12, frame.subarray(0, 60));
    expect(d.completed!(g, 0, chain([], [[0x5000, 1526]]), 72)!.detail).not.toMatch(/buffer/);
    // A reset in the middle of a packet ends it: the next completion is a packet of its own.
    d.completed!(g, 0, chain([], [[0x3000, 1526]]), 1526);
    d.reset!();
    expect(d.completed!(g, 0, chain([], [[0x5000, 1526]]), 72)!.detail).not.toMatch(/buffer/);
    // A decoder of its own per NIC: another one starts fresh, and takes payload for a header.
    for (let i = 0; i < 12; i++) mem.write(0x7000 + i, Uint8Array.of(0x5a));
    expect(netDecoder().completed!(g, 0, chain([], [[0x7000, 1526]]), 1526)!.detail).toMatch(/23130 bufs/);
  });
});
