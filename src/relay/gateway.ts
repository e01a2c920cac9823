/**
 * The gateway: a virtual host on each room's switch, like QEMU's user networking (slirp).
 * At 10.0.2.2/24 with MAC 52:55:0a:00:02:02 it answers ARP, runs a DHCP server (stable
 * lease per MAC from 10.0.2.15 up), answers ICMP echo, serves DNS on port 53 (lab names;
 * other names through the host's resolver only when NAT policy is 'all'), and NATs UDP
 * (Node dgram sockets) and TCP (terminated here, see tcp.ts) to the relay's host:
 * 10.0.2.2:P → 127.0.0.1:P ('host' and 'all'), any other address by policy 'all'.
 *
 * It is just another port on the switch: frames reach it by MAC learning and flooding,
 * and its replies enter the switch through its own port. Guest input never throws: every
 * frame it cannot use is counted by reason.
 */
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { ARP_REPLY, ARP_REQUEST, buildArp, parseArp } from '../wire/arp.ts';
import { readU32, u32Bytes } from '../wire/bytes.ts';
import { verifyTransportChecksum } from '../wire/checksum.ts';
import { DHCPACK, DHCPDISCOVER, DHCPINFORM, DHCPNAK, DHCPOFFER, DHCPRELEASE, DHCPREQUEST, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, type DhcpMessage, DhcpOption, buildDhcp, parseDhcp } from '../wire/dhcp.ts';
import { DNS_CLASS_IN, DNS_RCODE_FORMERR, DNS_RCODE_NOERROR, DNS_RCODE_NOTIMP, DNS_RCODE_NXDOMAIN, DNS_RCODE_SERVFAIL, DNS_TYPE_A, type DnsMessage, type DnsRecord, buildDns, parseDns } from '../wire/dns.ts';
import { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, buildEthernet, isMulticastMac, macEquals, macKey, macToString, parseEthernet, parseMac } from '../wire/ethernet.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, buildIcmp, parseIcmp } from '../wire/icmp.ts';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IP_BROADCAST, type Ipv4Packet, buildIpv4, ipToString, parseIp, parseIpv4 } from '../wire/ipv4.ts';
import { parseTcp } from '../wire/tcp.ts';
import { buildUdp, parseUdp } from '../wire/udp.ts';
import type { DropReason, PortSink, SwitchPort, SwitchRoom } from './switch.ts';
import { DEFAULT_TCP_OPTIONS, TcpNat, type TcpOptions, type TcpTarget } from './tcp.ts';

export type NatPolicy = 'off' | 'host' | 'all';

/** Largest DNS message over UDP without EDNS (RFC 1035 4.2.1), and the truncation flag. */
const DNS_UDP_MAX = 512;
const DNS_FLAG_TC = 0x0200;

export type LookupFn = (name: string) => Promise<number[]>;

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
  /** Resolver for names outside the lab (nat 'all' only); default Node's dns.lookup (IPv4). */
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

export interface Lease {
  ip: string;
  mac: string;
  hostname?: string;
}

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

function nodeLookup(name: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(name, { family: 4, all: true }, (err, addrs) => {
      if (err) reject(err);
      else resolve(addrs.map((a) => parseIp(a.address)));
    });
  });
}

interface UdpFlow {
  socket: dgram.Socket;
  guestMac: Uint8Array;
  guestIp: number;
  guestPort: number;
  timer: NodeJS.Timeout;
}

export class Gateway implements PortSink {
  readonly opts: GatewayOptions;
  readonly ip: number;
  readonly mac: Uint8Array;
  readonly dnsIp: number;
  private readonly netmask: number;
  private readonly dhcpStart: number;
  private readonly dhcpEnd: number;
  readonly port: SwitchPort;
  private readonly counts: Record<string, number> = {};
  private readonly leases = new Map<number, { ip: number; hostname?: string }>();
  private readonly leaseByIp = new Map<number, number>();
  private readonly udpFlows = new Map<string, UdpFlow>();
  private readonly leftTimers = new Map<number, NodeJS.Timeout>();
  private readonly tcp: TcpNat;
  private readonly lookup: LookupFn;
  private pendingLookups = 0;
  private ipId = 1;
  private closed = false;

  constructor(
    private readonly room: SwitchRoom,
    opts: Partial<GatewayOptions> = {},
  ) {
    this.opts = { ...DEFAULT_GATEWAY_OPTIONS, ...opts, tcp: { ...DEFAULT_TCP_OPTIONS, ...opts.tcp } };
    this.ip = parseIp(this.opts.ip);
    this.mac = parseMac(this.opts.mac);
    this.dnsIp = parseIp(this.opts.dnsIp);
    this.netmask = parseIp(this.opts.netmask);
    this.dhcpStart = parseIp(this.opts.dhcpStart);
    this.dhcpEnd = parseIp(this.opts.dhcpEnd);
    this.lookup = this.opts.lookup ?? nodeLookup;
    this.tcp = new TcpNat(
      {
        emit: (mac, src, dst, seg) => this.sendIp(mac, src, dst, IPPROTO_TCP, seg),
        count: (what) => this.count(what),
      },
      this.opts.tcp,
    );
    this.port = room.attach(this, { label: 'gateway', mac: this.mac });
    room.guard = (frame, srcKey) => this.sourceGuard(frame, srcKey);
  }

  /**
   * The room's source guard (switch.ts): a client may not claim the gateway's addresses, nor
   * an address leased to another MAC, by ARP or as an IPv4 source; and an ARP sender MAC
   * must be the frame's own. Measured without it (`npm run abuse:relay`): one gratuitous ARP
   * "10.0.2.2 is at me" moved a real guest's gateway entry to the attacker, 100 % ping loss.
   */
  private sourceGuard(frame: Uint8Array, srcKey: number): DropReason | null {
    const type = frame.length >= 14 ? (frame[12] << 8) | frame[13] : -1;
    if (type === ETHERTYPE_ARP && frame.length >= 42 && frame[18] === 6 && frame[19] === 4) {
      if (macKey(frame, 22) !== srcKey) return 'arp-spoof';
      return this.claimsOthers(readU32(frame, 28), srcKey) ? 'arp-spoof' : null;
    }
    if (type === ETHERTYPE_IPV4 && frame.length >= 34) {
      return this.claimsOthers(readU32(frame, 26), srcKey) ? 'ip-spoof' : null;
    }
    return null;
  }

  /** Whether `ip` belongs to the gateway or is leased to a MAC other than `macKeyOf`. */
  private claimsOthers(ip: number, macKeyOf: number): boolean {
    if (this.isOurs(ip)) return true;
    const owner = this.leaseByIp.get(ip);
    return owner !== undefined && owner !== macKeyOf;
  }

  private count(what: string): void {
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
      if (process.env.RELAY_DEBUG) console.error('gateway:', e);
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
    if (ip.flags & 1 || ip.fragmentOffset) return this.count('drop-fragment');
    const src = eth.src;

    if (ip.protocol === IPPROTO_UDP) {
      const udp = parseUdp(ip.payload);
      if (!udp) return this.count('drop-malformed-udp');
      if (udp.checksum !== 0 && !verifyTransportChecksum(ip.src, ip.dst, IPPROTO_UDP, ip.payload.subarray(0, udp.length))) {
        return this.count('drop-bad-udp-checksum');
      }
      if (udp.dstPort === DHCP_SERVER_PORT && (ip.dst === IP_BROADCAST || this.isOurs(ip.dst))) {
        return this.handleDhcp(src, udp.payload);
      }
      if (!toUs) return; // other broadcast/multicast UDP: not for us
      if (ip.dst === this.dnsIp && udp.dstPort === 53) return this.handleDns(src, ip, udp.srcPort, udp.payload);
      return this.udpOut(src, ip, udp.srcPort, udp.dstPort, udp.payload);
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

  /** Where a guest's packet to (dst, port) goes on the host, or null if policy refuses. */
  natTarget(dst: number, port: number): TcpTarget | null {
    const policy = this.opts.nat;
    if (policy === 'off') return null;
    if (this.isOurs(dst)) return { host: this.opts.hostAddress, port };
    if (policy !== 'all') return null;
    const first = dst >>> 24;
    if (first === 0 || first === 127 || first >= 224) return null; // unspecified, loopback, multicast, broadcast
    if ((dst & this.netmask) === (this.ip & this.netmask)) return null; // the lab's own subnet
    return { host: ipToString(dst), port };
  }

  // ------------------------------------------------------------- frames out

  private sendEth(dst: Uint8Array, etherType: number, payload: Uint8Array): void {
    // Unicast to a MAC no port has would be flooded to the whole room: a departed guest's
    // NAT traffic (host data, retransmissions) must not reach the others.
    if (!isMulticastMac(dst) && !this.room.hasMac(macKey(dst))) return this.count('drop-guest-gone');
    // Pad to Ethernet's 60-byte minimum (no FCS), as a real NIC would; guests may expect
    // it. The IP header's total length tells the padding apart.
    this.port.input(buildEthernet({ dst, src: this.mac, etherType, payload }, 60));
  }

  sendIp(dstMac: Uint8Array, src: number, dst: number, protocol: number, payload: Uint8Array): void {
    if (this.closed) return;
    this.ipId = (this.ipId + 1) & 0xffff;
    this.sendEth(dstMac, ETHERTYPE_IPV4, buildIpv4({ src, dst, protocol, payload, id: this.ipId }));
  }

  private sendUdp(dstMac: Uint8Array, src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): void {
    this.sendIp(dstMac, src, dst, IPPROTO_UDP, buildUdp({ src, dst, srcPort, dstPort, payload }));
  }

  // ------------------------------------------------------------- ARP

  private handleArp(b: Uint8Array): void {
    const arp = parseArp(b);
    if (!arp) return this.count('drop-malformed-arp');
    if (arp.op !== ARP_REQUEST || !this.isOurs(arp.targetIp)) return;
    this.count('arp-reply');
    const reply = buildArp({ op: ARP_REPLY, senderMac: this.mac, senderIp: arp.targetIp, targetMac: arp.senderMac, targetIp: arp.senderIp });
    this.sendEth(arp.senderMac, ETHERTYPE_ARP, reply);
  }

  // ------------------------------------------------------------- DHCP

  private allocate(mac: number): number | null {
    const have = this.leases.get(mac);
    if (have) {
      // Re-insert: the map's order is least recently used first, for reclaim() below.
      this.leases.delete(mac);
      this.leases.set(mac, have);
      return have.ip;
    }
    for (let ip = this.dhcpStart; ip <= this.dhcpEnd; ip++) {
      if (this.isOurs(ip) || this.leaseByIp.has(ip)) continue;
      this.leases.set(mac, { ip });
      this.leaseByIp.set(ip, mac);
      return ip;
    }
    return this.reclaim(mac);
  }

  /**
   * The pool is used up: hand out the least recently used lease of a MAC that is not on the
   * switch now. Leases stay stable for guests that come back, but not at the price of new
   * guests getting none: 240 short-lived clients, each with a fresh MAC, used to exhaust a
   * room's pool for good.
   */
  private reclaim(mac: number): number | null {
    for (const [old, lease] of this.leases) {
      if (this.room.hasMac(old)) continue;
      this.leases.delete(old);
      this.count('dhcp-lease-reclaimed');
      this.leases.set(mac, { ip: lease.ip });
      this.leaseByIp.set(lease.ip, mac);
      return lease.ip;
    }
    return null;
  }

  private handleDhcp(ethSrc: Uint8Array, b: Uint8Array): void {
    const m = parseDhcp(b);
    if (!m || m.op !== 1 || m.htype !== 1 || m.hlen !== 6) return this.count('drop-malformed-dhcp');
    // The switch has already checked the frame's source MAC against the port's; a chaddr
    // that differs would let one client take another's lease.
    if (!macEquals(m.chaddr, ethSrc)) return this.count('drop-dhcp-chaddr');
    const key = macKey(m.chaddr);
    const serverId = m.options.get(DhcpOption.SERVER_ID);
    const hostname = m.options.get(DhcpOption.HOSTNAME);
    switch (m.messageType) {
      case DHCPDISCOVER: {
        const ip = this.allocate(key);
        if (ip === null) return this.count('dhcp-pool-exhausted');
        this.count('dhcp-offer');
        return this.dhcpReply(m, DHCPOFFER, ip);
      }
      case DHCPREQUEST: {
        if (serverId && serverId.length === 4 && readU32(serverId) !== this.ip) return; // chose another server
        const req = m.options.get(DhcpOption.REQUESTED_IP);
        const wanted = req && req.length === 4 ? readU32(req) : m.ciaddr;
        const ip = this.allocate(key);
        if (ip === null || (wanted !== 0 && wanted !== ip)) {
          this.count('dhcp-nak');
          return this.dhcpReply(m, DHCPNAK, 0);
        }
        if (hostname && hostname.length > 0) {
          const lease = this.leases.get(key);
          if (lease) lease.hostname = sanitizeHostname(hostname);
        }
        this.count('dhcp-ack');
        return this.dhcpReply(m, DHCPACK, ip);
      }
      case DHCPINFORM:
        this.count('dhcp-inform');
        return this.dhcpReply(m, DHCPACK, 0);
      case DHCPRELEASE:
        // Leases are stable per MAC for the room's lifetime; a release changes nothing.
        this.count('dhcp-release');
        return;
      default:
        this.count('drop-dhcp-type');
    }
  }

  private dhcpReply(m: DhcpMessage, type: number, yiaddr: number): void {
    const opts: Array<[number, Uint8Array]> = [[DhcpOption.MESSAGE_TYPE, new Uint8Array([type])], [DhcpOption.SERVER_ID, u32Bytes(this.ip)]];
    if (type !== DHCPNAK) {
      const bcast = (this.ip & this.netmask) | (~this.netmask >>> 0);
      if (type !== DHCPACK || yiaddr !== 0) {
        const lease = this.opts.leaseSeconds;
        opts.push(
          [DhcpOption.LEASE_TIME, u32Bytes(lease)],
          [DhcpOption.RENEWAL_TIME, u32Bytes(Math.floor(lease / 2))],
          [DhcpOption.REBINDING_TIME, u32Bytes(Math.floor((lease * 7) / 8))],
        );
      }
      opts.push(
        [DhcpOption.SUBNET_MASK, u32Bytes(this.netmask)],
        [DhcpOption.ROUTER, u32Bytes(this.ip)],
        [DhcpOption.DNS, u32Bytes(this.dnsIp)],
        [DhcpOption.BROADCAST, u32Bytes(bcast >>> 0)],
      );
      if (this.opts.domain) opts.push([DhcpOption.DOMAIN_NAME, new TextEncoder().encode(this.opts.domain)]);
    }
    const reply = buildDhcp({
      op: 2,
      xid: m.xid,
      chaddr: m.chaddr,
      flags: m.flags,
      ciaddr: type === DHCPACK && yiaddr === 0 ? m.ciaddr : 0,
      yiaddr,
      siaddr: this.ip,
      options: opts,
    });
    // RFC 2131 4.1: unicast to ciaddr if the client has one; broadcast if it asked for it
    // (or for a NAK); else to yiaddr at chaddr. The frame always goes to chaddr.
    let dstIp: number;
    if (type === DHCPNAK) dstIp = IP_BROADCAST;
    else if (m.ciaddr !== 0) dstIp = m.ciaddr;
    else if (m.flags & 0x8000) dstIp = IP_BROADCAST;
    else dstIp = yiaddr;
    const dstMac = dstIp === IP_BROADCAST && type === DHCPNAK ? BROADCAST_MAC : m.chaddr;
    this.sendUdp(dstMac, this.ip, dstIp, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, reply);
  }

  leaseFor(mac: Uint8Array): string | null {
    const l = this.leases.get(macKey(mac));
    return l ? ipToString(l.ip) : null;
  }

  // ------------------------------------------------------------- DNS

  /** A lab name's address, or null: `gateway`, `host`, configured names, DHCP hostnames. */
  private labName(name: string): number | null | undefined {
    let n = name.toLowerCase().replace(/\.$/, '');
    const suffix = this.opts.domain ? `.${this.opts.domain.toLowerCase()}` : '';
    const inDomain = suffix !== '' && n.endsWith(suffix);
    if (inDomain) n = n.slice(0, -suffix.length);
    if (n === 'gateway' || n === 'host') return this.ip;
    const extra = this.opts.names[n];
    if (extra) return parseIp(extra);
    for (const l of this.leases.values()) if (l.hostname && l.hostname === n) return l.ip;
    // Inside the lab's domain, a name nobody has is known not to exist.
    if (inDomain || (suffix !== '' && n === this.opts.domain.toLowerCase())) return null;
    return undefined; // not a lab name
  }

  private handleDns(dstMac: Uint8Array, ip: Ipv4Packet, srcPort: number, b: Uint8Array): void {
    const q = parseDns(b);
    if (!q) {
      this.count('drop-malformed-dns');
      if (b.length >= 12) this.dnsReply(dstMac, ip, srcPort, b, null, DNS_RCODE_FORMERR, []);
      return;
    }
    if (q.isResponse) return this.count('drop-dns-response');
    if (q.opcode !== 0 || q.questions.length !== 1) return this.dnsReply(dstMac, ip, srcPort, b, q, DNS_RCODE_NOTIMP, []);
    const question = q.questions[0];
    this.count('dns-query');
    const answer = (addrs: number[]): DnsRecord[] =>
      addrs.map((a) => ({ name: question.name, type: DNS_TYPE_A, class: DNS_CLASS_IN, ttl: 60, data: u32Bytes(a) }));
    const lab = this.labName(question.name);
    if (lab !== undefined) {
      if (lab === null) return this.dnsReply(dstMac, ip, srcPort, b, q, DNS_RCODE_NXDOMAIN, [], true);
      const records = question.type === DNS_TYPE_A && question.class === DNS_CLASS_IN ? answer([lab]) : [];
      return this.dnsReply(dstMac, ip, srcPort, b, q, DNS_RCODE_NOERROR, records, true);
    }
    if (this.opts.nat !== 'all') {
      this.count('dns-nxdomain-policy');
      return this.dnsReply(dstMac, ip, srcPort, b, q, DNS_RCODE_NXDOMAIN, []);
    }
    if (question.type !== DNS_TYPE_A) return this.dnsReply(dstMac, ip, srcPort, b, q, DNS_RCODE_NOERROR, []);
    if (this.pendingLookups >= this.opts.maxPendingLookups) {
      this.count('dns-too-many-pending');
      return this.dnsReply(dstMac, ip, srcPort, b, q, DNS_RCODE_SERVFAIL, []);
    }
    this.pendingLookups++;
    const mac = dstMac.slice(0, 6);
    const query = b.slice();
    this.lookup(question.name).then(
      (addrs) => {
        this.pendingLookups--;
        this.dnsReply(mac, ip, srcPort, query, q, addrs.length ? DNS_RCODE_NOERROR : DNS_RCODE_NXDOMAIN, answer(addrs.slice(0, 16)));
      },
      (e: NodeJS.ErrnoException) => {
        this.pendingLookups--;
        const nx = e.code === 'ENOTFOUND' || e.code === 'ENODATA';
        this.dnsReply(mac, ip, srcPort, query, q, nx ? DNS_RCODE_NXDOMAIN : DNS_RCODE_SERVFAIL, []);
      },
    );
  }

  private dnsReply(
    dstMac: Uint8Array,
    ip: Ipv4Packet,
    dstPort: number,
    raw: Uint8Array,
    q: DnsMessage | null,
    rcode: number,
    answers: DnsRecord[],
    authoritative = false,
  ): void {
    const id = (raw[0] << 8) | raw[1];
    const rd = q ? q.flags & 0x0100 : 0;
    const aa = authoritative ? 0x0400 : 0; // the lab's own names
    const flags = 0x8000 | ((q?.opcode ?? 0) << 11) | aa | rd | 0x0080 | rcode;
    let msg = buildDns({ id, flags, questions: q ? q.questions : [], answers });
    if (msg.length > DNS_UDP_MAX) {
      // RFC 1035 4.2.1: at most 512 bytes over UDP, else TC. Echoing every question of a
      // query whose names point at one long name made frames over the MTU, and an amplifier
      // (each 6-byte compressed question came back as up to 259 bytes).
      const one = q && q.questions.length === 1 ? q.questions : [];
      msg = buildDns({ id, flags: flags | DNS_FLAG_TC, questions: one });
      this.count('dns-truncated');
    }
    this.count(`dns-rcode-${rcode}`);
    this.sendUdp(dstMac, ip.dst, ip.src, 53, dstPort, msg);
  }

  // ------------------------------------------------------------- UDP NAT

  private udpOut(guestMac: Uint8Array, ip: Ipv4Packet, srcPort: number, dstPort: number, payload: Uint8Array): void {
    const target = this.natTarget(ip.dst, dstPort);
    if (!target) {
      this.count('udp-nat-denied');
      // ICMP destination unreachable, "communication administratively prohibited".
      const orig = ip.payload.subarray(0, 8);
      const quoted = new Uint8Array(ip.headerLength + orig.length);
      quoted.set(this.rawHeader(ip), 0);
      quoted.set(orig, ip.headerLength);
      this.sendIp(guestMac, this.ip, ip.src, IPPROTO_ICMP, buildIcmp({ type: ICMP_DEST_UNREACHABLE, code: 13, restOfHeader: 0, data: quoted }));
      return;
    }
    const key = `${ip.src}:${srcPort}`;
    let flow = this.udpFlows.get(key);
    if (!flow) {
      if (this.udpFlows.size >= this.opts.maxUdpFlows) return this.count('udp-too-many-flows');
      flow = this.openFlow(key, guestMac, ip.src, srcPort);
    }
    flow.timer.refresh();
    this.count('udp-out');
    flow.socket.send(payload, target.port, target.host, (err) => {
      if (err) this.count('udp-send-error');
    });
  }

  /** The original IPv4 header bytes (for ICMP errors that quote it). */
  private rawHeader(ip: Ipv4Packet): Uint8Array {
    const payloadStart = ip.payload.byteOffset;
    return new Uint8Array(ip.payload.buffer, payloadStart - ip.headerLength, ip.headerLength);
  }

  private openFlow(key: string, guestMac: Uint8Array, guestIp: number, guestPort: number): UdpFlow {
    const socket = dgram.createSocket('udp4');
    const flow: UdpFlow = {
      socket,
      guestMac: guestMac.slice(0, 6),
      guestIp,
      guestPort,
      timer: setTimeout(() => this.closeFlow(key), this.opts.udpIdleMs),
    };
    flow.timer.unref?.();
    socket.on('error', () => {
      this.count('udp-socket-error');
      this.closeFlow(key);
    });
    socket.on('message', (msg, rinfo) => {
      let from: number;
      if (rinfo.address === this.opts.hostAddress) from = this.ip;
      else if (this.opts.nat === 'all' && rinfo.family === 'IPv4') from = parseIp(rinfo.address);
      else return this.count('udp-in-unexpected');
      if (msg.length > 1472) return this.count('udp-in-too-big'); // would need IP fragments
      flow.timer.refresh();
      this.count('udp-in');
      this.sendUdp(flow.guestMac, from, flow.guestIp, rinfo.port, flow.guestPort, new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    // 'host' needs only loopback; 'all' sends anywhere.
    if (this.opts.nat === 'host') socket.bind(0, this.opts.hostAddress);
    this.udpFlows.set(key, flow);
    return flow;
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
      for (const [k, f] of [...this.udpFlows]) {
        if (!macEquals(f.guestMac, gone)) continue;
        this.closeFlow(k);
        this.count('udp-closed-guest-gone');
      }
    }, this.opts.leftGraceMs);
    t.unref?.();
    this.leftTimers.set(key, t);
  }

  private closeFlow(key: string): void {
    const f = this.udpFlows.get(key);
    if (!f) return;
    this.udpFlows.delete(key);
    clearTimeout(f.timer);
    try {
      f.socket.close();
    } catch {
      /* already closed */
    }
  }

  // -------------------------------------------------------------

  stats(): GatewayStats {
    return {
      ip: ipToString(this.ip),
      mac: macToString(this.mac),
      nat: this.opts.nat,
      counts: { ...this.counts },
      leases: [...this.leases.entries()].map(([k, l]) => ({
        ip: ipToString(l.ip),
        mac: macToString(new Uint8Array([k / 2 ** 40, k / 2 ** 32, k >>> 24, k >>> 16, k >>> 8, k].map((x) => Math.floor(x) & 0xff))),
        ...(l.hostname ? { hostname: l.hostname } : {}),
      })),
      udpFlows: this.udpFlows.size,
      tcp: this.tcp.stats(),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const key of [...this.udpFlows.keys()]) this.closeFlow(key);
    for (const t of this.leftTimers.values()) clearTimeout(t);
    this.leftTimers.clear();
    this.tcp.close();
    if (this.room.guard) this.room.guard = null;
    this.port.detach();
  }
}

function sanitizeHostname(b: Uint8Array): string {
  let s = '';
  for (const c of b.subarray(0, 63)) {
    const ch = String.fromCharCode(c).toLowerCase();
    if (/[a-z0-9-]/.test(ch)) s += ch;
  }
  return s;
}
