/**
 * A whole frame decoded as deep as the parsers go, with a tcpdump-like line: what the
 * inspector shows for every frame crossing the NIC, and what tests match replies with.
 * Never throws on any bytes (the parsers return null instead).
 */
import { ARP_REQUEST, type ArpPacket, parseArp } from './arp.ts';
import { DHCP_CLIENT_PORT, DHCP_MESSAGE_NAMES, DHCP_SERVER_PORT, type DhcpMessage, parseDhcp } from './dhcp.ts';
import { DNS_PORT, type DnsMessage, parseDns } from './dns.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, type EthernetFrame, macToString, parseEthernet } from './ethernet.ts';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, type IcmpPacket, parseIcmp } from './icmp.ts';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, type Ipv4Packet, ipToString, parseIpv4 } from './ipv4.ts';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment, parseTcp } from './tcp.ts';
import { type UdpDatagram, parseUdp } from './udp.ts';

/** Every layer of a frame the parsers understood (for the inspector and the relay's logs). */
export interface DecodedFrame {
  eth: EthernetFrame;
  arp?: ArpPacket;
  ipv4?: Ipv4Packet;
  icmp?: IcmpPacket;
  udp?: UdpDatagram;
  tcp?: TcpSegment;
  dhcp?: DhcpMessage;
  dns?: DnsMessage;
  /** One line, tcpdump-like. */
  summary: string;
}

function tcpFlagString(f: number): string {
  let s = '';
  if (f & TCP_SYN) s += 'S';
  if (f & TCP_FIN) s += 'F';
  if (f & TCP_RST) s += 'R';
  if (f & TCP_PSH) s += 'P';
  if (f & TCP_ACK) s += '.';
  return s || 'none';
}

/** Decodes as deep as it can; null only if the frame is shorter than an Ethernet header. */
export function decodeFrame(frame: Uint8Array): DecodedFrame | null {
  const eth = parseEthernet(frame);
  if (!eth) return null;
  const d: DecodedFrame = { eth, summary: '' };
  const macs = `${macToString(eth.src)} > ${macToString(eth.dst)}`;
  if (eth.etherType === ETHERTYPE_ARP) {
    const arp = parseArp(eth.payload);
    if (!arp) return { ...d, summary: `${macs} ARP (malformed)` };
    d.arp = arp;
    d.summary =
      arp.op === ARP_REQUEST
        ? `ARP who-has ${ipToString(arp.targetIp)} tell ${ipToString(arp.senderIp)}`
        : `ARP ${ipToString(arp.senderIp)} is-at ${macToString(arp.senderMac)}`;
    return d;
  }
  if (eth.etherType !== ETHERTYPE_IPV4) {
    d.summary = `${macs} ethertype 0x${eth.etherType.toString(16).padStart(4, '0')} length ${frame.length}`;
    return d;
  }
  const ip = parseIpv4(eth.payload);
  if (!ip) return { ...d, summary: `${macs} IPv4 (malformed)` };
  d.ipv4 = ip;
  const from = ipToString(ip.src);
  const to = ipToString(ip.dst);
  if (ip.fragmentOffset !== 0) {
    d.summary = `IP ${from} > ${to} fragment offset ${ip.fragmentOffset * 8}`;
    return d;
  }
  if (ip.protocol === IPPROTO_ICMP) {
    const icmp = parseIcmp(ip.payload);
    if (icmp) d.icmp = icmp;
    const kind = !icmp
      ? '(malformed)'
      : icmp.type === ICMP_ECHO_REQUEST
        ? `echo request id ${icmp.id} seq ${icmp.seq}`
        : icmp.type === ICMP_ECHO_REPLY
          ? `echo reply id ${icmp.id} seq ${icmp.seq}`
          : `type ${icmp.type} code ${icmp.code}`;
    d.summary = `IP ${from} > ${to}: ICMP ${kind}`;
  } else if (ip.protocol === IPPROTO_UDP) {
    const udp = parseUdp(ip.payload);
    if (!udp) return { ...d, summary: `IP ${from} > ${to}: UDP (malformed)` };
    d.udp = udp;
    d.summary = `IP ${from}.${udp.srcPort} > ${to}.${udp.dstPort}: UDP length ${udp.payload.length}`;
    const ports = [udp.srcPort, udp.dstPort];
    if (ports.includes(DHCP_SERVER_PORT) && ports.includes(DHCP_CLIENT_PORT)) {
      const dhcp = parseDhcp(udp.payload);
      if (dhcp) {
        d.dhcp = dhcp;
        d.summary = `IP ${from} > ${to}: DHCP ${DHCP_MESSAGE_NAMES[dhcp.messageType ?? 0] ?? dhcp.messageType} xid 0x${dhcp.xid.toString(16)}${dhcp.yiaddr ? ` yiaddr ${ipToString(dhcp.yiaddr)}` : ''}`;
      }
    } else if (ports.includes(DNS_PORT)) {
      const dns = parseDns(udp.payload);
      if (dns) {
        d.dns = dns;
        const q = dns.questions[0];
        d.summary = `IP ${from}.${udp.srcPort} > ${to}.${udp.dstPort}: DNS ${dns.isResponse ? `response rcode ${dns.rcode} answers ${dns.answers.length}` : 'query'}${q ? ` ${q.name} type ${q.type}` : ''}`;
      }
    }
  } else if (ip.protocol === IPPROTO_TCP) {
    const tcp = parseTcp(ip.payload);
    if (!tcp) return { ...d, summary: `IP ${from} > ${to}: TCP (malformed)` };
    d.tcp = tcp;
    d.summary = `IP ${from}.${tcp.srcPort} > ${to}.${tcp.dstPort}: Flags [${tcpFlagString(tcp.flags)}] seq ${tcp.seq} ack ${tcp.ack} win ${tcp.window} length ${tcp.payload.length}`;
  } else {
    d.summary = `IP ${from} > ${to}: protocol ${ip.protocol} length ${ip.payload.length}`;
  }
  return d;
}
