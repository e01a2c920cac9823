/** Test helpers: a hand-driven guest on a switch port that builds and collects frames. */
import {
  DHCPDISCOVER,
  DHCPREQUEST,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DhcpOption,
  ETHERTYPE_IPV4,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IP_BROADCAST,
  BROADCAST_MAC,
  type DecodedFrame,
  buildDhcp,
  buildEthernet,
  buildIpv4,
  buildTcp,
  buildUdp,
  decodeFrame,
  parseIp,
  parseMac,
  type TcpBuild,
  u32Bytes,
} from '../net/packets.ts';
import type { SwitchPort, SwitchRoom } from './switch.ts';

export const GW_MAC = parseMac('52:55:0a:00:02:02');
export const GW_IP = parseIp('10.0.2.2');

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
    return buildEthernet({ dst: dstMac, src: this.mac, etherType: ETHERTYPE_IPV4, payload: buildIpv4({ src: this.ip, dst, protocol, payload }) });
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
    this.send(
      buildEthernet({
        dst: BROADCAST_MAC,
        src: this.mac,
        etherType: ETHERTYPE_IPV4,
        payload: buildIpv4({ src: 0, dst: IP_BROADCAST, protocol: IPPROTO_UDP, payload: buildUdp({ src: 0, dst: IP_BROADCAST, srcPort: DHCP_CLIENT_PORT, dstPort: DHCP_SERVER_PORT, payload: msg }) }),
      }),
    );
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
