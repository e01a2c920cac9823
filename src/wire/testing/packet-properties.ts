/**
 * src/wire/'s parsers on frames a guest or a peer controls (fast-check), shared by the
 * unit tests and the long campaign (bench/fuzz.ts). The inspector and the page's DHCP
 * snooping run them on every frame crossing the NIC; the relay on every frame it switches.
 *
 * Invariants: no parser throws; what they return is consistent with the input (payloads
 * are views inside it, length fields within it, IPv4 header 20–60 bytes, DNS names within
 * 255 characters); and builders round-trip through the parsers (DNS questions, DHCP options
 * of any length, TCP options).
 */
import fc from 'fast-check';
import { leasedAddress } from '../../net/dhcp-snoop.ts';
import { parseArp } from '../arp.ts';
import { decodeFrame } from '../decode.ts';
import { buildDhcp, parseDhcp } from '../dhcp.ts';
import { buildDns, parseDns } from '../dns.ts';
import { BROADCAST_MAC } from '../ethernet.ts';
import { parseIcmp } from '../icmp.ts';
import { parseIpv4 } from '../ipv4.ts';
import { buildTcp, parseTcp, parseTcpOptions } from '../tcp.ts';
import { parseUdp } from '../udp.ts';
import { fail, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { anyFrameArb } from './frame-arbitraries.ts';

const ENDS = { srcMac: Uint8Array.of(0x52, 0x54, 0, 0, 0, 1), dstMac: Uint8Array.of(0x52, 0x55, 10, 0, 2, 2), srcIp: 0x0a00020f, dstIp: 0x0a000202 };

/** `part` must be a view into `whole` (same buffer, inside its bytes). */
function within(whole: Uint8Array, part: Uint8Array, what: string): void {
  if (part.buffer !== whole.buffer || part.byteOffset < whole.byteOffset || part.byteOffset + part.length > whole.byteOffset + whole.length) {
    fail(`${what} is not a view inside the input`);
  }
}

/** Every parser, at every layer, on the bytes where it would look. */
export function parseEverything(frame: Uint8Array): void {
  const d = decodeFrame(frame);
  if (frame.length >= 14 && !d) fail('decodeFrame refused a frame with an Ethernet header');
  leasedAddress(frame, ENDS.srcMac);
  if (!d) return;
  within(frame, d.eth.payload, 'Ethernet payload');
  if (typeof d.summary !== 'string' || d.summary.length === 0) fail('no summary');
  const ip = d.ipv4;
  if (ip) {
    if (ip.headerLength < 20 || ip.headerLength > 60 || ip.totalLength > d.eth.payload.length) fail('IPv4 lengths outside the packet');
    if (ip.payload.length !== ip.totalLength - ip.headerLength) fail('IPv4 payload is not total length − header length');
    within(frame, ip.payload, 'IPv4 payload');
  }
  if (d.udp) {
    if (d.udp.length > ip!.payload.length || d.udp.payload.length !== d.udp.length - 8) fail('UDP length outside the datagram');
    within(frame, d.udp.payload, 'UDP payload');
  }
  if (d.tcp) {
    if (d.tcp.headerLength < 20 || d.tcp.headerLength > ip!.payload.length) fail('TCP header outside the segment');
    within(frame, d.tcp.payload, 'TCP payload');
  }
  for (const q of d.dns?.questions ?? []) if (q.name.length > 255) fail(`DNS name of ${q.name.length} characters`);
  // The lower-level parsers on the raw payload too, whatever the ethertype said.
  const payload = frame.subarray(14);
  for (const parse of [parseArp, parseIpv4, parseIcmp, parseUdp, parseTcp, parseDhcp, parseDns, parseTcpOptions]) parse(payload);
  parseDhcp(frame);
  parseDns(frame);
}

export function parseAnyFrameProperty(): fc.IProperty<any> {
  return fc.property(anyFrameArb(ENDS), (frame) => parseEverything(frame));
}

const labelArb = fc.stringMatching(/^[a-z0-9-]{1,63}$/);

export function roundTripProperty(): fc.IProperty<any> {
  return fc.property(
    fc.record({
      names: fc.array(fc.array(labelArb, { minLength: 1, maxLength: 3 }).map((l) => l.join('.')), { minLength: 1, maxLength: 4 }),
      type: fc.integer({ min: 0, max: 0xffff }),
      options: fc.array(fc.tuple(fc.integer({ min: 1, max: 254 }), fc.uint8Array({ maxLength: 600 })), { maxLength: 4 }),
      tcp: fc.record({ mss: fc.option(fc.integer({ min: 0, max: 0xffff })), windowScale: fc.option(fc.integer({ min: 0, max: 14 })), sackPermitted: fc.boolean() }),
    }),
    ({ names, type, options, tcp }) => {
      const dns = parseDns(buildDns({ id: 1, flags: 0x0100, questions: names.map((name) => ({ name, type, class: 1 })) })) ?? fail('built DNS does not parse');
      if (dns.questions.map((q) => q.name).join() !== names.join()) fail('DNS names do not round-trip');
      const dhcp = parseDhcp(buildDhcp({ op: 1, xid: 7, chaddr: BROADCAST_MAC, options })) ?? fail('built DHCP does not parse');
      // Repeated codes concatenate (RFC 3396), as long values split by the builder do.
      const want = new Map<number, number[]>();
      for (const [code, value] of options) want.set(code, [...(want.get(code) ?? []), ...value]);
      for (const [code, value] of want) {
        const got = dhcp.options.get(code);
        if (value.length > 0 && (!got || got.length !== value.length || !got.every((b, i) => b === value[i]))) fail(`DHCP option ${code} does not round-trip`);
      }
      const opts = { mss: tcp.mss ?? undefined, windowScale: tcp.windowScale ?? undefined, sackPermitted: tcp.sackPermitted || undefined };
      const seg = parseTcp(buildTcp({ src: 1, dst: 2, srcPort: 3, dstPort: 4, seq: 5, ack: 6, flags: 0x12, window: 7, options: opts })) ?? fail('built TCP does not parse');
      if (seg.options.mss !== opts.mss || seg.options.windowScale !== opts.windowScale || seg.options.sackPermitted !== opts.sackPermitted) fail('TCP options do not round-trip');
    },
  );
}

export function packetProperties(): NamedProperty[] {
  return [
    { name: 'packets: parsers on valid, mutated and garbage frames', property: parseAnyFrameProperty() },
    { name: 'packets: builders round-trip through the parsers', property: roundTripProperty() },
  ];
}
