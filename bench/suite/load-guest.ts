/**
 * A synthetic guest for the relay load generator: one WebSocket to the relay speaking real
 * Ethernet frames (websockproxy format: one binary message per frame). It leases an address
 * by DHCP, resolves by ARP and answers ARP for its own address, answers echo requests, pings
 * (booking each request in a PingLedger), and can push a TCP stream through the gateway's NAT
 * with a small sliding window and retransmission.
 */
import { WebSocket } from 'ws';
import {
  ARP_REPLY,
  ARP_REQUEST,
  BROADCAST_MAC,
  buildArp,
  buildDhcp,
  buildEthernet,
  buildIcmp,
  buildIpv4,
  buildTcp,
  buildUdp,
  type DecodedFrame,
  decodeFrame,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DHCPACK,
  DHCPDISCOVER,
  DHCPOFFER,
  DHCPREQUEST,
  DhcpOption,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IP_BROADCAST,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  macEquals,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_SYN,
  readU32,
  u32Bytes,
} from '../../src/wire/index.ts';
import { FrameWaiters } from './frame-waiters.ts';
import type { PingLedger } from './ping-ledger.ts';
import { openRelaySocket } from './relay-socket.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class LoadGuest {
  ip = 0;
  gatewayIp = 0;
  gatewayMac: Uint8Array | null = null;
  readonly arpCache = new Map<number, Uint8Array>();
  /** Frames received, and unicast frames addressed to another MAC (must stay 0). */
  received = 0;
  foreignUnicast = 0;
  private seq = 0;
  private readonly waiters = new FrameWaiters();
  /** Where echo replies are booked, by ICMP id. */
  readonly ledgers = new Map<number, PingLedger>();
  private tcpHandler: ((d: DecodedFrame) => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(
    private readonly ws: WebSocket,
    readonly mac: Uint8Array,
    /** ICMP echo ids: `id` toward the gateway, `id + 1` toward peers (unique per guest). */
    readonly id: number,
  ) {
    this.closed = new Promise((r) => ws.once('close', () => r()));
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) this.onFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  static open(url: string, mac: Uint8Array, id: number): Promise<LoadGuest> {
    return openRelaySocket(url, (ws) => new LoadGuest(ws, mac, id));
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: Uint8Array): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  private sendIp(dstMac: Uint8Array, dst: number, protocol: number, payload: Uint8Array, src = this.ip): void {
    this.send(buildEthernet({ dst: dstMac, src: this.mac, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src, dst, protocol, payload }) }));
  }

  private onFrame(f: Uint8Array): void {
    this.received++;
    // Broadcast in a room of N reaches N guests: only an ARP request for our own address is
    // worth a decode (a room of 500 leasing and ARPing at once is ~10⁶ deliveries).
    if (f.length >= 42 && f[0] & 1 && !(f[12] === 0x08 && f[13] === 0x06 && this.ip !== 0 && readU32(f, 38) === this.ip)) return;
    const d = decodeFrame(f);
    if (!d) return;
    if (!(d.eth.dst[0] & 1) && !macEquals(d.eth.dst, this.mac)) this.foreignUnicast++;
    if (d.arp) {
      if (d.arp.op === ARP_REQUEST && this.ip !== 0 && d.arp.targetIp === this.ip) {
        this.send(buildEthernet({ dst: d.arp.senderMac, src: this.mac, etherType: ETHERTYPE_ARP, payload: buildArp({ op: ARP_REPLY, senderMac: this.mac, senderIp: this.ip, targetMac: d.arp.senderMac, targetIp: d.arp.senderIp }) }));
      }
      if (d.arp.op === ARP_REPLY) this.arpCache.set(d.arp.senderIp, d.arp.senderMac.slice());
    } else if (d.icmp && d.ipv4 && d.ipv4.dst === this.ip) {
      if (d.icmp.type === ICMP_ECHO_REQUEST) {
        const reply = buildIcmp({ type: ICMP_ECHO_REPLY, restOfHeader: d.icmp.restOfHeader, data: d.icmp.data });
        this.sendIp(d.eth.src.slice(), d.ipv4.src, IPPROTO_ICMP, reply);
      } else if (d.icmp.type === ICMP_ECHO_REPLY) {
        this.ledgers.get(d.icmp.id)?.reply(d.icmp.id * 65536 + d.icmp.seq, performance.now());
      }
    } else if (d.tcp) this.tcpHandler?.(d);
    this.waiters.settle(d);
  }

  /** The next frame matching `pred` (registered before the frame that provokes it is sent), or null after `ms`. */
  wait(pred: (d: DecodedFrame) => boolean, ms: number): Promise<DecodedFrame | null> {
    return this.waiters.next(pred, ms);
  }

  private dhcp(type: number, xid: number, extra: Array<[number, Uint8Array]> = []): void {
    const msg = buildDhcp({ op: 1, xid, chaddr: this.mac, flags: 0, options: [[DhcpOption.MESSAGE_TYPE, new Uint8Array([type])], ...extra] });
    const udp = buildUdp({ src: 0, dst: IP_BROADCAST, srcPort: DHCP_CLIENT_PORT, dstPort: DHCP_SERVER_PORT, payload: msg });
    this.sendIp(BROADCAST_MAC, IP_BROADCAST, IPPROTO_UDP, udp, 0);
  }

  /** DISCOVER → OFFER → REQUEST → ACK (up to `tries` rounds); the address, or 0. */
  async lease(xid: number, tries = 3, ms = 3000): Promise<number> {
    for (let t = 0; t < tries && this.open; t++) {
      const offer = this.wait((d) => d.dhcp?.xid === xid && d.dhcp.messageType === DHCPOFFER, ms);
      this.dhcp(DHCPDISCOVER, xid);
      const o = await offer;
      if (!o) continue;
      const server = o.dhcp!.options.get(DhcpOption.SERVER_ID);
      const ack = this.wait((d) => d.dhcp?.xid === xid && d.dhcp.messageType === DHCPACK, ms);
      this.dhcp(DHCPREQUEST, xid, [[DhcpOption.REQUESTED_IP, u32Bytes(o.dhcp!.yiaddr)], ...(server ? ([[DhcpOption.SERVER_ID, server]] as Array<[number, Uint8Array]>) : [])]);
      const a = await ack;
      if (!a) continue;
      this.ip = a.dhcp!.yiaddr;
      const router = a.dhcp!.options.get(DhcpOption.ROUTER);
      if (router && router.length === 4) this.gatewayIp = ((router[0] << 24) | (router[1] << 16) | (router[2] << 8) | router[3]) >>> 0;
      return this.ip;
    }
    return 0;
  }

  /** The MAC of `ip` by ARP (cached), or null. */
  async resolve(ip: number, tries = 3, ms = 2000): Promise<Uint8Array | null> {
    for (let t = 0; t < tries && this.open; t++) {
      const have = this.arpCache.get(ip);
      if (have) return have;
      const r = this.wait((d) => d.arp?.op === ARP_REPLY && d.arp.senderIp === ip, ms);
      this.send(buildEthernet({ dst: BROADCAST_MAC, src: this.mac, etherType: ETHERTYPE_ARP, payload: buildArp({ op: ARP_REQUEST, senderMac: this.mac, senderIp: this.ip, targetMac: new Uint8Array(6), targetIp: ip }) }));
      await r;
    }
    return this.arpCache.get(ip) ?? null;
  }

  /** One echo request to (mac, ip) with `icmpId`, booked in `ledger`. */
  ping(dstMac: Uint8Array, dstIp: number, icmpId: number, ledger: PingLedger, payload = 56): void {
    this.ledgers.set(icmpId, ledger);
    this.seq = (this.seq + 1) & 0xffff;
    ledger.request(icmpId * 65536 + this.seq, performance.now());
    this.sendIp(dstMac, dstIp, IPPROTO_ICMP, buildIcmp({ type: ICMP_ECHO_REQUEST, id: icmpId, seq: this.seq, data: new Uint8Array(payload) }));
  }

  /**
   * Sends `bytes` to gateway:`port` (NATed to the relay's host) over TCP: handshake, a window
   * of `window` segments of `mss` bytes, go-back-N after 500 ms without progress, FIN.
   * `pace` (bytes/s, 0 = as fast as the window allows) spreads the stream over time, so it
   * is background load rather than a burst. Resolves with the bytes the gateway
   * acknowledged (all of them, or the run was cut).
   */
  async tcpStream(port: number, bytes: number, deadlineMs: number, pace = 0, mss = 1400, window = 16): Promise<number> {
    const gwMac = this.gatewayMac!;
    const dst = this.gatewayIp;
    const srcPort = 40000 + (this.id % 20000);
    const iss = 1000;
    let acked = 0;
    let remoteNext = 0;
    let progress = performance.now();
    let done = false;
    let wake: (() => void) | null = null;
    const seg = (seq: number, flags: number, payload?: Uint8Array) =>
      this.sendIp(gwMac, dst, IPPROTO_TCP, buildTcp({ src: this.ip, dst, srcPort, dstPort: port, seq, ack: remoteNext, flags, window: 65535, payload }));
    this.tcpHandler = (d) => {
      const t = d.tcp!;
      if (t.dstPort !== srcPort || t.srcPort !== port) return;
      if (t.flags & TCP_SYN) remoteNext = (t.seq + 1) >>> 0;
      if (t.flags & TCP_FIN) {
        remoteNext = (t.seq + t.payload.length + 1) >>> 0;
        done = true;
      }
      if (t.flags & TCP_ACK) {
        const a = (t.ack - iss - 1) >>> 0;
        if (a > acked && a <= bytes + 1) {
          acked = Math.min(a, bytes);
          progress = performance.now();
        }
      }
      wake?.();
    };
    const until = performance.now() + deadlineMs;
    const nap = () => new Promise<void>((r) => ((wake = r), setTimeout(r, 50)));
    // Handshake.
    while (remoteNext === 0 && performance.now() < until) {
      seg(iss, TCP_SYN);
      for (let i = 0; i < 10 && remoteNext === 0; i++) await nap();
    }
    if (remoteNext === 0) return 0;
    seg(iss + 1, TCP_ACK);
    const data = new Uint8Array(mss);
    let next = 0;
    const t0 = performance.now();
    const allowed = () => (pace > 0 ? Math.min(bytes, ((performance.now() - t0) / 1000) * pace + mss) : bytes);
    while (acked < bytes && performance.now() < until && this.open) {
      if (performance.now() - progress > 500) {
        next = acked; // go back N
        progress = performance.now();
      }
      while (next < allowed() && next - acked < window * mss) {
        const n = Math.min(mss, bytes - next);
        seg((iss + 1 + next) >>> 0, TCP_ACK | TCP_PSH, data.subarray(0, n));
        next += n;
      }
      await nap();
    }
    seg((iss + 1 + bytes) >>> 0, TCP_FIN | TCP_ACK);
    for (let i = 0; i < 20 && !done; i++) await nap();
    if (done) seg((iss + 2 + bytes) >>> 0, TCP_ACK);
    this.tcpHandler = null;
    return acked;
  }

  async close(): Promise<void> {
    this.ws.close();
    await Promise.race([this.closed, sleep(2000)]);
    this.ws.terminate();
  }
}
