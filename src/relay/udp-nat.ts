/**
 * The gateway's UDP NAT: each guest (address, port) gets one Node dgram socket (a "flow")
 * that sends its datagrams to where nat-policy.ts says, and carries replies back as if from
 * the address the guest sent to. Refused datagrams get ICMP "administratively prohibited".
 *
 * Bounded: at most maxUdpFlows sockets, each closed after udpIdleMs without traffic or when
 * its guest leaves; one send per guest datagram; replies that would need IP fragments
 * (over the MTU) are dropped, not fragmented.
 */
import { DEFAULT_MTU, macEquals } from '../wire/ethernet.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_UNREACH_ADMIN_PROHIBITED, buildIcmp } from '../wire/icmp.ts';
import { IPPROTO_ICMP, IPV4_HEADER_LEN, type Ipv4Packet, ipv4HeaderBytes, parseIp } from '../wire/ipv4.ts';
import { UDP_HEADER_LEN } from '../wire/udp.ts';
import type { GatewayIo } from './gateway-io.ts';
import type { NatPolicy } from './nat-policy.ts';
import type { HostUdpSocket, TcpTarget } from './uplink.ts';

/** Largest UDP payload that fits one IPv4 packet at the MTU. */
const MAX_UDP_PAYLOAD = DEFAULT_MTU - IPV4_HEADER_LEN - UDP_HEADER_LEN;
/** An ICMP error quotes the offending header and the first 8 bytes of its payload (RFC 792). */
const ICMP_QUOTED_PAYLOAD = 8;

export interface UdpNatConfig {
  nat: NatPolicy;
  /** Where the gateway's own address is NATed to; replies from it appear from the gateway. */
  hostAddress: string;
  udpIdleMs: number;
  maxUdpFlows: number;
}

interface UdpFlow {
  socket: HostUdpSocket;
  guestMac: Uint8Array;
  guestIp: number;
  guestPort: number;
  timer: ReturnType<typeof setTimeout>;
}

export class UdpNat {
  /** "guestIp:guestPort" → flow. */
  private readonly flows = new Map<string, UdpFlow>();

  constructor(
    private readonly io: GatewayIo,
    private readonly cfg: UdpNatConfig,
    private readonly target: (dst: number, port: number) => TcpTarget | null,
    /** Opens a flow's socket (the uplink's createUdp). */
    private readonly createSocket: () => HostUdpSocket,
  ) {}

  get size(): number {
    return this.flows.size;
  }

  /** A guest's datagram to somewhere other than the gateway's services. */
  out(guestMac: Uint8Array, ip: Ipv4Packet, srcPort: number, dstPort: number, payload: Uint8Array): void {
    const io = this.io;
    const target = this.target(ip.dst, dstPort);
    if (!target) {
      io.count('udp-nat-denied');
      const orig = ip.payload.subarray(0, ICMP_QUOTED_PAYLOAD);
      const quoted = new Uint8Array(ip.headerLength + orig.length);
      quoted.set(ipv4HeaderBytes(ip), 0);
      quoted.set(orig, ip.headerLength);
      const unreachable = buildIcmp({ type: ICMP_DEST_UNREACHABLE, code: ICMP_UNREACH_ADMIN_PROHIBITED, restOfHeader: 0, data: quoted });
      io.sendIp(guestMac, io.ip, ip.src, IPPROTO_ICMP, unreachable);
      return;
    }
    const key = `${ip.src}:${srcPort}`;
    let flow = this.flows.get(key);
    if (!flow) {
      if (this.flows.size >= this.cfg.maxUdpFlows) return io.count('udp-too-many-flows');
      flow = this.open(key, guestMac, ip.src, srcPort);
    }
    flow.timer.refresh();
    io.count('udp-out');
    flow.socket.send(payload, target.port, target.host, (err) => {
      if (err) io.count('udp-send-error');
    });
  }

  /** Closes every flow of the guest at `mac`; returns how many. */
  dropGuest(mac: Uint8Array): number {
    let n = 0;
    for (const [k, f] of [...this.flows]) {
      if (!macEquals(f.guestMac, mac)) continue;
      this.closeFlow(k);
      n++;
    }
    return n;
  }

  close(): void {
    for (const key of [...this.flows.keys()]) this.closeFlow(key);
  }

  private open(key: string, guestMac: Uint8Array, guestIp: number, guestPort: number): UdpFlow {
    const { io, cfg } = this;
    const socket = this.createSocket();
    const flow: UdpFlow = {
      socket,
      guestMac: guestMac.slice(0, 6),
      guestIp,
      guestPort,
      timer: setTimeout(() => this.closeFlow(key), cfg.udpIdleMs),
    };
    flow.timer.unref?.();
    socket.on('error', () => {
      io.count('udp-socket-error');
      this.closeFlow(key);
    });
    socket.on('message', (msg, rinfo) => {
      let from: number;
      if (rinfo.address === cfg.hostAddress) from = io.ip;
      else if (cfg.nat === 'all' && rinfo.family === 'IPv4') from = parseIp(rinfo.address);
      else return io.count('udp-in-unexpected');
      if (msg.length > MAX_UDP_PAYLOAD) return io.count('udp-in-too-big'); // would need IP fragments
      flow.timer.refresh();
      io.count('udp-in');
      io.sendUdp(flow.guestMac, from, flow.guestIp, rinfo.port, flow.guestPort, new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    // 'host' needs only loopback; 'all' sends anywhere.
    if (cfg.nat === 'host') socket.bind(0, cfg.hostAddress);
    this.flows.set(key, flow);
    return flow;
  }

  private closeFlow(key: string): void {
    const f = this.flows.get(key);
    if (!f) return;
    this.flows.delete(key);
    clearTimeout(f.timer);
    try {
      f.socket.close();
    } catch {
      /* already closed */
    }
  }
}
