/**
 * `npm run bench:relay [-- --quick] [--relays N] [--room-size S] [--rate R] [--bound MS]`:
 * what one relay process (or N of them clustered on one NATS) carries. Loopback only.
 *
 * The relays run as child processes (`src/server/relay-main.ts`, sampled for CPU and RSS);
 * this process is the load: synthetic guests (bench/suite/load-guest.ts), each a WebSocket
 * speaking real frames — DHCP, ARP, ping to the gateway and to a neighbour in its room
 * (placed on another relay when clustered), and one TCP stream per step through the NAT to
 * a sink here that counts bytes (paced over the window). Clients ramp up in steps; rooms fill up to --room-size.
 * Each step measures a window, then waits 2 s for late replies; what is still unanswered
 * is lost.
 *
 * A step is within capacity when p99 RTT ≤ --bound (default 50 ms), nothing is lost and
 * every client got a lease. The ramp stops at loss, a missing lease or p99 beyond 4× the
 * bound; the largest step within the bound is reported with any smaller step that missed it
 * (shared cores make single steps noisy). The generator
 * checks itself on the first (lightest) step: loss above 0.1 %, a missing lease, a short
 * TCP stream or a frame delivered to the wrong MAC exits 1.
 */
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { type RelayProc, startNats, startRelay } from './suite/cluster-procs.ts';
import { LoadGuest } from './suite/load-guest.ts';
import { type LedgerSummary, lossVerdict, PingLedger, withinBound } from './suite/ping-ledger.ts';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(n);
const opt = (n: string, d: number) => {
  const i = args.indexOf(n);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const optS = (n: string) => {
  const i = args.indexOf(n);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = flag('--quick');
const relays = opt('--relays', 1);
const roomSize = opt('--room-size', quick ? 10 : 100);
const rate = opt('--rate', 1); // echo requests per client per second, to each target
const bound = opt('--bound', 50);
const windowMs = opt('--window', quick ? 3000 : 8000);
const steps = (optS('--steps') ?? (quick ? '10,20' : '50,100,200,300,400,600,800,1000,1200,1500,2000')).split(',').map(Number);
const FIRST_STEP_MAX_LOSS = 0.1;
const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ processes

// ------------------------------------------------------------------ load

interface Seat {
  guest: LoadGuest;
  room: number;
}

const mac = (n: number) => new Uint8Array([0x02, 0x1d, 0, (n >> 16) & 255, (n >> 8) & 255, n & 255]);

async function addGuests(seats: Seat[], upTo: number, relayPorts: number[]): Promise<number> {
  let failed = 0;
  const batch = 50;
  for (let start = seats.length; start < upTo; start += batch) {
    const made = await Promise.all(
      Array.from({ length: Math.min(batch, upTo - start) }, async (_, k) => {
        const n = start + k;
        const room = Math.floor(n / roomSize);
        const inRoom = n % roomSize;
        // Neighbours in a room sit on different relays when there are several.
        const port = relayPorts[inRoom % relayPorts.length];
        const g = await LoadGuest.open(`ws://${HOST}:${port}/relay/load${room}`, mac(n + 1), 2 * n + 1);
        const ip = await g.lease(0x10000 + n);
        if (!ip) failed++;
        g.gatewayMac = ip ? await g.resolve(g.gatewayIp) : null;
        if (!g.gatewayMac) failed++;
        return { guest: g, room };
      }),
    );
    seats.push(...made);
  }
  return failed;
}

/** Waits (≤ 60 s) until the guests have received nothing for 500 ms. */
async function quiesce(seats: Seat[]): Promise<void> {
  const total = () => seats.reduce((a, s) => a + s.guest.received, 0);
  let last = -1;
  for (let i = 0; i < 120; i++) {
    const now = total();
    if (now === last) return;
    last = now;
    await sleep(500);
  }
}

/** The neighbour each guest pings: the next one in its room (wrapping). */
function neighbour(seats: Seat[], i: number): Seat {
  const room = seats[i].room;
  const j = i + 1 < seats.length && seats[i + 1].room === room ? i + 1 : seats.findIndex((s) => s.room === room);
  return seats[j];
}

interface StepResult {
  clients: number;
  rooms: number;
  leaseFailures: number;
  gw: LedgerSummary;
  peer: LedgerSummary;
  framesPerSecond: number;
  relayCpuPercent: number;
  relayRssMiB: number;
  rssPerClientKiB: number;
  generatorCpuPercent: number;
  tcpBytes: number;
  tcpWanted: number;
  tcpSinkBytes: number;
  foreign: number;
  natsCpuPercent: number;
}

async function main(): Promise<void> {
  const nats = relays > 1 ? (optS('--cluster') ? { url: optS('--cluster')!, stop: async () => undefined, cpuMs: () => 0 } : await startNats()) : null;
  const maxClients = Math.max(...steps);
  const children: RelayProc[] = [];
  for (let i = 0; i < relays; i++) children.push(await startRelay(nats?.url ?? null, { RELAY_ROOM_CLIENTS: String(roomSize) }));
  let sinkBytes = 0;
  const sink = createTcpServer((s) => s.on('data', (b: Buffer) => (sinkBytes += b.length)));
  const sinkPort = await new Promise<number>((r) => sink.listen(0, HOST, () => r((sink.address() as AddressInfo).port)));
  const baseRss = (await Promise.all(children.map((c) => c.sample()))).reduce((a, s) => a + s.rss, 0);
  console.log(
    `bench:relay: ${relays} relay process(es)${nats ? ` on ${nats.url}` : ''}, rooms of ≤ ${roomSize}, ${rate} ping/s per client to the gateway and to a neighbour, ` +
      `${windowMs / 1000} s windows, bound p99 ≤ ${bound} ms, ${os.cpus().length} CPUs; baseline RSS ${(baseRss / 1048576).toFixed(0)} MiB`,
  );
  // CPU % of one core: relays summed over their processes; nats-server's own when clustered.
  console.log('clients rooms  frames/s  gw p50/p99 ms  peer p50/p99 ms  lost  relay CPU %  RSS MiB  KiB/client  gen CPU %  TCP KiB' + (nats ? '  nats CPU %' : ''));
  const seats: Seat[] = [];
  const results: StepResult[] = [];
  let failure: string | null = null;
  let leaseFailures = 0;
  for (const n of steps.filter((s) => s <= maxClients)) {
    leaseFailures += await addGuests(seats, n, children.map((c) => c.port));
    const gw = new PingLedger();
    const peer = new PingLedger();
    for (const s of seats) s.guest.ledgers.clear();
    // The neighbour's MAC by ARP (real broadcast ARP through the room).
    await Promise.all(seats.map((s, i) => s.guest.resolve(neighbour(seats, i).guest.ip)));
    // Leasing and ARPing flood the rooms (N² deliveries): the window starts once that has drained.
    await quiesce(seats);
    const before = await Promise.all(children.map((c) => c.sample()));
    const gen0 = process.cpuUsage();
    const nats0 = nats?.cpuMs() ?? 0;
    const t0 = performance.now();
    const tcpWanted = quick ? 256 * 1024 : 2 * 1024 * 1024;
    sinkBytes = 0;
    // Paced over the window: background traffic through the NAT, not a burst that would set p99.
    const tcp = seats[0].guest.tcpStream(sinkPort, tcpWanted, windowMs + 5000, (tcpWanted * 1000) / (windowMs * 0.8));
    const period = 1000 / rate;
    const timers = seats.map((s, i) => {
      const nb = neighbour(seats, i).guest;
      const tick = () => {
        const g = s.guest;
        if (g.gatewayMac) g.ping(g.gatewayMac, g.gatewayIp, g.id, gw);
        const nbMac = g.arpCache.get(nb.ip);
        if (nbMac && nb !== g) g.ping(nbMac, nb.ip, g.id + 1, peer);
      };
      let iv: NodeJS.Timeout | null = null;
      const first = setTimeout(() => {
        tick();
        iv = setInterval(tick, period);
      }, Math.random() * period);
      return () => {
        clearTimeout(first);
        if (iv) clearInterval(iv);
      };
    });
    await sleep(windowMs);
    timers.forEach((stop) => stop());
    const elapsed = performance.now() - t0;
    const after = await Promise.all(children.map((c) => c.sample()));
    const gen = process.cpuUsage(gen0);
    const natsCpuPercent = nats ? (100 * (nats.cpuMs() - nats0)) / elapsed : 0;
    await sleep(2000);
    gw.expire(performance.now() - 2000);
    peer.expire(performance.now() - 2000);
    const tcpBytes = await tcp;
    await sleep(200);
    const cpu = after.reduce((a, s, i) => a + s.cpuMs - before[i].cpuMs, 0);
    const frames = after.reduce((a, s, i) => a + s.frames - before[i].frames, 0);
    const rss = after.reduce((a, s) => a + s.rss, 0);
    const r: StepResult = {
      clients: seats.length,
      rooms: new Set(seats.map((s) => s.room)).size,
      leaseFailures,
      gw: gw.summary(),
      peer: peer.summary(),
      framesPerSecond: (frames * 1000) / elapsed,
      relayCpuPercent: (100 * cpu) / elapsed,
      relayRssMiB: rss / 1048576,
      rssPerClientKiB: (rss - baseRss) / 1024 / seats.length,
      generatorCpuPercent: (100 * (gen.user + gen.system)) / 1000 / elapsed,
      tcpBytes,
      tcpWanted,
      tcpSinkBytes: sinkBytes,
      foreign: seats.reduce((a, s) => a + s.guest.foreignUnicast, 0),
      natsCpuPercent,
    };
    results.push(r);
    const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
    console.log(
      `${String(r.clients).padStart(7)} ${String(r.rooms).padStart(5)} ${f(r.framesPerSecond, 0).padStart(9)}  ${`${f(r.gw.p50)}/${f(r.gw.p99)}`.padStart(13)}  ${`${f(r.peer.p50)}/${f(r.peer.p99)}`.padStart(15)}  ${String(r.gw.lost + r.peer.lost).padStart(4)}  ${f(r.relayCpuPercent, 0).padStart(11)}  ${f(r.relayRssMiB, 0).padStart(7)}  ${f(r.rssPerClientKiB, 0).padStart(10)}  ${f(r.generatorCpuPercent, 0).padStart(9)}  ${(r.tcpBytes / 1024).toFixed(0)}/${(r.tcpWanted / 1024).toFixed(0)}${nats ? `  ${f(r.natsCpuPercent, 0).padStart(10)}` : ''}`,
    );
    if (results.length === 1) {
      failure =
        lossVerdict(r.gw, FIRST_STEP_MAX_LOSS) ??
        lossVerdict(r.peer, FIRST_STEP_MAX_LOSS) ??
        (r.leaseFailures ? `${r.leaseFailures} clients without a lease or gateway` : null) ??
        (r.tcpBytes < r.tcpWanted || r.tcpSinkBytes < r.tcpWanted ? `TCP stream short: ${r.tcpBytes} acked, ${r.tcpSinkBytes} at the sink, of ${r.tcpWanted}` : null) ??
        (r.foreign ? `${r.foreign} unicast frames delivered to the wrong MAC` : null);
      if (failure) break;
    }
    // On shared cores one step can miss the bound by a neighbour's burst: the ramp goes on
    // until loss, a missing lease, or p99 beyond 4× the bound.
    const p99 = Math.max(r.gw.p99, r.peer.p99);
    if (r.gw.lost + r.peer.lost > 0 || r.leaseFailures > 0 || (!quick && !(p99 <= 4 * bound))) break;
  }
  const inBound = (r: StepResult) => withinBound(r.gw, bound) && withinBound(r.peer, bound) && r.leaseFailures === 0;
  const ok = results.filter(inBound);
  const best = ok.length ? ok[ok.length - 1].clients : 0;
  const misses = results.filter((r) => !inBound(r) && r.clients < best).map((r) => r.clients);
  if (misses.length) console.log(`bench:relay: steps below it that missed the bound: ${misses.join(', ')}`);
  console.log(
    `bench:relay: largest client count within p99 ≤ ${bound} ms and no loss: ${best}${best === results[results.length - 1]?.clients && !quick ? ' (the ramp ended first: raise --steps)' : ''}`,
  );
  console.log(`bench:relay: json ${JSON.stringify({ relays, roomSize, rate, bound, best, results })}`);
  if (nats) for (const [i, c] of children.entries()) console.log(`bench:relay: relay ${i} cluster counters ${JSON.stringify((await c.sample()).cluster)}`);
  await Promise.all(seats.map((s) => s.guest.close()));
  sink.close();
  await Promise.all(children.map((c) => c.stop()));
  await nats?.stop();
  if (failure) {
    console.error(`bench:relay: FAILED its own check on the first step: ${failure}`);
    process.exit(1);
  }
  process.exit(0);
}

const hardStop = setTimeout(() => {
  console.error('bench:relay: hard stop after 15 min');
  process.exit(1);
}, 15 * 60_000);
hardStop.unref();
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
