/**
 * What the gateway's services (DHCP, DNS, UDP NAT) need from the gateway: its address, a
 * counter for what they handled or dropped, and a way to send. Keeps them testable and
 * free of the switch.
 */
export interface GatewayIo {
  /** The gateway's own address (DHCP server id, router, source of its replies). */
  readonly ip: number;
  count(what: string): void;
  sendIp(dstMac: Uint8Array, src: number, dst: number, protocol: number, payload: Uint8Array): void;
  sendUdp(dstMac: Uint8Array, src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): void;
}
