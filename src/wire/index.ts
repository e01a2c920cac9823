/**
 * The lab's packet library, one module per protocol (Ethernet, ARP, IPv4, ICMP, UDP, TCP,
 * DHCP, DNS) and one Internet checksum. Shared by the NIC (offloads), the relay (switch and
 * gateway), the inspector and the page (frame decoding, DHCP snooping), and their tests.
 *
 * Plain Uint8Array, no Node APIs. Parsers never throw on guest or peer input: they return
 * null when a header is truncated or its length fields do not fit, and every payload they
 * return is a view (subarray) of the input, not a copy. Builders return fresh arrays with
 * checksums filled in.
 */
export * from './bytes.ts';
export * from './checksum.ts';
export * from './ethernet.ts';
export * from './arp.ts';
export * from './ipv4.ts';
export * from './icmp.ts';
export * from './udp.ts';
export * from './tcp.ts';
export * from './dhcp.ts';
export * from './dns.ts';
export * from './decode.ts';
