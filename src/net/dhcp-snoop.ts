/**
 * Which address did the guest lease? Seen from frames crossing the NIC: a DHCPACK for our
 * MAC carries it in yiaddr. Lets the page show the guest's IP without asking the guest.
 */
import { DHCPACK, DHCP_CLIENT_PORT, parseDhcp } from '../wire/dhcp.ts';
import { ETHERTYPE_IPV4, macEquals, parseEthernet } from '../wire/ethernet.ts';
import { IPPROTO_UDP, ipToString, parseIpv4 } from '../wire/ipv4.ts';
import { parseUdp } from '../wire/udp.ts';

export function leasedAddress(frame: Uint8Array, mac: Uint8Array): string | undefined {
  const eth = parseEthernet(frame);
  if (!eth || eth.etherType !== ETHERTYPE_IPV4) return undefined;
  const ip = parseIpv4(eth.payload);
  if (!ip || ip.protocol !== IPPROTO_UDP) return undefined;
  const udp = parseUdp(ip.payload);
  if (!udp || udp.dstPort !== DHCP_CLIENT_PORT) return undefined;
  const dhcp = parseDhcp(udp.payload);
  if (!dhcp || dhcp.messageType !== DHCPACK || !macEquals(dhcp.chaddr, mac)) return undefined;
  return ipToString(dhcp.yiaddr);
}
