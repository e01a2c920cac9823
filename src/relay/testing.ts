/** Test helpers: a hand-driven guest on a switch port that builds and collects frames. */
import {
  BROADCAST_MAC,
  buildDhcp,
  buildDns,
  buildEthernet,
  buildIpv4,
  buildTcp,
  buildUdp,
  type DecodedFrame,
  decodeFrame,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DHCPDISCOVER,
  DhcpOption,
  DNS_TYPE_A,
  DHCPREQUEST,
  ETH_MAX_FRAME,
  ETHERTYPE_IPV4,
  IP_BROADCAST,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type Ipv4Build,
  parseIp,
  parseMac,
  type TcpBuild,
  u32Bytes,
} from '../wire/index.ts';
import { DEFAULT_GATEWAY_OPTIONS, Gateway, type GatewayOptions } from './gateway.ts';
import { type SwitchPort, SwitchRoom } from './switch.ts';

/** The gateway's default addresses (a room's gateway unless configured otherwise). */
export const GW_MAC = parseMac(DEFAULT_GATEWAY_OPTIONS.mac);
export const GW_IP = parseIp(DEFAULT_GATEWAY_OPTIONS.ip);

/** An IPv4 packet in an Ethernet frame. */
export function ipv4Frame(srcMac: Uint8Array, dstMac: Uint8Array, ip: Ipv4Build): Uint8Array {
  return buildEthernet({ dst: dstMac, src: srcMac, etherType: ETHERTYPE_IPV4, payload: buildIpv4(ip) });
}

/** A DHCP message from a client without an address: 0.0.0.0:68 → 255.255.255.255:67, Ethernet broadcast. */
export function dhcpClientFrame(srcMac: Uint8Array, msg: Uint8Array): Uint8Array {
  const udp = buildUdp({ src: 0, dst: IP_BROADCAST, srcPort: DHCP_CLIENT_PORT, dstPort: DHCP_SERVER_PORT, payload: msg });
  return ipv4Frame(srcMac, BROADCAST_MAC, { src: 0, dst: IP_BROADCAST, protocol: IPPROTO_UDP, payload: udp });
}

/** A room with a gateway and one guest (52:54:00:12:34:56); `cleanups` gets the gateway's close. */
export function gatewayRoom(cleanups: Array<() => void>, opts: Partial<GatewayOptions> = {}): { room: SwitchRoom; gw: Gateway; guest: FakeGuest } {
  const room = new SwitchRoom('lab', { maxFrameBytes: ETH_MAX_FRAME });
  const gw = new Gateway(room, opts);
  cleanups.push(() => gw.close());
  const guest = new FakeGuest(room, '52:54:00:12:34:56');
  return { room, gw, guest };
}

/** A recursive query for one name (id 0x4242 unless given). */
export const dnsQuery = (name: string, type = DNS_TYPE_A, id = 0x4242): Uint8Array => buildDns({ id, flags: 0x0100, questions: [{ name, type, class: 1 }] });

export class FakeGuest {
  readonly frames: Uint8Array[] = [];
  readonly port: SwitchPort;
  readonly mac: Uint8Array;
  ip: number;
  /** Return false to "lose" a frame toward this guest. */
  filter: (d: DecodedFrame) => boolean = () => true;
  private waiters: Array<{ pred: (d: DecodedFrame) => boolean; resolve: (d: DecodedFrame) => void }> = [];

  constructor(room: SwitchRoom, mac: string, ip = '0.0.0.0') {
    this.mac = parseMac(mac);
    this.ip = parseIp(ip);
    this.port = room.attach({ deliver: (f) => this.receive(f) }, { label: `guest ${mac}`, lockMac: true });
  }

  /** Frames received and not yet consumed by waitFor/take. */
  readonly inbox: DecodedFrame[] = [];

  private receive(f: Uint8Array): boolean {
    const d = decodeFrame(f);
    if (d && !this.filter(d)) return true;
    this.frames.push(f.slice());
    if (!d) return true;
    const copy = decodeFrame(f.slice())!;
    const w = this.waiters.find((x) => x.pred(copy));
    if (w) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(copy);
    } else this.inbox.push(copy);
    return true;
  }

  /** Removes and returns what arrived and was not consumed. */
  take(): DecodedFrame[] {
    return this.inbox.splice(0, this.inbox.length);
  }

  /** Resolves with (and consumes) the first frame, already received or future, matching `pred`. */
  waitFor(pred: (d: DecodedFrame) => boolean, timeoutMs = 3000): Promise<DecodedFrame> {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (d: DecodedFrame) => {
          clearTimeout(t);
          resolve(d);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting; inbox: ${this.inbox.map((x) => x.summary).join(' | ')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  send(frame: Uint8Array): void {
    this.port.input(frame);
  }

  ipFrame(dst: number, protocol: number, payload: Uint8Array, dstMac = GW_MAC): Uint8Array {
    return ipv4Frame(this.mac, dstMac, { src: this.ip, dst, protocol, payload });
  }

  udp(dst: number, srcPort: number, dstPort: number, payload: Uint8Array, dstMac = GW_MAC): void {
    this.send(this.ipFrame(dst, IPPROTO_UDP, buildUdp({ src: this.ip, dst, srcPort, dstPort, payload }), dstMac));
  }

  tcp(p: Omit<TcpBuild, 'src' | 'dst'> & { dst?: number }): void {
    const dst = p.dst ?? GW_IP;
    this.send(this.ipFrame(dst, IPPROTO_TCP, buildTcp({ ...p, src: this.ip, dst })));
  }

  dhcp(type: number, xid: number, extra: Array<[number, Uint8Array]> = [], flags = 0): void {
    const msg = buildDhcp({
      op: 1,
      xid,
      chaddr: this.mac,
      flags,
      options: [[DhcpOption.MESSAGE_TYPE, new Uint8Array([type])], ...extra, [DhcpOption.PARAM_REQUEST_LIST, new Uint8Array([1, 3, 6, 15, 51])]],
    });
    this.send(dhcpClientFrame(this.mac, msg));
  }

  /** DISCOVER → OFFER → REQUEST → ACK; sets `ip`. */
  async lease(xid = 0x1234): Promise<{ offer: DecodedFrame; ack: DecodedFrame }> {
    this.dhcp(DHCPDISCOVER, xid);
    const offer = await this.waitFor((d) => d.dhcp?.xid === xid && d.dhcp.messageType === 2);
    const ip = offer.dhcp!.yiaddr;
    this.dhcp(DHCPREQUEST, xid, [
      [DhcpOption.REQUESTED_IP, u32Bytes(ip)],
      [DhcpOption.SERVER_ID, u32Bytes(GW_IP)],
    ]);
    const ack = await this.waitFor((d) => d.dhcp?.xid === xid && (d.dhcp.messageType === 5 || d.dhcp.messageType === 6));
    if (ack.dhcp!.messageType === 5) this.ip = ack.dhcp!.yiaddr;
    return { offer, ack };
  }
}
