/**
 * `npm run bench:bus`: the cluster's bus on loopback, NATS vs Redis, for the relay's traffic
 * pattern (docs/cluster.md, "Why NATS (measured)"). Needs nats-server and redis-server
 * (Debian: apt-get install nats-server redis-server); both are started here on free
 * loopback ports and stopped at the end. Whole run ≤ 3 min.
 *
 * (a) Latency: a 1514-byte frame A → bus → B → bus → A at 200 frames/s; B is another
 *     process. One-way (A→B, stamped with the system-wide monotonic clock) and round trip.
 * (b) Fan-out: one publisher (this process) sends 1514-byte frames as fast as the broker
 *     takes them — bursts of BURST messages, each burst waiting until the server has
 *     processed the previous ones — to 1, 2 and 4 subscriber processes on one subject, as a
 *     room's broadcast reaches N relays. Frames/s is what the slowest subscriber received
 *     per second until it drained; any frame not received is reported as lost.
 * (c) Leases: the atomic "take this address" of src/relay/cluster-leases.ts — JetStream KV
 *     create vs Redis SET NX PX — with LEASE_CONCURRENCY in flight, on fresh keys; a create
 *     on a taken key must fail on both (checked). The relay's bucket is on JetStream's file
 *     store; the same bucket in memory is measured too, to tell storage from protocol.
 * The buses alternate inside each of ROUNDS rounds; cells are median (min–max) of rounds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { natsServerBinary, startNats } from './suite/cluster-procs.ts';
import { type Bus, type BusKind, type LeaseKind, openBus, openLeaseBus } from './suite/bus-clients.ts';
import { redisServerBinary, startRedis } from './suite/redis-proc.ts';
import { cell, figure } from './stats.ts';

const ROUNDS = 3;
const FRAME = 1514;
const SUBSCRIBERS = [1, 2, 4] as const;
const LATENCY_RATE = 200;
const LATENCY_MS = 2000;
const LATENCY_WARMUP = 40;
const FANOUT_MS = 3000;
const DRAIN_MS = 3000;
const STALL_MS = 500;
const BURST = 256;
const LEASE_MS = 2000;
const LEASE_CONCURRENCY = 8;
const LEASE_TTL_MS = 60_000;
const RUN_LIMIT_MS = 180_000;

const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const nowNs = () => process.hrtime.bigint();
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

/** A forked bus-worker with request/reply over IPC. */
class Worker {
  private seq = 0;
  private readonly waiting = new Map<number, (m: Record<string, unknown>) => void>();
  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: Record<string, unknown>) => {
      const id = m.id as number | undefined;
      if (id !== undefined) this.waiting.get(id)?.(m), this.waiting.delete(id);
    });
  }
  static async start(): Promise<Worker> {
    const proc = fork(path.join(here, 'suite/bus-worker.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      proc.once('message', () => resolve());
      proc.once('exit', (c) => reject(new Error(`bus worker exited (${c})`)));
    });
    return new Worker(proc);
  }
  ask<T = Record<string, unknown>>(cmd: Record<string, unknown>): Promise<T> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (m) => (m.error ? reject(new Error(String(m.error))) : resolve(m as T)));
      this.proc.send({ id, ...cmd });
    });
  }
  stop(): void {
    this.proc.disconnect();
  }
}

interface Server {
  url: string;
  cpuMs(): number;
  stop(): Promise<void>;
}

function frame(): Uint8Array {
  const f = new Uint8Array(FRAME);
  for (let i = 8; i < FRAME; i++) f[i] = i & 0xff;
  return f;
}

async function latency(kind: BusKind, url: string, echo: Worker): Promise<{ oneWay50: number; oneWay99: number; rtt50: number; rtt99: number }> {
  await echo.ask({ t: 'echo', bus: kind, url, subject: 'vlab.bench.a2b', reply: 'vlab.bench.b2a' });
  const bus = await openBus(kind, url);
  const rtts: number[] = [];
  let seen = 0;
  await bus.subscribe('vlab.bench.b2a', (d) => {
    const sent = new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0);
    if (seen++ >= LATENCY_WARMUP) rtts.push(Number(nowNs() - sent));
  });
  const total = LATENCY_WARMUP + (LATENCY_RATE * LATENCY_MS) / 1000;
  for (let i = 0; i < total; i++) {
    const f = frame();
    new DataView(f.buffer).setBigUint64(0, nowNs());
    bus.publish('vlab.bench.a2b', f);
    await sleep(1000 / LATENCY_RATE);
  }
  await sleep(200);
  const { delaysNs } = await echo.ask<{ delaysNs: number[] }>({ t: 'count' });
  await echo.ask({ t: 'close' });
  await bus.close();
  if (rtts.length < total - LATENCY_WARMUP) throw new Error(`${kind}: ${total - LATENCY_WARMUP - rtts.length} latency frames lost`);
  const oneWay = delaysNs.slice(LATENCY_WARMUP);
  const us = (ns: number) => ns / 1000;
  return { oneWay50: us(pct(oneWay, 50)), oneWay99: us(pct(oneWay, 99)), rtt50: us(pct(rtts, 50)), rtt99: us(pct(rtts, 99)) };
}

async function fanout(kind: BusKind, server: Server, subs: Worker[]): Promise<{ fps: number; lost: number; reconnects: number; brokerCpu: number; cpuUsPerDelivery: number }> {
  await Promise.all(subs.map((w) => w.ask({ t: 'sub', bus: kind, url: server.url, subject: 'vlab.bench.fan' })));
  const bus: Bus = await openBus(kind, server.url);
  const f = frame();
  const cpu0 = server.cpuMs();
  const t0 = performance.now();
  let published = 0;
  while (performance.now() - t0 < FANOUT_MS) {
    for (let i = 0; i < BURST; i++) bus.publish('vlab.bench.fan', f);
    published += BURST;
    await bus.flush();
  }
  // Drained when the slowest subscriber has everything, or has gained nothing for STALL_MS
  // (dropped by the broker); the rate counts time up to its last gain.
  const ask = () => Promise.all(subs.map((w) => w.ask<{ received: number; reconnects: number }>({ t: 'count' })));
  let got = (await ask()).map((r) => r.received);
  let tGain = performance.now();
  for (let last = Math.min(...got); last < published && performance.now() - tGain < STALL_MS && performance.now() - t0 < FANOUT_MS + DRAIN_MS; ) {
    await sleep(50);
    got = (await ask()).map((r) => r.received);
    if (Math.min(...got) > last) (last = Math.min(...got)), (tGain = performance.now());
  }
  const reconnects = (await ask()).reduce((a, r) => a + r.reconnects, 0);
  const seconds = (tGain - t0) / 1000;
  const cpuMs = server.cpuMs() - cpu0;
  const brokerCpu = (cpuMs / (performance.now() - t0)) * 100;
  await bus.close();
  await Promise.all(subs.map((w) => w.ask({ t: 'close' })));
  const slowest = Math.min(...got);
  const delivered = got.reduce((a, b) => a + b, 0);
  return { fps: slowest / seconds, lost: published - slowest, reconnects, brokerCpu, cpuUsPerDelivery: (cpuMs * 1000) / delivered };
}

async function leases(kind: LeaseKind, url: string, round: number): Promise<{ ops: number; p50: number; p99: number }> {
  const store = await openLeaseBus(kind, url, `bench_leases_${kind.replace("-", "_")}_${round}`, LEASE_TTL_MS);
  const value = JSON.stringify({ mac: '52:54:00:12:34:56', relay: '0123456789abcdef', host: 'guest-a', t: Date.now() });
  const latUs: number[] = [];
  let n = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: LEASE_CONCURRENCY }, async () => {
      while (performance.now() - t0 < LEASE_MS) {
        const k = `726f6f6d.10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
        n++;
        const s = nowNs();
        if (!(await store.create(k, value))) failed++;
        latUs.push(Number(nowNs() - s) / 1000);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const taken = await store.create('726f6f6d.10.0.0.0', value);
  await store.close();
  if (failed) throw new Error(`${kind}: ${failed} creates of fresh keys failed`);
  if (taken) throw new Error(`${kind}: a create on a taken key succeeded`);
  return { ops: latUs.length / seconds, p50: pct(latUs, 50), p99: pct(latUs, 99) };
}

async function main(): Promise<void> {
  natsServerBinary();
  redisServerBinary();
  const limit = setTimeout(() => {
    console.error(`bench:bus: over ${RUN_LIMIT_MS / 1000} s, giving up`);
    process.exit(1);
  }, RUN_LIMIT_MS);
  const [nats, redis] = await Promise.all([startNats(), startRedis()]);
  const servers: Record<BusKind, Server> = { nats, redis };
  const workers = await Promise.all(Array.from({ length: Math.max(...SUBSCRIBERS) }, () => Worker.start()));
  const runs = new Map<string, number[]>();
  const note = (k: string, v: number) => runs.set(k, [...(runs.get(k) ?? []), v]);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order: BusKind[] = round % 2 ? ['redis', 'nats'] : ['nats', 'redis'];
      for (const kind of order) {
        const l = await latency(kind, servers[kind].url, workers[0]);
        for (const [k, v] of Object.entries(l)) note(`${kind}.${k}`, v);
      }
      for (const n of SUBSCRIBERS)
        for (const kind of order) {
          const r = await fanout(kind, servers[kind], workers.slice(0, n));
          note(`${kind}.fps${n}`, r.fps);
          note(`${kind}.lost${n}`, r.lost);
          note(`${kind}.reconnects${n}`, r.reconnects);
          note(`${kind}.cpu${n}`, r.brokerCpu);
          note(`${kind}.cpuPer${n}`, r.cpuUsPerDelivery);
        }
      for (const kind of [...order, 'nats-memory'] as const) {
        const r = await leases(kind, servers[kind === 'redis' ? 'redis' : 'nats'].url, round);
        note(`${kind}.leaseOps`, r.ops);
        note(`${kind}.leaseP50`, r.p50);
        note(`${kind}.leaseP99`, r.p99);
      }
      console.error(`round ${round + 1}/${ROUNDS} done`);
    }
  } finally {
    for (const w of workers) w.stop();
    await Promise.all([nats.stop(), redis.stop()]);
    clearTimeout(limit);
  }
  const c = (k: string, d = 0) => cell(figure(runs.get(k) ?? []), d);
  const rows: [string, string, string][] = [
    ['(a) one-way latency p50 / p99, µs', `${c('nats.oneWay50')} / ${c('nats.oneWay99')}`, `${c('redis.oneWay50')} / ${c('redis.oneWay99')}`],
    ['(a) round trip p50 / p99, µs', `${c('nats.rtt50')} / ${c('nats.rtt99')}`, `${c('redis.rtt50')} / ${c('redis.rtt99')}`],
  ];
  for (const n of SUBSCRIBERS) {
    const lost = (k: BusKind) =>
      Math.max(...(runs.get(`${k}.lost${n}`) ?? [0])) > 0 ? `, lost ${c(`${k}.lost${n}`)} frames, ${c(`${k}.reconnects${n}`)} subscriber reconnects` : '';
    rows.push([`(b) frames/s to each of ${n} subscriber${n > 1 ? 's' : ''}`, c(`nats.fps${n}`) + lost('nats'), c(`redis.fps${n}`) + lost('redis')]);
    rows.push([`(b) broker CPU %, ${n} subscriber${n > 1 ? 's' : ''}`, c(`nats.cpu${n}`), c(`redis.cpu${n}`)]);
    rows.push([`(b) broker CPU µs per frame delivered, ${n}`, c(`nats.cpuPer${n}`, 1), c(`redis.cpuPer${n}`, 1)]);
  }
  rows.push(['(c) lease create ops/s', c('nats.leaseOps'), c('redis.leaseOps')]);
  rows.push(['(c) lease create p50 / p99, µs', `${c('nats.leaseP50')} / ${c('nats.leaseP99')}`, `${c('redis.leaseP50')} / ${c('redis.leaseP99')}`]);
  rows.push(['(c) same, KV bucket in memory: ops/s; p50 / p99 µs', `${c('nats-memory.leaseOps')}; ${c('nats-memory.leaseP50')} / ${c('nats-memory.leaseP99')}`, '–']);
  console.log(`\n${ROUNDS} rounds, median (min–max); ${FRAME}-byte frames, loopback, lease creates ${LEASE_CONCURRENCY} in flight\n`);
  console.log('| | NATS (core pub/sub, JetStream KV) | Redis (pub/sub, SET NX PX) |\n|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

main().catch((e: unknown) => {
  console.error(`bench:bus: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
