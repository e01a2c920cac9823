/**
 * The gateway's DHCP server (RFC 2131): a stable lease per MAC from the pool, the lab's
 * router, DNS server and search domain. It also knows who holds which address, which the
 * room's source guard and the DNS server (guests' hostnames) ask.
 *
 * Work per message: one parse (bounded by its length), then one lease-book call: at most one
 * walk over the pool (240 addresses in a /24 room, 1520 in a /21; see addressing.ts) or over
 * the leases to reclaim one (lease-book.ts). In a cluster the book may answer later (it asks
 * the cluster's lease store); the reply goes out then.
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
import { BROADCAST_MAC, macEquals, macKey } from '../wire/ethernet.ts';
import { IP_BROADCAST, ipToString } from '../wire/ipv4.ts';
import type { GatewayIo } from './gateway-io.ts';
import type { Lease, LeaseBook } from './lease-book.ts';

export type { Lease } from './lease-book.ts';

export interface DhcpServerConfig {
  netmask: number;
  /** The DNS server handed out. */
  dnsIp: number;
  leaseSeconds: number;
  /** Search domain handed out ('' for none). */
  domain: string;
}

export class DhcpServer {
  constructor(
    private readonly io: GatewayIo,
    private readonly cfg: DhcpServerConfig,
    /** Who holds which address: this relay's own book, or the cluster's. */
    private readonly book: LeaseBook,
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
      case DHCPDISCOVER:
        return this.withAddress(key, (ip) => {
          if (ip === null) return io.count('dhcp-pool-exhausted');
          io.count('dhcp-offer');
          this.reply(m, DHCPOFFER, ip);
        });
      case DHCPREQUEST: {
        if (serverId && serverId.length === 4 && readU32(serverId) !== io.ip) return; // chose another server
        const req = m.options.get(DhcpOption.REQUESTED_IP);
        const wanted = req && req.length === 4 ? readU32(req) : m.ciaddr;
        return this.withAddress(key, (ip) => {
          if (ip === null || (wanted !== 0 && wanted !== ip)) {
            io.count('dhcp-nak');
            return this.reply(m, DHCPNAK, 0);
          }
          if (hostname && hostname.length > 0) this.book.setHostname(key, sanitizeHostname(hostname));
          io.count('dhcp-ack');
          this.reply(m, DHCPACK, ip);
        });
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
    const ip = this.book.leaseOf(macKey(mac));
    return ip === undefined ? null : ipToString(ip);
  }

  /** The MAC (as macKey) holding a lease on `ip`, if any. */
  ownerOf(ip: number): number | undefined {
    return this.book.ownerOf(ip);
  }

  /** The address of the guest that said it is `hostname` (sanitized, lower case), if any. */
  addressOfHost(hostname: string): number | undefined {
    return this.book.addressOfHost(hostname);
  }

  list(): Lease[] {
    return this.book.list();
  }

  /** Runs `then` with the MAC's address at once, or once a shared book has it. */
  private withAddress(mac: number, then: (ip: number | null) => void): void {
    const got = this.book.allocate(mac);
    if (!(got instanceof Promise)) return then(got);
    got.then(then, () => this.io.count('dhcp-lease-error'));
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
