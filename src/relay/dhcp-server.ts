/**
 * The gateway's DHCP server (RFC 2131): a stable lease per MAC from the pool, the lab's
 * router, DNS server and search domain. It also knows who holds which address, which the
 * room's source guard and the DNS server (guests' hostnames) ask.
 *
 * Work per message: one parse (bounded by its length), then at most one walk over the pool
 * (240 addresses in a /24 room, 1520 in a /21; see addressing.ts) or over the leases to
 * reclaim one. A cursor after the last address handed out makes the walk short while the
 * pool fills. Leases are bounded by the pool: a new MAC gets a reclaimed address or none.
 */
import { readU32, u32Bytes } from '../wire/bytes.ts';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DHCPACK,
  DHCPDISCOVER,
  DHCPINFORM,
  DHCPNAK,
  DHCPOFFER,
  DHCPRELEASE,
  DHCPREQUEST,
  DHCP_CLIENT_PORT,
  DHCP_FLAG_BROADCAST,
  DHCP_SERVER_PORT,
  type DhcpMessage,
  DhcpOption,
  buildDhcp,
  parseDhcp,
} from '../wire/dhcp.ts';
import { BROADCAST_MAC, macEquals, macFromKey, macKey, macToString } from '../wire/ethernet.ts';
import { IP_BROADCAST, ipToString } from '../wire/ipv4.ts';
import type { GatewayIo } from './gateway-io.ts';

export interface Lease {
  ip: string;
  mac: string;
  hostname?: string;
}

export interface DhcpServerConfig {
  netmask: number;
  /** The DNS server handed out. */
  dnsIp: number;
  /** First and last address handed out. */
  start: number;
  end: number;
  leaseSeconds: number;
  /** Search domain handed out ('' for none). */
  domain: string;
}

export class DhcpServer {
  /** MAC key → lease; the map's order is least recently used first (reclaim). */
  private readonly leases = new Map<number, { ip: number; hostname?: string }>();
  private readonly leaseByIp = new Map<number, number>();
  /** Where the next walk for a free address starts. */
  private cursor = 0;

  constructor(
    private readonly io: GatewayIo,
    private readonly cfg: DhcpServerConfig,
    /** Addresses the gateway answers for: never leased. */
    private readonly isOurs: (ip: number) => boolean,
    /** Whether a MAC (as macKey) is on the switch now: its lease is not reclaimed. */
    private readonly onSwitch: (macKey: number) => boolean,
  ) {}

  /** A DHCP message from `ethSrc` (UDP payload to port 67). */
  handle(ethSrc: Uint8Array, b: Uint8Array): void {
    const io = this.io;
    const m = parseDhcp(b);
    if (!m || m.op !== BOOTREQUEST || m.htype !== 1 || m.hlen !== 6) return io.count('drop-malformed-dhcp');
    // The switch has already checked the frame's source MAC against the port's; a chaddr
    // that differs would let one client take another's lease.
    if (!macEquals(m.chaddr, ethSrc)) return io.count('drop-dhcp-chaddr');
    const key = macKey(m.chaddr);
    const serverId = m.options.get(DhcpOption.SERVER_ID);
    const hostname = m.options.get(DhcpOption.HOSTNAME);
    switch (m.messageType) {
      case DHCPDISCOVER: {
        const ip = this.allocate(key);
        if (ip === null) return io.count('dhcp-pool-exhausted');
        io.count('dhcp-offer');
        return this.reply(m, DHCPOFFER, ip);
      }
      case DHCPREQUEST: {
        if (serverId && serverId.length === 4 && readU32(serverId) !== io.ip) return; // chose another server
        const req = m.options.get(DhcpOption.REQUESTED_IP);
        const wanted = req && req.length === 4 ? readU32(req) : m.ciaddr;
        const ip = this.allocate(key);
        if (ip === null || (wanted !== 0 && wanted !== ip)) {
          io.count('dhcp-nak');
          return this.reply(m, DHCPNAK, 0);
        }
        if (hostname && hostname.length > 0) {
          const lease = this.leases.get(key);
          if (lease) lease.hostname = sanitizeHostname(hostname);
        }
        io.count('dhcp-ack');
        return this.reply(m, DHCPACK, ip);
      }
      case DHCPINFORM:
        io.count('dhcp-inform');
        return this.reply(m, DHCPACK, 0);
      case DHCPRELEASE:
        // Leases are stable per MAC for the room's lifetime; a release changes nothing.
        io.count('dhcp-release');
        return;
      default:
        io.count('drop-dhcp-type');
    }
  }

  /** The address leased to `mac`, if any. */
  leaseFor(mac: Uint8Array): string | null {
    const l = this.leases.get(macKey(mac));
    return l ? ipToString(l.ip) : null;
  }

  /** The MAC (as macKey) holding a lease on `ip`, if any. */
  ownerOf(ip: number): number | undefined {
    return this.leaseByIp.get(ip);
  }

  /** The address of the guest that said it is `hostname` (sanitized, lower case), if any. */
  addressOfHost(hostname: string): number | undefined {
    for (const l of this.leases.values()) if (l.hostname && l.hostname === hostname) return l.ip;
    return undefined;
  }

  list(): Lease[] {
    return [...this.leases.entries()].map(([k, l]) => ({
      ip: ipToString(l.ip),
      mac: macToString(macFromKey(k)),
      ...(l.hostname ? { hostname: l.hostname } : {}),
    }));
  }

  private allocate(mac: number): number | null {
    const have = this.leases.get(mac);
    if (have) {
      // Re-insert: the map's order is least recently used first, for reclaim() below.
      this.leases.delete(mac);
      this.leases.set(mac, have);
      return have.ip;
    }
    const { start, end } = this.cfg;
    const size = end - start + 1;
    for (let i = 0; i < size; i++) {
      const ip = start + ((this.cursor + i) % size);
      if (this.isOurs(ip) || this.leaseByIp.has(ip)) continue;
      this.cursor = (ip - start + 1) % size;
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
      if (this.onSwitch(old)) continue;
      this.leases.delete(old);
      this.io.count('dhcp-lease-reclaimed');
      this.leases.set(mac, { ip: lease.ip });
      this.leaseByIp.set(lease.ip, mac);
      return lease.ip;
    }
    return null;
  }

  private reply(m: DhcpMessage, type: number, yiaddr: number): void {
    const { io, cfg } = this;
    const opts: Array<[number, Uint8Array]> = [[DhcpOption.MESSAGE_TYPE, new Uint8Array([type])], [DhcpOption.SERVER_ID, u32Bytes(io.ip)]];
    if (type !== DHCPNAK) {
      const bcast = (io.ip & cfg.netmask) | (~cfg.netmask >>> 0);
      if (type !== DHCPACK || yiaddr !== 0) {
        const lease = cfg.leaseSeconds;
        opts.push(
          [DhcpOption.LEASE_TIME, u32Bytes(lease)],
          [DhcpOption.RENEWAL_TIME, u32Bytes(Math.floor(lease / 2))],
          [DhcpOption.REBINDING_TIME, u32Bytes(Math.floor((lease * 7) / 8))],
        );
      }
      opts.push(
        [DhcpOption.SUBNET_MASK, u32Bytes(cfg.netmask)],
        [DhcpOption.ROUTER, u32Bytes(io.ip)],
        [DhcpOption.DNS, u32Bytes(cfg.dnsIp)],
        [DhcpOption.BROADCAST, u32Bytes(bcast >>> 0)],
      );
      if (cfg.domain) opts.push([DhcpOption.DOMAIN_NAME, new TextEncoder().encode(cfg.domain)]);
    }
    const reply = buildDhcp({
      op: BOOTREPLY,
      xid: m.xid,
      chaddr: m.chaddr,
      flags: m.flags,
      ciaddr: type === DHCPACK && yiaddr === 0 ? m.ciaddr : 0,
      yiaddr,
      siaddr: io.ip,
      options: opts,
    });
    // RFC 2131 4.1: unicast to ciaddr if the client has one; broadcast if it asked for it
    // (or for a NAK); else to yiaddr at chaddr. The frame always goes to chaddr.
    let dstIp: number;
    if (type === DHCPNAK) dstIp = IP_BROADCAST;
    else if (m.ciaddr !== 0) dstIp = m.ciaddr;
    else if (m.flags & DHCP_FLAG_BROADCAST) dstIp = IP_BROADCAST;
    else dstIp = yiaddr;
    const dstMac = dstIp === IP_BROADCAST && type === DHCPNAK ? BROADCAST_MAC : m.chaddr;
    io.sendUdp(dstMac, io.ip, dstIp, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, reply);
  }
}

/** A client's hostname option as a DNS label: at most 63 of [a-z0-9-]. */
function sanitizeHostname(b: Uint8Array): string {
  let s = '';
  for (const c of b.subarray(0, 63)) {
    const ch = String.fromCharCode(c).toLowerCase();
    if (/[a-z0-9-]/.test(ch)) s += ch;
  }
  return s;
}
