/**
 * Who holds which address in a room: the DHCP server's bookkeeping, behind an interface so
 * a room can keep it alone (LocalLeaseBook, below) or share it with the other relays of a
 * cluster (cluster-leases.ts). The source guard and DNS read it too.
 */
import { macFromKey, macToString } from '../wire/ethernet.ts';
import { ipToString } from '../wire/ipv4.ts';

export interface Lease {
  ip: string;
  mac: string;
  hostname?: string;
}

export interface LeaseBook {
  /** The address leased to a MAC (macKey form). */
  leaseOf(mac: number): number | undefined;
  /** The MAC (macKey) holding `ip`. */
  ownerOf(ip: number): number | undefined;
  /** The address of the guest that said it is `hostname` (sanitized, lower case). */
  addressOfHost(hostname: string): number | undefined;
  /**
   * The MAC's address: its lease, else a free one now held for it, else null (pool used
   * up). A shared book may have to ask the cluster first: then a promise.
   */
  allocate(mac: number): number | null | Promise<number | null>;
  setHostname(mac: number, hostname: string): void;
  list(): Lease[];
}

export interface PoolConfig {
  /** First and last address handed out. */
  start: number;
  end: number;
}

/**
 * A room's leases kept by its own relay. Leases are stable per MAC for the room's lifetime;
 * when the pool is used up, the least recently used lease of a MAC not on the switch goes
 * to the newcomer.
 */
export class LocalLeaseBook implements LeaseBook {
  /** MAC key → lease; the map's order is least recently used first (reclaim). */
  private readonly leases = new Map<number, { ip: number; hostname?: string }>();
  private readonly leaseByIp = new Map<number, number>();
  /** Where the next walk for a free address starts: the walk stays short while the pool fills. */
  private cursor = 0;

  constructor(
    private readonly pool: PoolConfig,
    /** Addresses the gateway answers for: never leased. */
    private readonly isOurs: (ip: number) => boolean,
    /** Whether a MAC (as macKey) is on the switch now: its lease is not reclaimed. */
    private readonly onSwitch: (macKey: number) => boolean,
    private readonly count: (what: string) => void,
  ) {}

  leaseOf(mac: number): number | undefined {
    return this.leases.get(mac)?.ip;
  }

  ownerOf(ip: number): number | undefined {
    return this.leaseByIp.get(ip);
  }

  addressOfHost(hostname: string): number | undefined {
    for (const l of this.leases.values()) if (l.hostname && l.hostname === hostname) return l.ip;
    return undefined;
  }

  setHostname(mac: number, hostname: string): void {
    const lease = this.leases.get(mac);
    if (lease) lease.hostname = hostname;
  }

  list(): Lease[] {
    return [...this.leases.entries()].map(([k, l]) => ({
      ip: ipToString(l.ip),
      mac: macToString(macFromKey(k)),
      ...(l.hostname ? { hostname: l.hostname } : {}),
    }));
  }

  allocate(mac: number): number | null {
    const have = this.leases.get(mac);
    if (have) {
      // Re-insert: the map's order is least recently used first, for reclaim() below.
      this.leases.delete(mac);
      this.leases.set(mac, have);
      return have.ip;
    }
    const { start, end } = this.pool;
    const size = end - start + 1;
    for (let i = 0; i < size; i++) {
      const ip = start + ((this.cursor + i) % size);
      if (this.isOurs(ip) || this.leaseByIp.has(ip)) continue;
      this.cursor = (ip - start + 1) % size;
      this.leases.set(mac, { ip });
      this.leaseByIp.set(ip, mac);
      return ip;
    }
    return this.reclaim(mac);
  }

  /**
   * The pool is used up: hand out the least recently used lease of a MAC that is not on the
   * switch now. Leases stay stable for guests that come back, but not at the price of new
   * guests getting none: 240 short-lived clients, each with a fresh MAC, used to exhaust a
   * room's pool for good.
   */
  private reclaim(mac: number): number | null {
    for (const [old, lease] of this.leases) {
      if (this.onSwitch(old)) continue;
      this.leases.delete(old);
      this.count('dhcp-lease-reclaimed');
      this.leases.set(mac, { ip: lease.ip });
      this.leaseByIp.set(lease.ip, mac);
      return lease.ip;
    }
    return null;
  }
}
