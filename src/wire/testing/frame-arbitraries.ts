/**
 * fast-check arbitraries for Ethernet frames a guest or a network peer could send: valid
 * ones built with src/wire/ (ARP, ICMP echo, DHCP, DNS, UDP, TCP with options, IPv4
 * options and fragments, other ethertypes), the same with bytes flipped, overwritten,
 * cut or extended (mostly in the headers, where parsers look), and plain garbage.
 */
import fc from 'fast-check';
import { ARP_REPLY, ARP_REQUEST, buildArp } from '../arp.ts';
import { u32Bytes } from '../bytes.ts';
import { internetChecksum } from '../checksum.ts';
import { DHCPDISCOVER, DHCPREQUEST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpOption, buildDhcp } from '../dhcp.ts';
import { buildDns } from '../dns.ts';
import { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, buildEthernet } from '../ethernet.ts';
import { ICMP_ECHO_REQUEST, buildIcmp } from '../icmp.ts';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, buildIpv4 } from '../ipv4.ts';
import { buildTcp } from '../tcp.ts';
import { buildUdp } from '../udp.ts';

/** Who a frame is from and to, so valid frames reach the parsers behind a switch. */
export interface FrameEnds {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  srcIp: number;
  dstIp: number;
}

const portArb = fc.oneof(fc.constantFrom(53, 67, 68, 80, 7, 0, 65535), fc.integer({ min: 0, max: 65535 }));
const bytesArb = (maxLength: number) => fc.uint8Array({ maxLength });

/** A DNS name: labels of letters, sometimes long, sometimes the lab's. */
const dnsNameArb = fc.oneof(
  fc.constantFrom('gateway', 'host.lab', 'gateway.lab', 'nobody.lab', 'lab', 'example.com', '', '.'),
  fc.array(fc.stringMatching(/^[a-z0-9-]{1,63}$/), { minLength: 1, maxLength: 6 }).map((labels) => labels.join('.')),
);

function ipv4Frame(ends: FrameEnds, protocol: number, payload: Uint8Array, extra: { flags?: number; ttl?: number; options?: Uint8Array } = {}): Uint8Array {
  let ip = buildIpv4({ src: ends.srcIp, dst: ends.dstIp, protocol, payload, flags: extra.flags, ttl: extra.ttl });
  if (extra.options && extra.options.length > 0) {
    // IPv4 options: grow the header to IHL words and fix lengths and the header checksum.
    const opts = new Uint8Array(Math.min(40, (extra.options.length + 3) & ~3));
    opts.set(extra.options.subarray(0, opts.length));
    const withOpts = new Uint8Array(ip.length + opts.length);
    withOpts.set(ip.subarray(0, 20));
    withOpts.set(opts, 20);
    withOpts.set(ip.subarray(20), 20 + opts.length);
    withOpts[0] = 0x40 | ((20 + opts.length) / 4);
    new DataView(withOpts.buffer).setUint16(2, withOpts.length);
    withOpts[10] = withOpts[11] = 0;
    new DataView(withOpts.buffer).setUint16(10, internetChecksum(withOpts.subarray(0, 20 + opts.length)));
    ip = withOpts;
  }
  return buildEthernet({ dst: ends.dstMac, src: ends.srcMac, etherType: ETHERTYPE_IPV4, payload: ip });
}

/** Valid frames of every kind the lab's parsers handle, from `ends`. */
export function validFrameArb(ends: FrameEnds): fc.Arbitrary<Uint8Array> {
  const udp = (srcPort: number, dstPort: number, payload: Uint8Array) =>
    ipv4Frame(ends, IPPROTO_UDP, buildUdp({ src: ends.srcIp, dst: ends.dstIp, srcPort, dstPort, payload }));
  const dhcp = fc
    .record({
      type: fc.oneof(fc.constantFrom(DHCPDISCOVER, DHCPREQUEST, 4, 7, 8), fc.integer({ min: 0, max: 255 })),
      xid: fc.integer({ min: 0, max: 0xffffffff }),
      flags: fc.constantFrom(0, 0x8000),
      ciaddr: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
      requested: fc.option(fc.integer({ min: 0x0a000200, max: 0x0a0002ff })),
      serverId: fc.option(fc.constantFrom(0x0a000202, 0x0a000203, 0x01020304)),
      hostname: fc.option(bytesArb(70)),
      extra: fc.array(fc.tuple(fc.integer({ min: 1, max: 254 }), bytesArb(40)), { maxLength: 4 }),
      toBroadcast: fc.boolean(),
    })
    .map((d) => {
      const options: Array<[number, Uint8Array]> = [[DhcpOption.MESSAGE_TYPE, Uint8Array.of(d.type)]];
      if (d.requested !== null) options.push([DhcpOption.REQUESTED_IP, u32Bytes(d.requested)]);
      if (d.serverId !== null) options.push([DhcpOption.SERVER_ID, u32Bytes(d.serverId)]);
      if (d.hostname !== null) options.push([DhcpOption.HOSTNAME, d.hostname]);
      options.push(...d.extra);
      const msg = buildDhcp({ op: 1, xid: d.xid, chaddr: ends.srcMac, flags: d.flags, ciaddr: d.ciaddr, options });
      const to = d.toBroadcast ? { ...ends, dstMac: BROADCAST_MAC, srcIp: 0, dstIp: 0xffffffff } : ends;
      return ipv4Frame(to, IPPROTO_UDP, buildUdp({ src: to.srcIp, dst: to.dstIp, srcPort: DHCP_CLIENT_PORT, dstPort: DHCP_SERVER_PORT, payload: msg }));
    });
  const dns = fc
    .record({
      id: fc.integer({ min: 0, max: 0xffff }),
      flags: fc.oneof(fc.constant(0x0100), fc.integer({ min: 0, max: 0xffff })),
      questions: fc.array(fc.record({ name: dnsNameArb, type: fc.constantFrom(1, 28, 12, 5, 255), class: fc.constantFrom(1, 1, 3, 255) }), { maxLength: 3 }),
      srcPort: portArb,
    })
    .map((d) => udp(d.srcPort, 53, buildDns({ id: d.id, flags: d.flags, questions: d.questions })));
  // Name compression (§4.1.4 of RFC 1035): a long first name, then questions that point back
  // at it, or pointer loops and pointers past the end.
  const compressedDns = fc
    .record({
      id: fc.integer({ min: 0, max: 0xffff }),
      labels: fc.array(fc.integer({ min: 1, max: 63 }), { minLength: 1, maxLength: 4 }),
      repeats: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 250 })),
      pointer: fc.oneof(fc.constant(12), fc.integer({ min: 0, max: 0x3fff })),
    })
    .map((d) => {
      const bytes = [d.id >> 8, d.id & 0xff, 0x01, 0x00, 0, 1 + d.repeats, 0, 0, 0, 0, 0, 0];
      for (const n of d.labels) bytes.push(n, ...new Array<number>(n).fill(0x61));
      bytes.push(0, 0, 1, 0, 1);
      for (let i = 0; i < d.repeats; i++) bytes.push(0xc0 | (d.pointer >> 8), d.pointer & 0xff, 0, 1, 0, 1);
      bytes[4] = (1 + d.repeats) >> 8;
      bytes[5] = (1 + d.repeats) & 0xff;
      return udp(40000, 53, Uint8Array.from(bytes));
    });
  const tcp = fc
    .record({
      srcPort: portArb,
      dstPort: portArb,
      seq: fc.integer({ min: 0, max: 0xffffffff }),
      ack: fc.integer({ min: 0, max: 0xffffffff }),
      flags: fc.oneof(fc.constantFrom(0x02, 0x10, 0x18, 0x11, 0x04, 0x14, 0x12), fc.integer({ min: 0, max: 0xff })),
      window: fc.integer({ min: 0, max: 0xffff }),
      mss: fc.option(fc.integer({ min: 0, max: 0xffff })),
      windowScale: fc.option(fc.integer({ min: 0, max: 255 })),
      sackPermitted: fc.boolean(),
      payload: bytesArb(1400),
    })
    .map((s) =>
      ipv4Frame(
        ends,
        IPPROTO_TCP,
        buildTcp({
          ...s,
          src: ends.srcIp,
          dst: ends.dstIp,
          options: { mss: s.mss ?? undefined, windowScale: s.windowScale ?? undefined, sackPermitted: s.sackPermitted },
        }),
      ),
    );
  return fc.oneof(
    fc
      .record({ op: fc.constantFrom(ARP_REQUEST, ARP_REPLY, 3), targetIp: fc.oneof(fc.constant(ends.dstIp), fc.integer({ min: 0, max: 0xffffffff })), broadcast: fc.boolean() })
      .map((a) =>
        buildEthernet({
          dst: a.broadcast ? BROADCAST_MAC : ends.dstMac,
          src: ends.srcMac,
          etherType: ETHERTYPE_ARP,
          payload: buildArp({ op: a.op, senderMac: ends.srcMac, senderIp: ends.srcIp, targetMac: new Uint8Array(6), targetIp: a.targetIp }),
        }),
      ),
    fc
      .record({ id: fc.integer({ min: 0, max: 0xffff }), seq: fc.integer({ min: 0, max: 0xffff }), data: bytesArb(1472), type: fc.constantFrom(ICMP_ECHO_REQUEST, ICMP_ECHO_REQUEST, 0, 3, 13) })
      .map((p) => ipv4Frame(ends, IPPROTO_ICMP, buildIcmp(p))),
    dhcp,
    dns,
    compressedDns,
    fc.record({ srcPort: portArb, dstPort: portArb, payload: bytesArb(600) }).map((u) => udp(u.srcPort, u.dstPort, u.payload)),
    tcp,
    // IPv4 with options or as a fragment, any protocol.
    fc
      .record({ protocol: fc.integer({ min: 0, max: 255 }), payload: bytesArb(200), options: bytesArb(40), flags: fc.constantFrom(0, 1, 2, 3) })
      .map((p) => ipv4Frame(ends, p.protocol, p.payload, { options: p.options, flags: p.flags })),
    fc.record({ etherType: fc.oneof(fc.constantFrom(ETHERTYPE_IPV6, 0x8100, 0x88cc), fc.integer({ min: 0, max: 0xffff })), payload: bytesArb(200) }).map((f) =>
      buildEthernet({ dst: ends.dstMac, src: ends.srcMac, etherType: f.etherType, payload: f.payload }),
    ),
  );
}

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'extend'; bytes: Uint8Array };

/** Positions mostly inside the first 64 bytes (Ethernet + IPv4 + L4 headers). */
const positionArb = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 63 }) }, { weight: 1, arbitrary: fc.nat() });

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: positionArb, xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), at: positionArb, value: fc.constantFrom(0, 0xff, 0x7f, 0x80, 1, 0x45, 0x4f) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), keep: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.nat()) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), bytes: bytesArb(64) }) },
);

export function applyMutations(frame: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = frame.slice();
  for (const m of mutations) {
    if (m.kind === 'truncate') out = out.subarray(0, Math.min(out.length, m.keep));
    else if (m.kind === 'extend') {
      const longer = new Uint8Array(out.length + m.bytes.length);
      longer.set(out);
      longer.set(m.bytes, out.length);
      out = longer;
    } else if (out.length > 0) {
      const at = m.at % out.length;
      out[at] = m.kind === 'flip' ? out[at] ^ m.xor : m.value;
    }
  }
  return out.slice();
}

/** `base` with a few mutations applied (shrinks toward the unmutated frame). */
export function mutatedFrameArb(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(base, fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([f, ms]) => applyMutations(f, ms));
}

/** Valid, mutated or garbage frames from `ends`, in proportions that reach deep and wide. */
export function anyFrameArb(ends: FrameEnds, maxGarbage = 1600): fc.Arbitrary<Uint8Array> {
  const valid = validFrameArb(ends);
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 5, arbitrary: mutatedFrameArb(valid) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxGarbage }) },
    // Garbage behind a plausible Ethernet header, so it reaches the L3 parsers.
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(ETHERTYPE_IPV4, ETHERTYPE_ARP), fc.uint8Array({ maxLength: 200 }))
        .map(([type, payload]) => buildEthernet({ dst: ends.dstMac, src: ends.srcMac, etherType: type, payload })),
    },
  );
}
