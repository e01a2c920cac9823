/**
 * The two buses the relay cluster could run on, behind one small interface so the bus bench
 * drives both the same way: NATS core pub/sub + JetStream KV (what src/relay/cluster.ts
 * uses) and Redis pub/sub + SET NX PX (the alternative the issue named).
 */
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { createClient } from 'redis';

export type BusKind = 'nats' | 'redis';

export interface Bus {
  /** Queues one message; never waits (both clients pipeline writes). */
  publish(subject: string, data: Uint8Array): void;
  /** Resolves once the server has processed everything published so far. */
  flush(): Promise<void>;
  /** Resolves once the server has registered the subscription. */
  subscribe(subject: string, onMessage: (data: Uint8Array) => void): Promise<void>;
  /** Times the server dropped this client and it connected again (a slow consumer's fate). */
  reconnects(): number;
  close(): Promise<void>;
}

/** A lease store: `create` is atomic and true only for the one caller that made the key. */
export interface LeaseBus {
  create(key: string, value: string): Promise<boolean>;
  close(): Promise<void>;
}

export async function openBus(kind: BusKind, url: string): Promise<Bus> {
  return kind === 'nats' ? natsBus(url) : redisBus(url);
}

/** `nats-memory`: the same bucket held in memory instead of JetStream's file store. */
export type LeaseKind = BusKind | 'nats-memory';

export async function openLeaseBus(kind: LeaseKind, url: string, bucket: string, ttlMs: number): Promise<LeaseBus> {
  if (kind === 'redis') return redisLeases(url, bucket, ttlMs);
  return natsLeases(url, bucket, ttlMs, kind === 'nats-memory' ? ('memory' as KvOptions['storage']) : undefined);
}

const hostport = (url: string) => url.replace(/^\w+:\/\//, '');

async function natsBus(url: string): Promise<Bus> {
  // As the relay connects: noEcho, so a process never receives what it published.
  const nc = await connect({ servers: hostport(url), noEcho: true });
  let reconnects = 0;
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') reconnects++;
  })();
  return {
    reconnects: () => reconnects,
    publish: (s, d) => nc.publish(s, d),
    flush: () => nc.flush(),
    async subscribe(s, on) {
      nc.subscribe(s, {
        callback: (err, m) => {
          if (!err) on(m.data);
        },
      });
      await nc.flush();
    },
    close: () => nc.close(),
  };
}

async function redisBus(url: string): Promise<Bus> {
  // A Redis connection in subscribe mode cannot publish: one for each direction.
  const pub = createClient({ url });
  pub.on('error', () => {});
  await pub.connect();
  let sub: typeof pub | null = null;
  let pending: Promise<unknown>[] = [];
  let reconnects = 0;
  return {
    reconnects: () => reconnects,
    publish(s, d) {
      pending.push(pub.publish(s, Buffer.from(d.buffer, d.byteOffset, d.byteLength)));
    },
    async flush() {
      const p = pending;
      pending = [];
      if (p.length) await Promise.all(p);
      else await pub.ping();
    },
    async subscribe(s, on) {
      if (!sub) {
        sub = pub.duplicate();
        sub.on('error', () => {});
        sub.on('reconnecting', () => void reconnects++);
        await sub.connect();
      }
      await sub.subscribe(s, (m: Buffer) => on(m), true);
    },
    async close() {
      await Promise.all(pending).catch(() => {});
      pub.destroy();
      sub?.destroy();
    },
  };
}

async function natsLeases(url: string, bucket: string, ttlMs: number, storage?: KvOptions['storage']): Promise<LeaseBus> {
  const nc = await connect({ servers: hostport(url) });
  // The relay's bucket settings: one revision per key, max age = lease ttl.
  const kv: KV = await new Kvm(nc).create(bucket, { history: 1, ttl: ttlMs, ...(storage ? { storage } : {}) });
  return {
    create: (k, v) =>
      kv.create(k, v).then(
        () => true,
        () => false,
      ),
    close: () => nc.close(),
  };
}

async function redisLeases(url: string, prefix: string, ttlMs: number): Promise<LeaseBus> {
  const c = createClient({ url });
  c.on('error', () => {});
  await c.connect();
  return {
    create: async (k, v) => (await c.set(`${prefix}:${k}`, v, { condition: 'NX', expiration: { type: 'PX', value: ttlMs } })) === 'OK',
    async close() {
      c.destroy();
    },
  };
}
