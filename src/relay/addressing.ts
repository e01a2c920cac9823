/**
 * A room's IPv4 plan sized for its client limit. Small rooms keep the familiar
 * 10.0.2.0/24 (gateway 10.0.2.2, leases from 10.0.2.15: 240 addresses); a larger limit
 * widens the prefix downward (/23 … /16 of 10.0.0.0) and the pool runs from 10.0.2.15 to
 * the subnet's last host, so the gateway, the DNS server and the first lease never move.
 * busybox udhcpc takes the subnet option as it is (it exports it as `mask`, a prefix
 * length, which the guest's script passes to `ip addr add`), so a wider room needs no guest
 * change; a second subnet or a second server would.
 */
import { parseIp } from '../wire/ipv4.ts';

export interface RoomAddressing {
  netmask: string;
  dhcpStart: string;
  dhcpEnd: string;
  prefixLength: number;
}

const BASE = parseIp('10.0.0.0');
const FIRST_LEASE = parseIp('10.0.2.15');
/** Leases kept free beyond the client limit: returning guests with a new MAC, churn. */
const HEADROOM = 1.25;

const dotted = (ip: number) => [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');

/** The addressing for a prefix length 16…24 (24 = the classic room). */
export function addressingFor(prefixLength: number): RoomAddressing {
  if (!Number.isInteger(prefixLength) || prefixLength < 16 || prefixLength > 24) {
    throw new Error(`room prefix must be 16..24, got ${prefixLength}`);
  }
  const size = 2 ** (32 - prefixLength);
  const network = prefixLength === 24 ? parseIp('10.0.2.0') : BASE;
  const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
  return { netmask: dotted(mask), dhcpStart: dotted(FIRST_LEASE), dhcpEnd: dotted(network + size - 2), prefixLength };
}

/** Addresses the pool of `a` hands out. */
export function poolSize(a: RoomAddressing): number {
  return parseIp(a.dhcpEnd) - parseIp(a.dhcpStart) + 1;
}

/** The narrowest room (longest prefix) whose pool holds `maxClients` with headroom. */
export function addressingForClients(maxClients: number): RoomAddressing {
  for (let p = 24; p >= 16; p--) {
    const a = addressingFor(p);
    if (poolSize(a) >= Math.ceil(maxClients * HEADROOM)) return a;
  }
  throw new Error(`no room prefix holds ${maxClients} clients (at most ${Math.floor(poolSize(addressingFor(16)) / HEADROOM)})`);
}
