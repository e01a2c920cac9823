/**
 * The relay's switch and gateway under garbage (fast-check), shared by the unit tests and
 * the long campaign (bench/fuzz.ts). A victim guest leases an address; an attacker on the
 * same room sends valid, mutated and garbage frames (ARP, DHCP, DNS, ICMP, UDP, TCP, IPv4
 * options and fragments, other ethertypes, spoofed sources); an observer only listens.
 *
 * Invariants: nothing throws out of the switch; the gateway hits no internal error (it
 * catches and counts them, so the count is the tell); every frame the gateway emits is a
 * well-formed frame of bounded size (at least the 60-byte minimum, within the switch's
 * limit, checksums right); no lease appears without a port to own it; and afterwards the
 * victim's ARP, ping, DHCP renewal (same address) and DNS still work.
 *
 * The attacker's port may be allowed super-segments (its NIC's tx hello): then it also sends
 * them, valid, mutated and with any MSS, at the gateway and the victim, which takes MTU frames
 * only. Budget: one frame in makes at most MAX_CUT_FRAMES frames at any port.
 *
 * NAT is off: the gateway opens no host sockets here (TCP NAT is fuzzed in tcp-properties.ts).
 */
import fc from 'fast-check';
import {
  ARP_REPLY,
  ARP_REQUEST,
  buildArp,
  buildDns,
  buildEthernet,
  buildIcmp,
  type DecodedFrame,
  decodeFrame,
  DHCPACK,
  DHCPDISCOVER,
  DHCPOFFER,
  DhcpOption,
  DHCPREQUEST,
  DNS_TYPE_A,
  ETH_HLEN,
  ETH_MAX_FRAME,
  ETH_MIN_FRAME,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  macEquals,
  parseMac,
  u32Bytes,
  verifyTransportChecksum,
} from '../../wire/index.ts';
import { anyFrameArb, mutatedFrameArb } from '../../wire/testing/frame-arbitraries.ts';
import { SUPER_SEGMENT_MAX_FRAME } from '../../wire/link-hello.ts';
import { SUPER_SEGMENT_MIN_GSO, makeSuperSegment } from '../../wire/super-segment.ts';
import { TCP_ACK, TCP_PSH, TCP_URGENT } from '../../wire/tcp.ts';
import { tcpFrame } from '../../wire/testing/tcp-frames.ts';
import { writeU16 } from '../../wire/bytes.ts';
import { bump, fail, type NamedProperty } from '../../virtio/testing/invariants.ts';
import { Gateway } from '../gateway.ts';
import { SwitchRoom } from '../switch.ts';
import { FakeGuest, GW_IP, GW_MAC } from '../testing.ts';

const VICTIM_MAC = '52:54:00:00:00:01';
const ATTACKER_MAC = '52:54:00:00:00:02';
const ATTACKER_IP = 0x0a000210;

/** What the attacker sends: mostly at the gateway, sometimes broadcast or at the victim. */
const attackArb = (() => {
  const src = parseMac(ATTACKER_MAC);
  const toGateway = anyFrameArb({ srcMac: src, dstMac: GW_MAC, srcIp: ATTACKER_IP, dstIp: GW_IP });
  const toVictim = anyFrameArb({ srcMac: src, dstMac: parseMac(VICTIM_MAC), srcIp: ATTACKER_IP, dstIp: 0x0a00020f });
  const spoofed = anyFrameArb({ srcMac: parseMac(VICTIM_MAC), dstMac: GW_MAC, srcIp: 0x0a00020f, dstIp: GW_IP });
  return fc.oneof({ weight: 8, arbitrary: toGateway }, { weight: 1, arbitrary: toVictim }, { weight: 1, arbitrary: spoofed });
})();

/** Most frames one super-segment may become: its payload cut at the least MSS. */
const MAX_CUT_FRAMES = Math.ceil((65535 - 40) / SUPER_SEGMENT_MIN_GSO);

/** Super-segments from the attacker: valid (any MSS the check allows), any MSS, mutated. */
const superSegmentArb = (() => {
  const valid = fc
    .record({
      payload: fc.integer({ min: 1461, max: SUPER_SEGMENT_MAX_FRAME - 54 }),
      gso: fc.oneof(fc.integer({ min: SUPER_SEGMENT_MIN_GSO, max: 1460 }), fc.integer({ min: 0, max: 0xffff })),
      psh: fc.boolean(),
      toVictim: fc.boolean(),
      fill: fc.integer({ min: 0, max: 255 }),
    })
    .map(({ payload, gso, psh, toVictim, fill }) => {
      const f = tcpFrame(new Uint8Array(payload).fill(fill), { src: parseMac(ATTACKER_MAC), dst: toVictim ? parseMac(VICTIM_MAC) : GW_MAC, flags: TCP_ACK | (psh ? TCP_PSH : 0) });
      // An MSS the check refuses still goes out, as a hostile guest would send it.
      if (typeof makeSuperSegment(f, gso, 1500) === 'string') writeU16(f, 34 + TCP_URGENT, gso);
      return f;
    });
  return fc.oneof({ weight: 3, arbitrary: valid }, { weight: 2, arbitrary: mutatedFrameArb(valid) });
})();

/** A frame the gateway emitted must be one a guest's stack would accept as well-formed. */
function checkGatewayFrame(frame: Uint8Array): DecodedFrame {
  if (frame.length < ETH_MIN_FRAME || frame.length > ETH_MAX_FRAME) fail(`gateway frame of ${frame.length} bytes`);
  const d = decodeFrame(frame) ?? fail('gateway frame does not decode');
  if (d.eth.etherType === ETHERTYPE_ARP) {
    if (!d.arp || d.arp.op !== ARP_REPLY || !macEquals(d.arp.senderMac, GW_MAC)) fail(`bad ARP from the gateway: ${d.summary}`);
    return d;
  }
  if (d.eth.etherType !== ETHERTYPE_IPV4 || !d.ipv4) fail(`gateway sent ethertype 0x${d.eth.etherType.toString(16)}: ${d.summary}`);
  const ip = d.ipv4;
  if (!ip.checksumOk) fail(`gateway IPv4 header checksum wrong: ${d.summary}`);
  if (ip.protocol === IPPROTO_ICMP && !d.icmp?.checksumOk) fail(`gateway ICMP checksum wrong: ${d.summary}`);
  if ((ip.protocol === IPPROTO_UDP || ip.protocol === IPPROTO_TCP) && !verifyTransportChecksum(ip.src, ip.dst, ip.protocol, ip.payload)) {
    fail(`gateway ${ip.protocol === IPPROTO_UDP ? 'UDP' : 'TCP'} checksum wrong: ${d.summary}`);
  }
  if (ip.protocol === IPPROTO_UDP && !d.udp) fail(`gateway UDP does not parse: ${d.summary}`);
  return d;
}

/** A guest port that checks every frame the gateway sends it. */
function listener(room: SwitchRoom, mac: string, coverage: Map<string, number>): FakeGuest {
  const guest = new FakeGuest(room, mac);
  guest.filter = (d) => {
    if (macEquals(d.eth.src, GW_MAC)) bump(coverage, `gateway sent: ${d.summary.split(/[\d.:]+/).slice(0, 3).join('').slice(0, 40)}`);
    return true;
  };
  return guest;
}

function takeReply(guest: FakeGuest, pred: (d: DecodedFrame) => boolean, what: string): DecodedFrame {
  const got = guest.take();
  return got.find(pred) ?? fail(`no ${what} after garbage (got: ${got.map((d) => d.summary).join(' | ') || 'nothing'})`);
}

/** DISCOVER/OFFER/REQUEST/ACK, synchronously (the gateway answers inside the send). */
function lease(guest: FakeGuest, xid: number): number {
  guest.dhcp(DHCPDISCOVER, xid);
  const offer = takeReply(guest, (d) => d.dhcp?.xid === xid && d.dhcp.messageType === DHCPOFFER, 'DHCPOFFER');
  guest.dhcp(DHCPREQUEST, xid, [
    [DhcpOption.REQUESTED_IP, u32Bytes(offer.dhcp!.yiaddr)],
    [DhcpOption.SERVER_ID, u32Bytes(GW_IP)],
  ]);
  const ack = takeReply(guest, (d) => d.dhcp?.xid === xid && d.dhcp.messageType === DHCPACK, 'DHCPACK');
  guest.ip = ack.dhcp!.yiaddr;
  return guest.ip;
}

/** The victim's ordinary traffic: ARP, ping, DHCP renewal, DNS. */
function checkVictim(victim: FakeGuest, ip: number): void {
  victim.send(
    buildEthernet({
      dst: GW_MAC,
      src: victim.mac,
      etherType: ETHERTYPE_ARP,
      payload: buildArp({ op: ARP_REQUEST, senderMac: victim.mac, senderIp: ip, targetMac: new Uint8Array(6), targetIp: GW_IP }),
    }),
  );
  takeReply(victim, (d) => d.arp?.op === ARP_REPLY && macEquals(d.arp.senderMac, GW_MAC), 'ARP reply');
  const data = Uint8Array.from({ length: 56 }, (_, i) => i);
  victim.send(victim.ipFrame(GW_IP, IPPROTO_ICMP, buildIcmp({ type: ICMP_ECHO_REQUEST, id: 7, seq: 9, data })));
  const pong = takeReply(victim, (d) => d.icmp?.type === ICMP_ECHO_REPLY, 'echo reply');
  if (pong.icmp!.id !== 7 || pong.icmp!.seq !== 9 || !pong.icmp!.data.every((b, i) => b === data[i])) fail('echo reply with the wrong contents');
  if (lease(victim, 0x5eed) !== ip) fail('the victim lost its lease to the garbage');
  victim.udp(GW_IP, 40000, 53, buildDns({ id: 0x77, flags: 0x0100, questions: [{ name: 'gateway.lab', type: DNS_TYPE_A, class: 1 }] }));
  const dns = takeReply(victim, (d) => d.dns?.id === 0x77, 'DNS answer');
  if (dns.dns!.answers.length !== 1 || !dns.dns!.answers[0].data.every((b, i) => b === u32Bytes(GW_IP)[i])) fail('DNS answer is wrong');
}

/** One case: the victim leases, the attacker sends `frames`, the victim carries on (exported for regression tests). */
export function gatewayCase(frames: readonly Uint8Array[], attackerLeases: boolean, coverage = new Map<string, number>(), superSegments = false): void {
  const room = new SwitchRoom('fuzz', { maxFrameBytes: ETH_MAX_FRAME, now: () => 0 });
  const gw = new Gateway(room, { nat: 'off', names: { printer: '10.0.2.9' } });
  try {
    const victim = listener(room, VICTIM_MAC, coverage);
    const attacker = listener(room, ATTACKER_MAC, coverage);
    const observer = listener(room, '52:54:00:00:00:03', coverage);
    const ip = lease(victim, 1);
    if (attackerLeases) lease(attacker, 2);
    if (superSegments) attacker.port.allowSuperSegmentsIn(SUPER_SEGMENT_MAX_FRAME);
    const seen = [victim, attacker, observer].map((g) => g.frames.length);
    for (const frame of frames) {
      attacker.send(frame);
      const counts = gw.stats().counts;
      if (counts['internal-error']) fail('the gateway caught an internal error (set RELAY_DEBUG=1 to see it)');
      [victim, attacker, observer].forEach((g, i) => {
        if (g.frames.length - seen[i] > MAX_CUT_FRAMES) fail(`one frame made ${g.frames.length - seen[i]} at a port`);
        for (const f of g.frames.slice(seen[i])) {
          if (f.length < ETH_HLEN || f.length > ETH_MAX_FRAME) fail(`a guest got a ${f.length}-byte frame`);
          if (macEquals(f, GW_MAC, 6)) checkGatewayFrame(f);
        }
        seen[i] = g.frames.length;
      });
    }
    const gwPort = room.stats().ports.find((p) => p.label === 'gateway')!;
    if (Object.keys(gwPort.drops).length > 0) fail(`the switch dropped gateway frames: ${JSON.stringify(gwPort.drops)}`);
    if (gw.stats().leases.length > 2) fail(`${gw.stats().leases.length} leases for two clients`);
    if (room.stats().macTableSize > room.size) fail(`${room.stats().macTableSize} MACs learned for ${room.size} ports`);
    for (const [what, n] of Object.entries(gw.stats().counts)) bump(coverage, `gateway: ${what}`, n);
    for (const [why, n] of Object.entries(room.stats().drops)) bump(coverage, `switch drop: ${why}`, n ?? 0);
    victim.take();
    checkVictim(victim, ip);
  } finally {
    gw.close();
  }
}

export function gatewayGarbageProperty(coverage = new Map<string, number>()): fc.IProperty<any> {
  return fc.property(fc.array(attackArb, { minLength: 1, maxLength: 30 }), fc.boolean(), (frames, attackerLeases) =>
    gatewayCase(frames, attackerLeases, coverage),
  );
}

/** The same with the attacker allowed super-segments, sending them among its garbage. */
export function gatewaySuperSegmentProperty(coverage = new Map<string, number>()): fc.IProperty<any> {
  const frames = fc.array(fc.oneof({ weight: 1, arbitrary: attackArb }, { weight: 1, arbitrary: superSegmentArb }), { minLength: 1, maxLength: 12 });
  return fc.property(frames, fc.boolean(), (fs, attackerLeases) => gatewayCase(fs, attackerLeases, coverage, true));
}

export function gatewayProperties(): NamedProperty[] {
  const coverage = new Map<string, number>();
  const superCoverage = new Map<string, number>();
  return [
    { name: 'relay: garbage frames into switch + gateway, replies well-formed, then DHCP/ARP/ping/DNS', property: gatewayGarbageProperty(coverage), coverage },
    { name: 'relay: super-segments and garbage from a port allowed them, cut within budget for a stock guest, then DHCP/ARP/ping/DNS', property: gatewaySuperSegmentProperty(superCoverage), coverage: superCoverage },
  ];
}
