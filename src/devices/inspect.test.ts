import { describe, expect, it } from 'vitest';
import { buildEthernet, ETHERTYPE_IPV4 } from '../wire/ethernet.ts';
import { buildIcmp, ICMP_ECHO_REQUEST } from '../wire/icmp.ts';
import { buildIpv4, IPPROTO_ICMP } from '../wire/ipv4.ts';
import { GuardedMemory } from '../virtio/inspect/guarded-memory.ts';
import type { DescriptorChain } from '../virtio/queue/descriptor-chain.ts';
import { ArrayMemory } from '../virtio/testing/array-memory.ts';
import { blkDecoder, netDecoder, rngDecoder } from './inspect.ts';
import { encodeNetHdr } from './net/hdr.ts';

const chain = (readable: [number, number][], writable: [number, number][]): DescriptorChain => ({
  headIndex: 3,
  readable: readable.map(([addr, len]) => ({ addr, len })),
  writable: writable.map(([addr, len]) => ({ addr, len })),
  readableLength: readable.reduce((s, [, l]) => s + l, 0),
  writableLength: writable.reduce((s, [, l]) => s + l, 0),
  indirect: false,
});

describe('inspector decoders', () => {
  it('blk: type, sector and length at pop, the status byte at completion', () => {
    const mem = new ArrayMemory(1 << 16);
    mem.writeU32(0x100, 0); // IN
    mem.writeU32(0x108, 1600); // sector lo
    const c = chain([[0x100, 16]], [[0x1000, 4096], [0x2000, 1]]);
    const g = new GuardedMemory(mem);
    expect(blkDecoder.popped!(g, 0, c)).toEqual({ detail: 'IN sector 1600 · 4096 B', fields: { type: 'IN', sector: 1600, length: 4096 } });
    mem.writeU8(0x2000, 0);
    expect(blkDecoder.completed!(g, 0, c, 4097)!.detail).toBe('IN sector 1600 · 4096 B → OK');
    mem.writeU8(0x2000, 2);
    expect(blkDecoder.completed!(g, 0, c, 1)!.fields).toMatchObject({ status: 'UNSUPP' });
    // A header outside RAM is not a crash, just no decode.
    expect(blkDecoder.popped!(g, 0, chain([[0xfffff0, 16]], [[0x2000, 1]]))!.detail).toMatch(/short chain/);
  });

  it('net: virtio_net_hdr then the frame summary, rx at completion and tx at pop', () => {
    const mem = new ArrayMemory(1 << 16);
    const mac = (b: number) => Uint8Array.of(2, 0, 0, 0, 0, b);
    const ip = buildIpv4({ src: 0x0a000202, dst: 0x0a00020f, protocol: IPPROTO_ICMP, payload: buildIcmp({ type: ICMP_ECHO_REQUEST, id: 7, seq: 1 }) });
    const frame = buildEthernet({ dst: mac(1), src: mac(2), etherType: ETHERTYPE_IPV4, payload: ip });
    mem.write(0x3000, encodeNetHdr({ numBuffers: 1 }));
    mem.write(0x3000 + 12, frame);
    const g = new GuardedMemory(mem);
    const rx = chain([], [[0x3000, 1526]]);
    expect(netDecoder.popped!(g, 0, rx)!.detail).toBe('rx buffer posted · 1526 B');
    const done = netDecoder.completed!(g, 0, rx, 12 + frame.length)!;
    expect(done.detail).toMatch(/ICMP echo request id 7 seq 1/);
    expect(done.fields).toMatchObject({ frameLength: frame.length, numBuffers: 1 });
    const tx = chain([[0x3000, 12 + frame.length]], []);
    expect(netDecoder.popped!(g, 1, tx)!.detail).toMatch(/10\.0\.2\.2 > 10\.0\.2\.15/);
  });

  it('rng: the bytes returned', () => {
    const g = new GuardedMemory(new ArrayMemory(64));
    expect(rngDecoder.completed!(g, 0, undefined, 64)).toEqual({ detail: '64 random bytes', fields: { bytes: 64 } });
  });
});
