import { describe, expect, it } from 'vitest';
import { leasedAddress } from './dhcp-snoop.ts';
import {
  BROADCAST_MAC,
  buildDhcp,
  buildEthernet,
  buildIpv4,
  buildUdp,
  DHCPACK,
  DHCPOFFER,
  DhcpOption,
  ETHERTYPE_IPV4,
  IPPROTO_UDP,
  parseIp,
  parseMac,
} from '../wire/index.ts';

const guest = parseMac('02:00:00:00:00:01');
const gateway = parseMac('52:55:0a:00:02:02');

function dhcpReply(type: number, to: Uint8Array, yiaddr: string, dstPort = 68): Uint8Array {
  const dhcp = buildDhcp({ op: 2, xid: 1, chaddr: to, yiaddr: parseIp(yiaddr), options: [[DhcpOption.MESSAGE_TYPE, Uint8Array.of(type)]] });
  const src = parseIp('10.0.2.2');
  const dst = parseIp('255.255.255.255');
  const udp = buildUdp({ src, dst, srcPort: 67, dstPort, payload: dhcp });
  const ip = buildIpv4({ src, dst, protocol: IPPROTO_UDP, payload: udp });
  return buildEthernet({ dst: BROADCAST_MAC, src: gateway, etherType: ETHERTYPE_IPV4, payload: ip });
}

describe('leasedAddress', () => {
  it('reads yiaddr from a DHCPACK for our MAC', () => {
    expect(leasedAddress(dhcpReply(DHCPACK, guest, '10.0.2.15'), guest)).toBe('10.0.2.15');
  });
  it('ignores offers, other MACs, other ports and garbage', () => {
    expect(leasedAddress(dhcpReply(DHCPOFFER, guest, '10.0.2.15'), guest)).toBeUndefined();
    expect(leasedAddress(dhcpReply(DHCPACK, parseMac('02:00:00:00:00:02'), '10.0.2.16'), guest)).toBeUndefined();
    expect(leasedAddress(dhcpReply(DHCPACK, guest, '10.0.2.15', 1234), guest)).toBeUndefined();
    expect(leasedAddress(new Uint8Array(10), guest)).toBeUndefined();
    expect(leasedAddress(dhcpReply(DHCPACK, guest, '10.0.2.15').subarray(0, 60), guest)).toBeUndefined();
  });
});
