/**
 * DHCP leases shared by every relay of a cluster, in a JetStream key-value bucket. Chosen
 * over partitioning the pool per relay (relays come and go; a fixed share wastes addresses
 * and a dynamic one needs the same agreement anyway) and over one relay as lease authority
 * (it would have to be elected, and its death would stop every room's DHCP): the bucket is
 * one atomic "create if absent" per lease, kept by nats-server itself.
 *
 * - Key `<roomHex>.<ip as 8 hex digits>`, value `{"mac","relay","host"?}`: an address is held
 *   by whoever created its key; `create` fails if the key exists, so two relays can never
 *   hand out one address, whatever the timing.
 * - Every relay mirrors the whole bucket through a watch: the source guard, DNS names and
 *   the choice of a free address read the mirror, never the network.
 * - The bucket's max age is the lease's life on the cluster: a relay re-puts the leases of
 *   its clients still on its switch every ttl/4. A relay that dies stops doing so and its
 *   leases expire; a departed client's lease goes the same way. (The server removes expired
 *   keys without telling watchers, so the mirror ages its entries out on the same clock.)
 * - A MAC that comes back through another relay (a load balancer's choice) keeps its address:
 *   the new relay takes the key over with a compare-and-set on its revision.
 */
import type { KV } from '@nats-io/kv';
import { macFromKey, macKey, macToString, parseMac } from '../wire/ethernet.ts';
import { ipToString } from '../wire/ipv4.ts';
import { roomHex } from './cluster-wire.ts';
import type { Lease, LeaseBook, PoolConfig } from './lease-book.ts';

const KEY = /^((?:[0-9a-f]{2}){1,64})\.([0-9a-f]{8})$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
const RELAY = /^[0-9a-f]{16}$/;
const HOST = /^[a-z0-9-]{1,63}$/;
const MAX_VALUE_BYTES = 256;
/** Addresses a relay tries per new lease before giving up (each a round trip). */
const MAX_CLAIMS = 16;

interface Held {
  mac: number;
  relay: string;
  hostname?: string;
  revision: number;
  /** When the mirror last saw it written (ms). */
  seen: number;
}

interface RoomMirror {
  byIp: Map<number, Held>;
  byMac: Map<number, number>;
}

export interface LeaseStoreOptions {
  /** A lease's life on the cluster without a refresh (the bucket's max age). */
  ttlMs: number;
  /** Entries the mirror keeps over all rooms: more are peers misbehaving. */
  maxEntries: number;
  now?: () => number;
}

export class LeaseStore {
  private readonly rooms = new Map<string, RoomMirror>();
  private readonly books = new Map<string, { onSwitch: (mac: number) => boolean }>();
  private entries = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly now: () => number;
  readonly counters: Record<string, number> = {};

  constructor(
    private readonly kv: KV,
    readonly relayId: string,
    private readonly opts: LeaseStoreOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  private count(what: string): void {
    this.counters[what] = (this.counters[what] ?? 0) + 1;
  }

  /** Starts mirroring the bucket and refreshing this relay's leases. */
  async start(): Promise<void> {
    const watch = await this.kv.watch({ key: '>' });
    void (async () => {
      for await (const e of watch) this.apply(e.key, e.value, e.revision, e.operation);
    })().catch(() => this.count('watch-ended'));
    const refresh = setInterval(() => void this.refresh(), Math.max(250, this.opts.ttlMs / 4));
    const sweep = setInterval(() => this.sweep(), Math.max(250, this.opts.ttlMs / 4));
    refresh.unref();
    sweep.unref();
    this.timers.push(refresh, sweep);
    this.stopWatch = () => watch.stop();
  }

  private stopWatch: () => void = () => undefined;

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.stopWatch();
  }

  private mirror(room: string): RoomMirror {
    let m = this.rooms.get(room);
    if (!m) this.rooms.set(room, (m = { byIp: new Map(), byMac: new Map() }));
    return m;
  }

  private live(h: Held): boolean {
    return this.now() - h.seen < this.opts.ttlMs;
  }

  /** One entry from the watch (or our own write). Peers' values are checked field by field. */
  apply(key: string, value: Uint8Array, revision: number, op: string): void {
    const k = KEY.exec(key);
    if (!k) return this.count('bad-key');
    const room = k[1];
    const ip = parseInt(k[2], 16) >>> 0;
    const m = this.mirror(room);
    const old = m.byIp.get(ip);
    // Our own writes are applied when they succeed; the watch brings them again later.
    if (old && revision <= old.revision) return;
    if (old) {
      m.byIp.delete(ip);
      if (m.byMac.get(old.mac) === ip) m.byMac.delete(old.mac);
      this.entries--;
    }
    if (op !== 'PUT') return;
    const held = parseValue(value);
    if (!held) return this.count('bad-value');
    if (this.entries >= this.opts.maxEntries) return this.count('mirror-full');
    m.byIp.set(ip, { ...held, revision, seen: this.now() });
    m.byMac.set(held.mac, ip);
    this.entries++;
  }

  /** Drops entries nobody refreshed within the ttl (expired on the server too). */
  private sweep(): void {
    for (const m of this.rooms.values()) {
      for (const [ip, h] of m.byIp) {
        if (this.live(h)) continue;
        m.byIp.delete(ip);
        if (m.byMac.get(h.mac) === ip) m.byMac.delete(h.mac);
        this.entries--;
      }
    }
  }

  /** Re-puts the leases this relay holds for clients on its switch. */
  private async refresh(): Promise<void> {
    for (const [room, book] of this.books) {
      const m = this.rooms.get(room);
      if (!m) continue;
      // A snapshot: each write comes back through the watch and re-inserts its entry, which a
      // live iteration would visit again (it did, refreshing in a loop: 60 % of a core).
      const mine = [...m.byIp].filter(([, h]) => h.relay === this.relayId && book.onSwitch(h.mac));
      for (const [ip, h] of mine) {
        const key = keyOf(room, ip);
        const v = valueOf(h.mac, this.relayId, h.hostname);
        try {
          // Applied at once: the next round must not wait for the watch to learn the revision.
          this.apply(key, v, await this.kv.update(key, v, h.revision), 'PUT');
        } catch {
          // A timeout whose write went through, or a revision the mirror has not seen yet:
          // look at the key itself, and refresh it if it is still ours.
          try {
            const e = await this.kv.get(key);
            if (!e || e.operation !== 'PUT') {
              // Lapsed (refreshes lost to timeouts past the ttl): claim it again if still free.
              this.apply(key, v, await this.kv.create(key, v), 'PUT');
              this.count('refresh-recreated');
              continue;
            }
            const cur = parseValue(e.value);
            if (!cur || cur.mac !== h.mac || cur.relay !== this.relayId) throw new Error('taken');
            this.apply(key, v, await this.kv.update(key, v, e.revision), 'PUT');
            this.count('refresh-retried');
          } catch {
            this.count('refresh-lost'); // someone else took it over
          }
        }
      }
    }
  }

  /** The lease book of one room's pool. */
  book(room: string, pool: PoolConfig, isOurs: (ip: number) => boolean, onSwitch: (mac: number) => boolean): LeaseBook {
    const hex = roomHex(room);
    this.books.set(hex, { onSwitch });
    return new ClusterLeaseBook(this, hex, pool, isOurs);
  }

  // ---- used by ClusterLeaseBook

  held(room: string, ip: number): Held | undefined {
    const h = this.rooms.get(room)?.byIp.get(ip);
    return h && this.live(h) ? h : undefined;
  }

  ipOf(room: string, mac: number): number | undefined {
    const ip = this.rooms.get(room)?.byMac.get(mac);
    return ip !== undefined && this.held(room, ip)?.mac === mac ? ip : undefined;
  }

  leases(room: string): Array<[number, Held]> {
    return [...(this.rooms.get(room)?.byIp ?? [])].filter(([, h]) => this.live(h));
  }

  /** Creates (revision 0) or takes over (revision n) the key; true when this relay holds it now. */
  async claim(room: string, ip: number, mac: number, revision: number, hostname?: string): Promise<boolean> {
    const v = valueOf(mac, this.relayId, hostname);
    try {
      const rev = revision === 0 ? await this.kv.create(keyOf(room, ip), v) : await this.kv.update(keyOf(room, ip), v, revision);
      this.apply(keyOf(room, ip), v, rev, 'PUT');
      this.count(revision === 0 ? 'lease-created' : 'lease-taken-over');
      return true;
    } catch {
      this.count('lease-conflict');
      return false;
    }
  }
}

const keyOf = (roomHexed: string, ip: number) => `${roomHexed}.${ip.toString(16).padStart(8, '0')}`;
const valueOf = (mac: number, relay: string, host?: string) =>
  new TextEncoder().encode(JSON.stringify({ mac: macToString(macFromKey(mac)), relay, ...(host ? { host } : {}) }));

function parseValue(b: Uint8Array): { mac: number; relay: string; hostname?: string } | null {
  if (b.length > MAX_VALUE_BYTES) return null;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.mac !== 'string' || !MAC.test(o.mac) || typeof o.relay !== 'string' || !RELAY.test(o.relay)) return null;
  if (o.host !== undefined && (typeof o.host !== 'string' || !HOST.test(o.host))) return null;
  const mac = macKey(parseMac(o.mac));
  return { mac, relay: o.relay, ...(o.host ? { hostname: o.host as string } : {}) };
}

/** One room's view of the shared leases (see LeaseStore). */
class ClusterLeaseBook implements LeaseBook {
  private cursor = 0;
  private readonly pending = new Map<number, Promise<number | null>>();
  /** Addresses being claimed right now by this relay: not offered to another MAC meanwhile. */
  private readonly claiming = new Set<number>();

  constructor(
    private readonly store: LeaseStore,
    private readonly room: string,
    private readonly pool: PoolConfig,
    private readonly isOurs: (ip: number) => boolean,
  ) {}

  private inPool = (ip: number) => ip >= this.pool.start && ip <= this.pool.end && !this.isOurs(ip);

  leaseOf(mac: number): number | undefined {
    const ip = this.store.ipOf(this.room, mac);
    return ip !== undefined && this.inPool(ip) ? ip : undefined;
  }

  ownerOf(ip: number): number | undefined {
    return this.store.held(this.room, ip)?.mac;
  }

  addressOfHost(hostname: string): number | undefined {
    for (const [ip, h] of this.store.leases(this.room)) if (h.hostname === hostname) return ip;
    return undefined;
  }

  setHostname(mac: number, hostname: string): void {
    const ip = this.leaseOf(mac);
    const h = ip === undefined ? undefined : this.store.held(this.room, ip);
    if (!h || ip === undefined || h.hostname === hostname || !HOST.test(hostname)) return;
    void this.store.claim(this.room, ip, mac, h.revision, hostname);
  }

  list(): Lease[] {
    return this.store.leases(this.room).map(([ip, h]) => ({ ip: ipToString(ip), mac: macToString(macFromKey(h.mac)), ...(h.hostname ? { hostname: h.hostname } : {}) }));
  }

  allocate(mac: number): number | null | Promise<number | null> {
    const ip = this.leaseOf(mac);
    const h = ip === undefined ? undefined : this.store.held(this.room, ip);
    if (ip !== undefined && h && h.relay === this.store.relayId) return ip;
    const busy = this.pending.get(mac);
    if (busy) return busy;
    const p = (ip !== undefined && h ? this.takeOver(ip, mac, h.revision, h.hostname) : this.claimFree(mac)).finally(() => this.pending.delete(mac));
    this.pending.set(mac, p);
    return p;
  }

  private async takeOver(ip: number, mac: number, revision: number, hostname?: string): Promise<number | null> {
    return (await this.store.claim(this.room, ip, mac, revision, hostname)) ? ip : this.claimFree(mac);
  }

  private async claimFree(mac: number): Promise<number | null> {
    const { start, end } = this.pool;
    const size = end - start + 1;
    let tries = 0;
    for (let i = 0; i < size && tries < MAX_CLAIMS; i++) {
      const ip = start + ((this.cursor + i) % size);
      if (this.isOurs(ip) || this.claiming.has(ip) || this.store.held(this.room, ip)) continue;
      tries++;
      this.claiming.add(ip);
      try {
        if (await this.store.claim(this.room, ip, mac, 0)) {
          this.cursor = (ip - start + 1) % size;
          return ip;
        }
      } finally {
        this.claiming.delete(ip);
      }
    }
    return null;
  }
}
