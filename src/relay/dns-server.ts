/**
 * The gateway's DNS server on port 53: lab names (`gateway`, `host`, configured names,
 * guests' DHCP hostnames, in the lab's domain or bare) answered here; other names through
 * the host's resolver only when NAT policy is 'all', else NXDOMAIN.
 *
 * Work per query: one parse (bounded by the message: counts checked against its length,
 * names ≤ 255 bytes, ≤ 32 pointers each), one walk over the leases for a hostname. Replies
 * are at most DNS_UDP_MAX (512) bytes, so always within the MTU; lookups in flight are
 * capped at maxPendingLookups, answers at 16 addresses.
 */
import { u32Bytes } from '../wire/bytes.ts';
import {
  DNS_CLASS_IN,
  DNS_FLAG_AA,
  DNS_FLAG_QR,
  DNS_FLAG_RA,
  DNS_FLAG_RD,
  DNS_FLAG_TC,
  DNS_HEADER_LEN,
  DNS_PORT,
  DNS_RCODE_FORMERR,
  DNS_RCODE_NOERROR,
  DNS_RCODE_NOTIMP,
  DNS_RCODE_NXDOMAIN,
  DNS_RCODE_SERVFAIL,
  DNS_TYPE_A,
  DNS_UDP_MAX,
  type DnsMessage,
  type DnsRecord,
  buildDns,
  parseDns,
} from '../wire/dns.ts';
import { type Ipv4Packet, parseIp } from '../wire/ipv4.ts';
import type { GatewayIo } from './gateway-io.ts';
import type { NatPolicy } from './nat-policy.ts';

export type LookupFn = (name: string) => Promise<number[]>;

/** Most addresses one answer carries from the host's resolver. */
const MAX_ANSWERS = 16;
const ANSWER_TTL = 60;

export interface DnsServerConfig {
  /** The lab's domain ('' for none): names in it that nobody has are NXDOMAIN. */
  domain: string;
  /** Extra lab names (without the domain) → IPv4 strings. */
  names: Record<string, string>;
  nat: NatPolicy;
  maxPendingLookups: number;
  /** Resolver for names outside the lab (nat 'all' only): the uplink's. */
  lookup: LookupFn;
}

export class DnsServer {
  private pendingLookups = 0;
  private readonly lookup: LookupFn;

  constructor(
    private readonly io: GatewayIo,
    private readonly cfg: DnsServerConfig,
    /** The address of a guest by its DHCP hostname (lower case), if one has it. */
    private readonly addressOfHost: (hostname: string) => number | undefined,
  ) {
    this.lookup = cfg.lookup;
  }

  /** A query from (dstMac, ip.src:srcPort) to ip.dst:53; `b` is the UDP payload. */
  handle(dstMac: Uint8Array, ip: Ipv4Packet, srcPort: number, b: Uint8Array): void {
    const io = this.io;
    const q = parseDns(b);
    if (!q) {
      io.count('drop-malformed-dns');
      if (b.length >= DNS_HEADER_LEN) this.reply(dstMac, ip, srcPort, b, null, DNS_RCODE_FORMERR, []);
      return;
    }
    if (q.isResponse) return io.count('drop-dns-response');
    if (q.opcode !== 0 || q.questions.length !== 1) return this.reply(dstMac, ip, srcPort, b, q, DNS_RCODE_NOTIMP, []);
    const question = q.questions[0];
    io.count('dns-query');
    const answer = (addrs: number[]): DnsRecord[] =>
      addrs.map((a) => ({ name: question.name, type: DNS_TYPE_A, class: DNS_CLASS_IN, ttl: ANSWER_TTL, data: u32Bytes(a) }));
    const lab = this.labName(question.name);
    if (lab !== undefined) {
      if (lab === null) return this.reply(dstMac, ip, srcPort, b, q, DNS_RCODE_NXDOMAIN, [], true);
      const records = question.type === DNS_TYPE_A && question.class === DNS_CLASS_IN ? answer([lab]) : [];
      return this.reply(dstMac, ip, srcPort, b, q, DNS_RCODE_NOERROR, records, true);
    }
    if (this.cfg.nat !== 'all') {
      io.count('dns-nxdomain-policy');
      return this.reply(dstMac, ip, srcPort, b, q, DNS_RCODE_NXDOMAIN, []);
    }
    if (question.type !== DNS_TYPE_A) return this.reply(dstMac, ip, srcPort, b, q, DNS_RCODE_NOERROR, []);
    if (this.pendingLookups >= this.cfg.maxPendingLookups) {
      io.count('dns-too-many-pending');
      return this.reply(dstMac, ip, srcPort, b, q, DNS_RCODE_SERVFAIL, []);
    }
    this.pendingLookups++;
    const mac = dstMac.slice(0, 6);
    const query = b.slice();
    this.lookup(question.name).then(
      (addrs) => {
        this.pendingLookups--;
        this.reply(mac, ip, srcPort, query, q, addrs.length ? DNS_RCODE_NOERROR : DNS_RCODE_NXDOMAIN, answer(addrs.slice(0, MAX_ANSWERS)));
      },
      (e: { code?: string }) => {
        this.pendingLookups--;
        const nx = e.code === 'ENOTFOUND' || e.code === 'ENODATA';
        this.reply(mac, ip, srcPort, query, q, nx ? DNS_RCODE_NXDOMAIN : DNS_RCODE_SERVFAIL, []);
      },
    );
  }

  /** A lab name's address, null if it is in the lab's domain but nobody has it, undefined if not a lab name. */
  private labName(name: string): number | null | undefined {
    const { domain, names } = this.cfg;
    let n = name.toLowerCase().replace(/\.$/, '');
    const suffix = domain ? `.${domain.toLowerCase()}` : '';
    const inDomain = suffix !== '' && n.endsWith(suffix);
    if (inDomain) n = n.slice(0, -suffix.length);
    if (n === 'gateway' || n === 'host') return this.io.ip;
    const extra = names[n];
    if (extra) return parseIp(extra);
    const guest = this.addressOfHost(n);
    if (guest !== undefined) return guest;
    // Inside the lab's domain, a name nobody has is known not to exist.
    if (inDomain || (suffix !== '' && n === domain.toLowerCase())) return null;
    return undefined; // not a lab name
  }

  private reply(
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
    const rd = q ? q.flags & DNS_FLAG_RD : 0;
    const aa = authoritative ? DNS_FLAG_AA : 0; // the lab's own names
    const flags = DNS_FLAG_QR | ((q?.opcode ?? 0) << 11) | aa | rd | DNS_FLAG_RA | rcode;
    let msg = buildDns({ id, flags, questions: q ? q.questions : [], answers });
    if (msg.length > DNS_UDP_MAX) {
      // RFC 1035 4.2.1: at most 512 bytes over UDP, else TC. Echoing every question of a
      // query whose names point at one long name made frames over the MTU, and an amplifier
      // (each 6-byte compressed question came back as up to 259 bytes).
      const one = q && q.questions.length === 1 ? q.questions : [];
      msg = buildDns({ id, flags: flags | DNS_FLAG_TC, questions: one });
      this.io.count('dns-truncated');
    }
    this.io.count(`dns-rcode-${rcode}`);
    this.io.sendUdp(dstMac, ip.dst, ip.src, DNS_PORT, dstPort, msg);
  }
}
