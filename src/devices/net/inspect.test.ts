import { describe, expect, it } from 'vitest';
import { buildEthernet, buildIcmp, buildIpv4, ETHERTYPE_IPV4, IPPROTO_ICMP, ICMP_ECHO_REQUEST } from '../../net/packets.ts';
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
    expect(netDecoder.popped!(g, 0, rx)!.detail).toBe('rx buffer posted · 1526 B');
    const done = netDecoder.completed!(g, 0, rx, 12 + frame.length)!;
    expect(done.detail).toMatch(/ICMP echo request id 7 seq 1/);
    expect(done.fields).toMatchObject({ frameLength: frame.length, numBuffers: 1 });
    const tx = chain([[0x3000, 12 + frame.length]], []);
    expect(netDecoder.popped!(g, 1, tx)!.detail).toMatch(/10\.0\.2\.2 > 10\.0\.2\.15/);
  });
});
