/**
 * The gateway: a virtual host on each room's switch, like QEMU's user networking (slirp).
 * At 10.0.2.2/24 with MAC 52:55:0a:00:02:02 it answers ARP and ICMP echo itself and hands
 * everything else to its services: DHCP (dhcp-server.ts), DNS on port 53 (dns-server.ts),
 * UDP NAT (udp-nat.ts) and TCP NAT (tcp.ts, terminated here), which reach the outside through
 * an uplink (uplink.ts) as nat-policy.ts allows: 10.0.2.2:P → 127.0.0.1:P ('host' and
 * 'all'), any other address by policy 'all'. No Node module here: the relay runs it with
 * its host's sockets (gateway.ts), the VM worker with wisp or fetch uplinks.
 *
 * It is just another port on the switch: frames reach it by MAC learning and flooding,
 * and its replies enter the switch through its own port. Guest input never throws: every
 * frame it cannot use is counted by reason. Work per frame: one parse per layer (each
 * bounded by the frame), one checksum pass, then one service call.
 */
import { isEthernetIpv4Arp, ARP_REPLY, ARP_REQUEST, ARP_SENDER_IP, ARP_SENDER_MAC, buildArp, parseArp } from '../wire/arp.ts';
import { readU32 } from '../wire/bytes.ts';
import { verifyTransportChecksum } from '../wire/checksum.ts';
import { DHCP_SERVER_PORT } from '../wire/dhcp.ts';
import { DNS_PORT } from '../wire/dns.ts';
import {
  ETH_HLEN,
  ETH_MIN_FRAME,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  buildEthernet,
  etherTypeOf,
  isMulticastMac,
  macEquals,
  macKey,
  macToString,
  parseEthernet,
  parseMac,
} from '../wire/ethernet.ts';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, buildIcmp, parseIcmp } from '../wire/icmp.ts';
import {
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FLAG_MF,
  IPV4_HEADER_LEN,
  IPV4_SRC,
  IP_BROADCAST,
  buildIpv4,
  writeIpv4Header,
  ipToString,
  parseIp,
  parseIpv4,
} from '../wire/ipv4.ts';
import { SUPER_SEGMENT_MAX_FRAME } from '../wire/link-hello.ts';
import { parseTcp } from '../wire/tcp.ts';
import { buildUdp, parseUdp } from '../wire/udp.ts';
import { DhcpServer, type Lease } from './dhcp-server.ts';
import { DnsServer, type LookupFn } from './dns-server.ts';
import { type LeaseBook, LocalLeaseBook, type PoolConfig } from './lease-book.ts';
import type { GatewayIo } from './gateway-io.ts';
import type { Uplink } from './uplink.ts';
import { type NatPolicy, natTarget } from './nat-policy.ts';
import type { DropReason, PortSink, SwitchPort, SwitchRoom } from './switch.ts';
import { DEFAULT_TCP_OPTIONS, TcpNat, type TcpOptions, type TcpTarget } from './tcp.ts';
import { UdpNat } from './udp-nat.ts';

export type { Lease } from './dhcp-server.ts';
export type { LookupFn } from './dns-server.ts';
export type { NatPolicy } from './nat-policy.ts';

export interface GatewayOptions {
  /** Default 10.0.2.2. */
  ip: string;
  /** Default 52:55:0a:00:02:02. */
  mac: string;
  /** Default 255.255.255.0. */
  netmask: string;
  /** The DNS server address handed out by DHCP; default the gateway's own address. */
  dnsIp: string;
  /** First and last address the DHCP server hands out. Default 10.0.2.15 … 10.0.2.254. */
  dhcpStart: string;
  dhcpEnd: string;
  leaseSeconds: number;
  /** Search domain handed out by DHCP, and the suffix of lab names. Default 'lab'. */
  domain: string;
  /** Extra lab names (without the domain) → IPv4. `gateway` and `host` are always there. */
  names: Record<string, string>;
  nat: NatPolicy;
  /** Where 10.0.2.2 is NATed to. Default 127.0.0.1. */
  hostAddress: string;
  udpIdleMs: number;
  /** A client gone this long (not back with its MAC) loses its TCP connections and UDP flows. */
  leftGraceMs: number;
  maxUdpFlows: number;
  maxPendingLookups: number;
  /** Resolver for names outside the lab (nat 'all' only); default the uplink's. */
  lookup?: LookupFn;
  tcp: Partial<TcpOptions>;
}

export const DEFAULT_GATEWAY_OPTIONS: GatewayOptions = {
  ip: '10.0.2.2',
  mac: '52:55:0a:00:02:02',
  netmask: '255.255.255.0',
  dnsIp: '10.0.2.2',
  dhcpStart: '10.0.2.15',
  dhcpEnd: '10.0.2.254',
  leaseSeconds: 86400,
  domain: 'lab',
  names: {},
  nat: 'host',
  hostAddress: '127.0.0.1',
  udpIdleMs: 60_000,
  leftGraceMs: 30_000,
  maxUdpFlows: 256,
  maxPendingLookups: 64,
  tcp: {},
};

export interface GatewayStats {
  ip: string;
  mac: string;
  nat: NatPolicy;
  /** Handled packets by kind and drops by reason. */
  counts: Record<string, number>;
  leases: Lease[];
  udpFlows: number;
  tcp: ReturnType<TcpNat['stats']>;
}

export class GatewayCore implements PortSink, GatewayIo {
  readonly opts: GatewayOptions;
  readonly ip: number;
  readonly mac: Uint8Array;
  readonly dnsIp: number;
  private readonly netmask: number;
  readonly port: SwitchPort;
  private readonly counts: Record<string, number> = {};
  private readonly leftTimers = new Map<number, ReturnType<typeof setTimeout>>();
  private readonly dhcp: DhcpServer;
  private readonly dns: DnsServer;
  private readonly udp: UdpNat;
  private readonly tcp: TcpNat;
  private ipId = 1;
  private closed = false;

  constructor(
    private readonly room: SwitchRoom,
    uplink: Uplink,
    opts: Partial<GatewayOptions> = {},
    /** A shared lease book for the pool (a cluster's); default this gateway's own. */
    leases?: (pool: PoolConfig, isOurs: (ip: number) => boolean) => LeaseBook,
  ) {
    const o = (this.opts = { ...DEFAULT_GATEWAY_OPTIONS, ...opts, tcp: { ...DEFAULT_TCP_OPTIONS, ...opts.tcp } });
    this.ip = parseIp(o.ip);
    this.mac = parseMac(o.mac);
    this.dnsIp = parseIp(o.dnsIp);
    this.netmask = parseIp(o.netmask);
    const isOurs = (ip: number) => this.isOurs(ip);
    const pool = { start: parseIp(o.dhcpStart), end: parseIp(o.dhcpEnd) };
    const book = leases ? leases(pool, isOurs) : new LocalLeaseBook(pool, isOurs, (key) => room.hasMac(key), (what) => this.count(what));
    this.dhcp = new DhcpServer(this, { netmask: this.netmask, dnsIp: this.dnsIp, leaseSeconds: o.leaseSeconds, domain: o.domain }, book);
    this.dns = new DnsServer(this, { ...o, lookup: o.lookup ?? uplink.lookup }, (hostname) => this.dhcp.addressOfHost(hostname));
    this.udp = new UdpNat(this, o, (dst, port) => this.natTarget(dst, port), () => uplink.createUdp());
    this.tcp = new TcpNat(
      {
        emit: (mac, src, dst, frame, tcpLength) => this.sendIpInPlace(mac, src, dst, IPPROTO_TCP, frame, tcpLength),
        count: (what) => this.count(what),
        frameLimit: (mac) => room.frameLimitFor(macKey(mac)),
        connect: (target) => uplink.connectTcp(target),
      },
      o.tcp,
    );
    // localOnly: in a cluster every relay has this gateway (same MAC and address) and its NAT
    // serves only the relay's own clients; frames from other relays never reach it.
    // Its TCP may send super-segments; the switch passes them only to ports that offered them.
    // It takes clients' whole: its TCP terminates them (tcp.ts takes segments of any length).
    this.port = room.attach(this, { label: 'gateway', mac: this.mac, localOnly: true, maxFrameBytes: SUPER_SEGMENT_MAX_FRAME, takesSuperSegments: true });
    room.guard = (frame, srcKey) => this.sourceGuard(frame, srcKey);
  }

  /**
   * The room's source guard (switch.ts): a client may not claim the gateway's addresses, nor
   * an address leased to another MAC, by ARP or as an IPv4 source; and an ARP sender MAC
   * must be the frame's own. Measured without it (`npm run abuse:relay`): one gratuitous ARP
   * "10.0.2.2 is at me" moved a real guest's gateway entry to the attacker, 100 % ping loss.
   */
  private sourceGuard(frame: Uint8Array, srcKey: number): DropReason | null {
    const type = frame.length >= ETH_HLEN ? etherTypeOf(frame) : -1;
    if (type === ETHERTYPE_ARP && isEthernetIpv4Arp(frame, ETH_HLEN)) {
      if (macKey(frame, ETH_HLEN + ARP_SENDER_MAC) !== srcKey) return 'arp-spoof';
      return this.claimsOthers(readU32(frame, ETH_HLEN + ARP_SENDER_IP), srcKey) ? 'arp-spoof' : null;
    }
    if (type === ETHERTYPE_IPV4 && frame.length >= ETH_HLEN + IPV4_HEADER_LEN) {
      return this.claimsOthers(readU32(frame, ETH_HLEN + IPV4_SRC), srcKey) ? 'ip-spoof' : null;
    }
    return null;
  }

  /** Whether `ip` belongs to the gateway or is leased to a MAC other than `macKeyOf`. */
  private claimsOthers(ip: number, macKeyOf: number): boolean {
    if (this.isOurs(ip)) return true;
    const owner = this.dhcp.ownerOf(ip);
    return owner !== undefined && owner !== macKeyOf;
  }

  count(what: string): void {
    this.counts[what] = (this.counts[what] ?? 0) + 1;
  }

  /**
   * From the switch. Always accepts (never "congested"). Payloads handed on to host sockets
   * (TCP, UDP) are views of `frame`, not copies: frames in the switch never change after
   * input (client sinks queue them as they are too), and the relay's are their own copies.
   */
  deliver(frame: Uint8Array): boolean {
    if (this.closed) return true;
    try {
      this.handle(frame);
    } catch (e) {
      // A bug here must not take the relay down; count it so tests notice.
      this.count('internal-error');
      if ((globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.RELAY_DEBUG) console.error('gateway:', e);
    }
    return true;
  }

  private isOurs(ip: number): boolean {
    return ip === this.ip || ip === this.dnsIp;
  }

  private handle(frame: Uint8Array): void {
    const eth = parseEthernet(frame);
    if (!eth) return this.count('drop-malformed-ethernet');
    const toUs = macEquals(eth.dst, this.mac);
    if (!toUs && !isMulticastMac(eth.dst)) return; // unicast for someone else, flooded
    if (eth.etherType === ETHERTYPE_ARP) return this.handleArp(eth.payload);
    if (eth.etherType !== ETHERTYPE_IPV4) return; // IPv6 and others: not ours to answer
    const ip = parseIpv4(eth.payload);
    if (!ip) return this.count('drop-malformed-ipv4');
    if (!ip.checksumOk) return this.count('drop-bad-ip-checksum');
    if (ip.flags & IPV4_FLAG_MF || ip.fragmentOffset) return this.count('drop-fragment');
    const src = eth.src;

    if (ip.protocol === IPPROTO_UDP) {
      const udp = parseUdp(ip.payload);
      if (!udp) return this.count('drop-malformed-udp');
      if (udp.checksum !== 0 && !verifyTransportChecksum(ip.src, ip.dst, IPPROTO_UDP, ip.payload.subarray(0, udp.length))) {
        return this.count('drop-bad-udp-checksum');
      }
      if (udp.dstPort === DHCP_SERVER_PORT && (ip.dst === IP_BROADCAST || this.isOurs(ip.dst))) {
        return this.dhcp.handle(src, udp.payload);
      }
      if (!toUs) return; // other broadcast/multicast UDP: not for us
      if (ip.dst === this.dnsIp && udp.dstPort === DNS_PORT) return this.dns.handle(src, ip, udp.srcPort, udp.payload);
      return this.udp.out(src, ip, udp.srcPort, udp.dstPort, udp.payload);
    }
    if (!toUs) return;
    if (ip.protocol === IPPROTO_ICMP) {
      const icmp = parseIcmp(ip.payload);
      if (!icmp) return this.count('drop-malformed-icmp');
      if (!icmp.checksumOk) return this.count('drop-bad-icmp-checksum');
      if (icmp.type !== ICMP_ECHO_REQUEST) return this.count('drop-icmp-type');
      if (!this.isOurs(ip.dst)) return this.count('drop-icmp-not-ours');
      this.count('icmp-echo');
      const reply = buildIcmp({ type: ICMP_ECHO_REPLY, restOfHeader: icmp.restOfHeader, data: icmp.data });
      return this.sendIp(src, ip.dst, ip.src, IPPROTO_ICMP, reply);
    }
    if (ip.protocol === IPPROTO_TCP) {
      const tcp = parseTcp(ip.payload);
      if (!tcp) return this.count('drop-malformed-tcp');
      if (!verifyTransportChecksum(ip.src, ip.dst, IPPROTO_TCP, ip.payload)) return this.count('drop-bad-tcp-checksum');
      this.count('tcp-segment');
      this.tcp.input(src, ip.src, ip.dst, tcp, () => this.natTarget(ip.dst, tcp.dstPort));
      return;
    }
    this.count('drop-protocol');
  }

  /** ARP requests for the gateway's addresses; everything else ARP is the guests' business. */
  private handleArp(b: Uint8Array): void {
    const arp = parseArp(b);
    if (!arp) return this.count('drop-malformed-arp');
    if (arp.op !== ARP_REQUEST || !this.isOurs(arp.targetIp)) return;
    this.count('arp-reply');
    const reply = buildArp({ op: ARP_REPLY, senderMac: this.mac, senderIp: arp.targetIp, targetMac: arp.senderMac, targetIp: arp.senderIp });
    this.sendEth(arp.senderMac, ETHERTYPE_ARP, reply);
  }

  /** Where a guest's packet to (dst, port) goes on the host, or null if policy refuses. */
  natTarget(dst: number, port: number): TcpTarget | null {
    const scope = { policy: this.opts.nat, hostAddress: this.opts.hostAddress, subnet: this.ip, netmask: this.netmask };
    return natTarget(scope, this.isOurs(dst), dst, port);
  }

  // ------------------------------------------------------------- frames out

  /**
   * Unicast to a MAC no port has would be flooded to the whole room: a departed guest's NAT
   * traffic (host data, retransmissions) must not reach the others.
   */
  private reachable(dst: Uint8Array): boolean {
    if (isMulticastMac(dst) || this.room.hasMac(macKey(dst))) return true;
    this.count('drop-guest-gone');
    return false;
  }

  private sendEth(dst: Uint8Array, etherType: number, payload: Uint8Array): void {
    if (!this.reachable(dst)) return;
    // Pad to Ethernet's 60-byte minimum (no FCS), as a real NIC would; guests may expect
    // it. The IP header's total length tells the padding apart.
    this.port.input(buildEthernet({ dst, src: this.mac, etherType, payload }, ETH_MIN_FRAME));
  }

  sendIp(dstMac: Uint8Array, src: number, dst: number, protocol: number, payload: Uint8Array): void {
    if (this.closed) return;
    this.ipId = (this.ipId + 1) & 0xffff;
    this.sendEth(dstMac, ETHERTYPE_IPV4, buildIpv4({ src, dst, protocol, payload, id: this.ipId }));
  }

  /**
   * Like sendIp, for a frame whose L4 part (`l4Length` bytes) is already in place after room
   * for the Ethernet and IPv4 headers (TCP data is copied once, not once per layer).
   */
  private sendIpInPlace(dstMac: Uint8Array, src: number, dst: number, protocol: number, frame: Uint8Array, l4Length: number): void {
    if (this.closed || !this.reachable(dstMac)) return;
    this.ipId = (this.ipId + 1) & 0xffff;
    frame.set(dstMac.subarray(0, 6), 0);
    frame.set(this.mac, 6);
    frame[12] = ETHERTYPE_IPV4 >>> 8;
    frame[13] = ETHERTYPE_IPV4 & 0xff;
    writeIpv4Header(frame, ETH_HLEN, { src, dst, protocol, id: this.ipId }, l4Length);
    this.port.input(frame);
  }

  sendUdp(dstMac: Uint8Array, src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): void {
    this.sendIp(dstMac, src, dst, IPPROTO_UDP, buildUdp({ src, dst, srcPort, dstPort, payload }));
  }

  // -------------------------------------------------------------

  leaseFor(mac: Uint8Array): string | null {
    return this.dhcp.leaseFor(mac);
  }

  /**
   * A client's port left the switch. Unless its MAC is back within leftGraceMs (a link that
   * reconnects), its TCP connections are reset and its UDP flows closed. Measured before:
   * 20 clients that vanished mid-connection left 20 host TCP sockets open (the idle timeout
   * is 2 h) and 20 UDP flows, all counted against the room's NAT limits.
   */
  clientLeft(mac: Uint8Array): void {
    const key = macKey(mac);
    const gone = mac.slice(0, 6);
    clearTimeout(this.leftTimers.get(key));
    const t = setTimeout(() => {
      this.leftTimers.delete(key);
      if (this.closed || this.room.hasMac(key)) return;
      for (let i = this.tcp.dropGuest(gone); i > 0; i--) this.count('tcp-reset-guest-gone');
      for (let i = this.udp.dropGuest(gone); i > 0; i--) this.count('udp-closed-guest-gone');
    }, this.opts.leftGraceMs);
    t.unref?.();
    this.leftTimers.set(key, t);
  }

  stats(): GatewayStats {
    return {
      ip: ipToString(this.ip),
      mac: macToString(this.mac),
      nat: this.opts.nat,
      counts: { ...this.counts },
      leases: this.dhcp.list(),
      udpFlows: this.udp.size,
      tcp: this.tcp.stats(),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.udp.close();
    for (const t of this.leftTimers.values()) clearTimeout(t);
    this.leftTimers.clear();
    this.tcp.close();
    if (this.room.guard) this.room.guard = null;
    this.port.detach();
  }
}
