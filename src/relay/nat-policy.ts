/**
 * Where the gateway's NAT (TCP in tcp.ts, UDP in udp-nat.ts) may take a guest's packet:
 * 'host' maps the gateway's own addresses to the relay host (10.0.2.2:P → 127.0.0.1:P),
 * 'all' also other public addresses, 'off' nothing.
 */
import { ipToString } from '../wire/ipv4.ts';
import type { TcpTarget } from './tcp.ts';

export type NatPolicy = 'off' | 'host' | 'all';

export interface NatScope {
  policy: NatPolicy;
  /** Where the gateway's own addresses go (e.g. 127.0.0.1). */
  hostAddress: string;
  /** The lab's subnet, never NATed (its addresses are guests on the switch). */
  subnet: number;
  netmask: number;
}

/** The host socket address for a guest's packet to (dst, port), or null if policy refuses. */
export function natTarget(scope: NatScope, toGateway: boolean, dst: number, port: number): TcpTarget | null {
  if (scope.policy === 'off') return null;
  if (toGateway) return { host: scope.hostAddress, port };
  if (scope.policy !== 'all') return null;
  const first = dst >>> 24;
  if (first === 0 || first === 127 || first >= 224) return null; // unspecified, loopback, multicast, broadcast
  if ((dst & scope.netmask) === (scope.subnet & scope.netmask)) return null; // the lab's own subnet
  return { host: ipToString(dst), port };
}
