/**
 * Shared leases without a server: an in-memory stand-in for the JetStream KV bucket with its
 * two promises that matter (create fails when the key exists; update needs the current
 * revision) and a watch that tells every relay about every write.
 */
import type { KV } from '@nats-io/kv';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { macKey, parseMac } from '../wire/ethernet.ts';
import { ipToString, parseIp } from '../wire/ipv4.ts';
import { LeaseStore } from './cluster-leases.ts';
import type { LeaseBook } from './lease-book.ts';

type Entry = { key: string; value: Uint8Array; revision: number; operation: 'PUT' | 'DEL' | 'PURGE' };

class MemoryKv {
  private readonly keys = new Map<string, { value: Uint8Array; revision: number }>();
  private rev = 0;
  private readonly watchers: Array<(e: Entry) => void> = [];

  private write(key: string, value: Uint8Array): number {
    const revision = ++this.rev;
    this.keys.set(key, { value, revision });
    // Delivered later, as the server's watch would.
    queueMicrotask(() => this.watchers.forEach((w) => w({ key, value, revision, operation: 'PUT' })));
    return revision;
  }
  /** A peer writing whatever it likes. */
  raw(key: string, value: string): void {
    this.write(key, new TextEncoder().encode(value));
  }
  async create(key: string, value: Uint8Array): Promise<number> {
    await Promise.resolve();
    if (this.keys.has(key)) throw new Error('wrong last sequence');
    return this.write(key, value);
  }
  updates = 0;
  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    await Promise.resolve();
    this.updates++;
    if (this.keys.get(key)?.revision !== revision) throw new Error('wrong last sequence');
    return this.write(key, value);
  }
  async watch(): Promise<AsyncIterable<Entry> & { stop(): void }> {
    const queue: Entry[] = [];
    let wake: (() => void) | null = null;
    let stopped = false;
    for (const [key, v] of this.keys) queue.push({ key, ...v, operation: 'PUT' });
    this.watchers.push((e) => (queue.push(e), wake?.()));
    return {
      stop: () => ((stopped = true), wake?.()),
      async *[Symbol.asyncIterator]() {
        while (!stopped) {
          while (queue.length) yield queue.shift()!;
          await new Promise<void>((r) => (wake = r));
        }
      },
    };
  }
}

const pool = { start: parseIp('10.0.2.15'), end: parseIp('10.0.2.254') };
const isOurs = (ip: number) => ip === parseIp('10.0.2.2');
const mac = (i: number) => macKey(parseMac(`52:54:00:aa:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`));
const settle = () => new Promise((r) => setTimeout(r, 5));

describe('cluster leases (a JetStream KV bucket shared by relays)', () => {
  const stores: LeaseStore[] = [];
  afterEach(() => stores.splice(0).forEach((s) => s.close()));

  async function relay(kv: MemoryKv, id: string, now?: () => number, ttlMs = 60_000): Promise<{ store: LeaseStore; book: LeaseBook; onSwitch: Set<number> }> {
    const store = new LeaseStore(kv as unknown as KV, id, { ttlMs, maxEntries: 1000, now });
    await store.start();
    stores.push(store);
    const onSwitch = new Set<number>();
    return { store, book: store.book('class', pool, isOurs, (m) => onSwitch.has(m)), onSwitch };
  }

  it('never gives one address to two MACs, however the relays race', async () => {
    const kv = new MemoryKv();
    const a = await relay(kv, 'aaaaaaaaaaaaaaaa');
    const b = await relay(kv, 'bbbbbbbbbbbbbbbb');
    // 200 guests at once, alternating relays, neither relay having seen the other's claims yet.
    const got = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? b : a).book.allocate(mac(i))));
    expect(got.every((ip) => typeof ip === 'number')).toBe(true);
    expect(new Set(got).size).toBe(200);
    expect(got).not.toContain(parseIp('10.0.2.2'));
    await settle();
    // Both mirrors agree on every owner, and each relay's own MACs keep their address.
    for (let i = 0; i < 200; i++) {
      expect(a.book.ownerOf(got[i] as number)).toBe(mac(i));
      expect(b.book.ownerOf(got[i] as number)).toBe(mac(i));
      expect((i % 2 ? b : a).book.allocate(mac(i))).toBe(got[i]);
    }
    expect(a.book.list()).toHaveLength(200);
  });

  it('runs out of addresses rather than sharing one', async () => {
    const kv = new MemoryKv();
    const a = await relay(kv, 'aaaaaaaaaaaaaaaa');
    const small = a.store.book('tiny', { start: parseIp('10.0.2.15'), end: parseIp('10.0.2.17') }, isOurs, () => true);
    const got = await Promise.all([1, 2, 3, 4].map((i) => small.allocate(mac(i))));
    expect(got.filter((x) => x !== null)).toHaveLength(3);
    expect(got.filter((x) => x === null)).toHaveLength(1);
  });

  it('lets a MAC that moves to another relay keep its address (and the old relay stops owning it)', async () => {
    const kv = new MemoryKv();
    const a = await relay(kv, 'aaaaaaaaaaaaaaaa');
    const b = await relay(kv, 'bbbbbbbbbbbbbbbb');
    const ip = await a.book.allocate(mac(7));
    await settle();
    expect(await b.book.allocate(mac(7))).toBe(ip);
    await settle();
    expect(a.store.counters['lease-taken-over']).toBeUndefined();
    expect(b.store.counters['lease-taken-over']).toBe(1);
    // Now a's copy is b's: asking a again takes it back (the key's revision moved on).
    expect(await a.book.allocate(mac(7))).toBe(ip);
  });

  it('ignores what a peer writes that is not a lease, and forgets leases nobody refreshes', async () => {
    const kv = new MemoryKv();
    let now = 1_000_000;
    const a = await relay(kv, 'aaaaaaaaaaaaaaaa', () => now);
    const ip = parseIp('10.0.2.50');
    const key = (x: number) => `${Buffer.from('class').toString('hex')}.${x.toString(16).padStart(8, '0')}`;
    kv.raw(key(ip), '{"mac":"52:54:00:00:00:01","relay":"not-a-relay"}');
    kv.raw(key(ip + 1), 'garbage');
    kv.raw('../etc/passwd', '{}');
    kv.raw(key(ip + 2), '{"mac":"52:54:00:00:00:02","relay":"cccccccccccccccc","host":"evil host!"}');
    kv.raw(key(ip + 3), '{"mac":"52:54:00:00:00:03","relay":"cccccccccccccccc","host":"pc3"}');
    await settle();
    expect(a.book.ownerOf(ip)).toBeUndefined();
    expect(a.book.ownerOf(ip + 2)).toBeUndefined();
    expect(a.book.ownerOf(ip + 3)).toBe(macKey(parseMac('52:54:00:00:00:03')));
    expect(a.book.addressOfHost('pc3')).toBe(ip + 3);
    expect(a.store.counters).toMatchObject({ 'bad-value': 3, 'bad-key': 1 });
    // Relay c died: past the ttl its lease is no one's (the server expired the key too).
    now += 61_000;
    expect(a.book.ownerOf(ip + 3)).toBeUndefined();
    expect(a.book.list().map((l) => l.ip)).not.toContain(ipToString(ip + 3));
  });

  it('refreshes each present client’s lease once per round, and only those', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const kv = new MemoryKv();
      const a = await relay(kv, 'aaaaaaaaaaaaaaaa', undefined, 1000); // a round every 250 ms
      for (let i = 0; i < 5; i++) await a.book.allocate(mac(i));
      [0, 1, 2].forEach((i) => a.onSwitch.add(mac(i)));
      await vi.advanceTimersByTimeAsync(500);
      await settle();
      // Two rounds × three present clients (a loop over its own re-inserted entries made thousands).
      expect(kv.updates).toBe(6);
      expect(a.store.counters['refresh-lost']).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});
