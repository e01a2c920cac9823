/**
 * `npm run bench:net`: our virtio-net beside stock v86's virtio-net NIC, both on one in-process
 * relay (127.0.0.1): ping RTT to the gateway (median of 50) and TCP throughput through the
 * gateway's NAT both ways (busybox nc), jobs alternating between the two VMs. The floor: a raw
 * WebSocket client pinging the gateway. `--quick`: 10 pings, 4 MiB. Numbers, not assertions.
 *
 * Stock v86 runs the same guest image with its ne2k and with its virtio-net NIC.
 */
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import WebSocket from 'ws';
import { attachRelay } from '../src/relay/index.ts';
import type { ConsoleSession } from '../src/vm/console-session.ts';
import { startNodeVm } from '../src/vm/node/node-machine.ts';
import {
  buildEthernet,
  buildIcmp,
  buildIpv4,
  decodeFrame,
  ETHERTYPE_IPV4,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IPPROTO_ICMP,
  parseIp,
  parseMac,
} from '../src/wire/index.ts';
import { median, summary } from './stats.ts';
import { guestTimed, parseGuestTimed, tcpEndpoint } from './suite/tcp-endpoint.ts';
import { stockV86InNode } from './suite/stock-node.ts';

const quick = process.argv.includes('--quick');
const PINGS = quick ? 10 : 50;
const MIB = quick ? 4 : 32;
const BYTES = MIB * 1024 * 1024;

const relayServer = createHttpServer((_, res) => res.writeHead(404).end());
const relay = attachRelay(relayServer);
await new Promise<void>((r) => relayServer.listen(0, '127.0.0.1', r));
const relayUrl = (room: string) => `ws://127.0.0.1:${(relayServer.address() as AddressInfo).port}/relay/${room}`;

interface Guest {
  label: string;
  session: ConsoleSession;
  stop(): Promise<void>;
}

async function ours(): Promise<Guest> {
  const vm = await startNodeVm({ net: { relayUrl: relayUrl('bench-ours') } });
  return { label: 'virtio-lab virtio-net', session: vm.session, stop: () => vm.stop() };
}

async function stockV86(nic: 'ne2k' | 'virtio'): Promise<Guest> {
  const vm = await stockV86InNode({ net: { type: nic, relay_url: relayUrl(`bench-stock-${nic}`) } });
  return { label: `stock v86's ${nic === 'ne2k' ? 'ne2k' : 'virtio-net'}`, session: vm.session, stop: () => vm.destroy() };
}

async function waitLease(g: Guest): Promise<void> {
  await g.session.ready;
  const r = await g.session.run('for i in $(seq 100); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0', {
    timeoutMs: 60_000,
  });
  if (!/inet 10\.0\.2\./.test(r.output)) throw new Error(`${g.label}: no DHCP lease`);
}

async function pingRtts(g: Guest): Promise<number[]> {
  const r = await g.session.run(`ping -c ${PINGS} -i 0.1 10.0.2.2`, { timeoutMs: 120_000 });
  return [...r.output.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/** The floor: a WebSocket client on the relay pinging the gateway, no emulator involved. */
async function rawWsRtts(): Promise<number[]> {
  const ws = new WebSocket(relayUrl('bench-raw'));
  ws.binaryType = 'arraybuffer';
  await new Promise((r) => ws.once('open', r));
  const mac = parseMac('02:00:00:be:0c:01');
  const gw = parseMac('52:55:0a:00:02:02');
  const rtts: number[] = [];
  for (let seq = 0; seq < PINGS; seq++) {
    const icmp = buildIcmp({ type: ICMP_ECHO_REQUEST, id: 7, seq, data: new Uint8Array(56) });
    const ip = buildIpv4({ src: parseIp('10.0.2.99'), dst: parseIp('10.0.2.2'), protocol: IPPROTO_ICMP, payload: icmp });
    const t0 = performance.now();
    const reply = new Promise<void>((resolve) => {
      const on = (data: ArrayBuffer) => {
        const d = decodeFrame(new Uint8Array(data));
        if (d?.icmp?.type === ICMP_ECHO_REPLY && d.icmp.seq === seq) {
          ws.off('message', on);
          resolve();
        }
      };
      ws.on('message', on);
    });
    ws.send(buildEthernet({ dst: gw, src: mac, etherType: ETHERTYPE_IPV4, payload: ip }));
    await reply;
    rtts.push(performance.now() - t0);
  }
  ws.close();
  return rtts;
}

const source = tcpEndpoint('source', BYTES);
const sink = tcpEndpoint('sink', BYTES);
const guests: Guest[] = [];
try {
  guests.push(await ours(), await stockV86('virtio'), await stockV86('ne2k'));
  for (const g of guests) await waitLease(g);
  console.log(`network benchmark: ${os.cpus().length} cores, Node ${process.version}; ${PINGS} pings, ${MIB} MiB each way, jobs alternating`);
  const rows: string[][] = [];
  const raw = await rawWsRtts();
  rows.push(['raw WebSocket → gateway (floor)', summary(raw, 'ms', 3), '', '']);
  const results = new Map<string, { ping: number[]; down: number; up: number }>();
  for (const g of guests) results.set(g.label, { ping: [], down: 0, up: 0 });
  for (const g of guests) results.get(g.label)!.ping = await pingRtts(g);
  for (const g of guests) {
    const t = source.next();
    t.catch(() => undefined); // awaited after the guest's side
    // Timed in the guest: the host's socket closes before the guest has read everything.
    const r = await g.session.run(guestTimed(`nc 10.0.2.2 ${source.port()} </dev/null >/dev/null`), { timeoutMs: 600_000 });
    const timed = parseGuestTimed(r.output);
    if (!timed || timed.status !== 0) throw new Error(`${g.label}: download failed:\n${r.output}`);
    await t;
    results.get(g.label)!.down = BYTES / 1024 / 1024 / timed.seconds;
  }
  for (const g of guests) {
    const t = sink.next();
    t.catch(() => undefined); // awaited after the guest's side
    await g.session.run(`dd if=/dev/zero bs=64k count=${BYTES / 65536} 2>/dev/null | nc 10.0.2.2 ${sink.port()}`, { timeoutMs: 600_000 });
    results.get(g.label)!.up = BYTES / 1024 / 1024 / (await t);
  }
  for (const [label, r] of results) {
    rows.push([label, summary(r.ping, 'ms', 2), `${r.down.toFixed(2)} MiB/s`, `${r.up.toFixed(2)} MiB/s`]);
  }
  const header = ['NIC', `ping RTT to 10.0.2.2 (${PINGS})`, 'TCP host → guest', 'TCP guest → host'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  console.log('');
  console.log(header.map((h, i) => h.padEnd(widths[i])).join(' | '));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join(' | '));
  const [a, ...others] = [...results.entries()];
  for (const [label, b] of others) {
    console.log(
      `ours / ${label}: ping ${(median(a[1].ping) / median(b.ping)).toFixed(2)}× the RTT, ` +
        `download ${(a[1].down / b.down).toFixed(2)}×, upload ${(a[1].up / b.up).toFixed(2)}× the throughput`,
    );
  }
} finally {
  for (const g of guests) await g.stop().catch(() => undefined);
  source.server.close();
  sink.server.close();
  await relay.close();
  relayServer.close();
}
process.exit(0);
