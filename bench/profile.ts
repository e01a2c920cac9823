/**
 * `npm run bench:profile`: where the host CPU goes while the guest runs one of `npm run
 * bench`'s disk jobs — in v86 (the emulated guest CPU, its JIT and its own devices) or in
 * our device code — for v86's IDE disk and our virtio-blk on the same bytes in memory, in
 * one Node process with V8's sampling profiler. Answers "our code or the guest's CPU?".
 * `--net` does the same for a TCP download and upload through our relay (in this process
 * too, so its share shows), with virtio-net's own count of host µs per frame.
 *
 *   npm run bench:profile -- [--job rnd-read-1] [--seconds 5]
 *   npm run bench:profile -- --opfs     # the OPFS calls our disk path makes, in Chromium (opfs-calls.ts),
 *                                       # and our request path on memory vs OPFS (suite/disk-path.ts)
 *   npm run bench:profile -- --opfs --variants   # also the write cache's alternatives (gap merging, caching 1 MiB writes)
 *   npm run bench:profile -- --net [--mib 16] [--no-guest-tso] [--no-tx-super]
 *     (super-segments toward the relay are on, as in `npm run bench`; --no-tx-super has the NIC cut them)
 */
import { Session } from 'node:inspector/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { attachRelay } from '../src/relay/index.ts';
import WebSocket from 'ws';
import { WebSocketFrameLink } from '../src/backends/websocket-frame-link.ts';
import { localMac } from '../src/devices/net/config.ts';
import { ConsoleSession } from '../src/vm/console-session.ts';
import { startNodeVm } from '../src/vm/node/node-machine.ts';
import { MemoryBlockBackend } from '../src/backends/memory-block-backend.ts';
import { DISK_JOBS, fioCommand, parseFioTerse } from './suite/fio.ts';
import { stockV86InNode } from './suite/stock-node.ts';

/** The raw file the --opfs calls go to: the disk table's size. */
const DISK_MIB_FOR_OPFS = 256;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
if (process.argv.includes('--opfs')) {
  // Node has no OPFS: its side of the profile is the cost of each SyncAccessHandle call in Chromium.
  const { measureOpfsCalls } = await import('./opfs-calls.ts');
  const figures = await measureOpfsCalls({ ms: 300, rounds: 5, fileMiB: DISK_MIB_FOR_OPFS });
  console.log('µs per SyncAccessHandle call in a Chromium worker, median (min–max) of 5 interleaved rounds:');
  for (const [id, f] of figures) console.log(`  ${id.padEnd(16)} ${f.median.toFixed(1).padStart(8)}  (${f.min.toFixed(1)}–${f.max.toFixed(1)})`);
  // Our request path on the same worker kind, memory against OPFS, without a guest.
  const { measureDiskPath } = await import('./suite/disk-path.ts');
  const path = await measureDiskPath({ ms: 300, rounds: 5, diskMiB: DISK_MIB_FOR_OPFS, variants: process.argv.includes('--variants') });
  console.log('\nour request path (parse, execute, status) in a Chromium worker, µs per request, median (min–max) of 5 rounds;');
  console.log('the FLUSH closing each round separately (ms), and OPFS / memory per round:');
  for (const p of path) {
    const f = p.usPerRequest;
    const ratio = p.overMem ? `  ${p.overMem.median.toFixed(2)}× (${p.overMem.min.toFixed(2)}–${p.overMem.max.toFixed(2)})` : '';
    console.log(`  ${p.id.padEnd(18)} ${f.median.toFixed(2).padStart(8)}  (${f.min.toFixed(2)}–${f.max.toFixed(2)})  flush ${p.flushMs.median.toFixed(2)} ms${ratio}`);
  }
  process.exit(0);
}
const job = DISK_JOBS.find((j) => j.id === (arg('job') ?? 'rnd-read-1'));
if (!job) {
  console.error(`--job: one of ${DISK_JOBS.map((j) => j.id).join(', ')}`);
  process.exit(2);
}
const seconds = Number(arg('seconds') ?? 5);
const DISK_MIB = 64;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
  children?: number[];
}

/** Which part of the process a sampled function belongs to. */
function category(url: string, fn: string): string {
  if (url.startsWith('wasm://')) return 'v86 wasm (guest CPU, JIT, memory)';
  if (/libv86/.test(url)) return 'v86 JavaScript (its devices, port I/O dispatch)';
  if (/\/src\/(devices|virtio|backends)\//.test(url)) return 'virtio-lab device code';
  if (/\/src\/(relay|wire)\//.test(url)) return 'virtio-lab relay (gateway, TCP NAT)';
  if (/node:internal\/(stream|net)|\/ws\//.test(url)) return 'sockets (Node streams, ws)';
  if (/\/src\/vm\//.test(url)) return 'virtio-lab machine and v86 adapter';
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collector';
  return 'other (Node, console, profiler)';
}

async function profiled<T>(work: () => Promise<T>): Promise<{ result: T; shares: Map<string, number> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const result = await work();
  const { profile } = (await session.post('Profiler.stop')) as { profile: { nodes: ProfileNode[] } };
  session.disconnect();
  const hits = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const h = n.hitCount ?? 0;
    total += h;
    const c = category(n.callFrame.url, n.callFrame.functionName);
    hits.set(c, (hits.get(c) ?? 0) + h);
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(src|node_modules)\//, '')}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + h);
  }
  // `--top N`: the functions with the most samples of their own.
  const top = Number(arg('top') ?? 0);
  for (const [fn, h] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${((h / total) * 100).toFixed(1).padStart(5)} %  ${fn}`);
  return { result, shares: new Map([...hits].map(([k, v]) => [k, v / total])) };
}

async function run(label: string, session: ConsoleSession, device: string): Promise<void> {
  await session.ready;
  await session.run('umount /mnt/disk 2>/dev/null; true');
  await session.run(fioCommand(job!, device, 1, DISK_MIB), { timeoutMs: 120_000 }); // warm-up
  const { result, shares } = await profiled(() => session.run(fioCommand(job!, device, seconds, DISK_MIB), { timeoutMs: 120_000 }));
  const fio = parseFioTerse(result.output, job!);
  console.log(`\n${label}: ${job!.label}: ${fio.iops.toFixed(0)} IOPS, ${fio.MBps.toFixed(1)} MB/s`);
  for (const [k, v] of [...shares].sort((a, b) => b[1] - a[1])) console.log(`  ${(v * 100).toFixed(1).padStart(5)} %  ${k}`);
}

if (process.argv.includes('--net')) {
  await profileNet(Number(arg('mib') ?? 16), !process.argv.includes('--no-guest-tso'), !process.argv.includes('--no-tx-super'));
  process.exit(0);
}

/** The relay, a file server and a byte sink on 127.0.0.1, a guest on the relay; one profiled transfer each way. */
async function profileNet(mib: number, guestTso: boolean, superSegmentsOut: boolean): Promise<void> {
  const listen = (s: Server | ReturnType<typeof createHttpServer>) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
  const relayServer = createHttpServer((_, res) => res.writeHead(404).end());
  const relay = attachRelay(relayServer);
  const relayPort = await listen(relayServer);
  const payload = new Uint8Array(mib << 20).map((_, i) => (i * 7) & 0xff);
  const files = createHttpServer((_, res) => res.writeHead(200, { 'content-length': payload.length }).end(payload));
  const filesPort = await listen(files);
  const sink = createTcpServer((sock) => sock.resume());
  const sinkPort = await listen(sink);
  const link = new WebSocketFrameLink(`ws://127.0.0.1:${relayPort}/relay/profile`, WebSocket);
  const vm = await startNodeVm({ net: { link, mac: localMac(), guestTso, superSegmentsOut } });
  await vm.session.ready;
  await vm.session.run('for i in $(seq 50); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done', { timeoutMs: 30_000 });
  const net = () => vm.machine.deviceStats().find((d) => d.name === 'virtio-net')!;
  const steps = [
    ['host → guest', `wget -q -O /dev/null http://10.0.2.2:${filesPort}/`],
    ['guest → host', `dd if=/dev/zero bs=64k count=${(mib << 20) / 65536} 2>/dev/null | nc 10.0.2.2 ${sinkPort}`],
  ] as const;
  for (const [label, cmd] of steps) {
    const n0 = net();
    const t0 = performance.now();
    const { shares } = await profiled(() => vm.session.run(cmd, { timeoutMs: 600_000 }));
    const seconds = (performance.now() - t0) / 1000;
    const n1 = net();
    const d = (k: string) => n1.extra[k] - n0.extra[k];
    const frames = d('rxFrames') + d('txFrames');
    // As `npm run bench` counts: a super-segment, either way, is the MSS segments it carried.
    const mtuFrames = frames + d('rxSuperSegmentMss') - d('rxSuperSegments') + d('txSuperSegmentMss') - d('txSuperSegments');
    console.log(`\nvirtio-net ${label} (GUEST_TSO4 ${guestTso ? 'offered' : 'off'}, super-segments up ${superSegmentsOut ? 'on' : 'off'}): ${(mib / seconds).toFixed(2)} MiB/s under the profiler`);
    console.log(`  ${frames} frames (${d('rxLroPackets')} rx super-frames of ${d('rxLroSegments')}, ${d('txSuperSegments')} tx super-segments), ${n1.interrupts - n0.interrupts} interrupts, ${n1.notifies - n0.notifies} kicks`);
    console.log(
      `  device host time: ${((d('hostMs') * 1000) / frames).toFixed(2)} µs per frame, ${((d('hostMs') * 1000) / mtuFrames).toFixed(2)} per MTU frame (${mtuFrames}), ` +
        `${((d('hostMs') / 1000 / seconds) * 100).toFixed(2)} % of the wall clock; tx ${((d('txHostMs') / d('hostMs')) * 100).toFixed(0)} % of it`,
    );
    for (const [k, v] of [...shares].sort((a, b) => b[1] - a[1])) console.log(`  ${(v * 100).toFixed(1).padStart(5)} %  ${k}`);
  }
  await vm.stop();
  link.close();
  await relay.close();
  relayServer.close();
  files.close();
  sink.close();
}

// Our virtio-blk on a memory disk.
const vm = await startNodeVm({ disk: { backend: new MemoryBlockBackend(DISK_MIB << 20), name: 'profile' } });
await run('virtio-blk on memory', vm.session, '/dev/vda');
await vm.stop();

// Stock v86 with its IDE disk over the same zeroed bytes.
const stock = await stockV86InNode({ hdaBytes: DISK_MIB << 20 });
await run("v86's IDE disk", stock.session, '/dev/sda');
await stock.destroy();
process.exit(0);
