/**
 * The network table: ping RTT to the gateway and TCP throughput through its NAT for our
 * virtio-net beside stock v86's virtio-net and ne2k on the same relay, NICs interleaved round
 * by round; the floor is a raw WebSocket from the page to the gateway. In the same rounds, our
 * NIC in each network mode: relay, wisp, fetch (net-modes.ts).
 *
 * The guest's end of each transfer moves data in large calls, so the guest instructions per
 * MiB are the NIC's and the TCP stack's rather than the program's: host → guest is busybox
 * wget into /dev/null (each read takes all the socket holds), guest → host is fio's net
 * engine writing 64 KiB at a time. busybox nc, which the table used before, reads and writes
 * at most 1832 bytes per call (COMMON_BUFSIZE of Debian's busybox-static 1.35) with a poll()
 * before each: measured in the guest, nc took ~4.9 M instructions per MiB received where wget
 * took ~1.0 M over the same NIC, and ~10.8 M per MiB sent where fio took ~2.9 M. nc's
 * download is still measured (ours and stock virtio-net), as a line under the table.
 */
import type { BrowserContext, Page } from '@playwright/test';
import { figure, median, type Figure } from '../stats.ts';
import { guestTimed, parseGuestTimed, tcpEndpoint, type TcpEndpoint } from './tcp-endpoint.ts';
import { instructionsBetween, labGuest, stockGuest, type BenchGuest } from './guests.ts';
import { ETHERTYPE_IPV4, buildEthernet, parseMac } from '../../src/wire/ethernet.ts';
import { ICMP_ECHO_REQUEST, buildIcmp } from '../../src/wire/icmp.ts';
import { IPPROTO_ICMP, buildIpv4, parseIp } from '../../src/wire/ipv4.ts';
import type { DeviceStats } from '../../src/vm/protocol.ts';
import { within } from './within.ts';
import { wsCeilingMiBps, wsStreamSource } from './ws-ceiling.ts';
import { MODES, ModeSamples, bootModeGuests, httpSource, wgetDown, type HttpSource, type ModeResults } from './net-modes.ts';

export const NICS = [
  { id: 'ours', label: 'virtio-lab virtio-net' },
  { id: 'stock-virtio', label: "stock v86's virtio-net" },
  { id: 'stock-ne2k', label: "stock v86's ne2k" },
] as const;
export type NicId = (typeof NICS)[number]['id'];

/** transferBothWays() over the rounds. */
export interface TransferResult {
  downMiBps: Figure;
  upMiBps: Figure;
  /** Guest instructions per MiB received / sent. */
  downInstrPerMiB: Figure;
  upInstrPerMiB: Figure;
  /** Our NIC only: kicks and interrupts per frame, host µs per frame in device code. */
  kicksPerFrame?: Figure;
  irqsPerFrame?: Figure;
  hostUsPerFrame?: Figure;
  /** Our NIC only: host µs per frame in the hooks it calls (the link's send, the capture), and device code's % of the transfers' wall time. */
  hookUsPerFrame?: Figure;
  hostPercent?: Figure;
  /** busybox nc as the receiver instead (ncDown()), where measured: MiB/s and guest instructions per MiB. */
  ncDownMiBps?: Figure;
  ncDownInstrPerMiB?: Figure;
}

export interface NicResult extends TransferResult {
  /** Median RTT of each round's pings, ms. */
  pingMs: Figure;
}

export interface NetResults {
  pings: number;
  mib: number;
  rounds: number;
  rawWsMs: Figure;
  /** A worker's WebSocket receiving from loopback alone, in MiB/s (ws-ceiling.ts): 64 KiB messages, MTU-frame messages. */
  wsCeiling?: { superMiBps: Figure; mtuMiBps: Figure };
  nics: Record<NicId, NicResult>;
  /** Our NIC in each network mode, in the same rounds. */
  modes?: ModeResults;
}

export const GATEWAY = '10.0.2.2';

export async function waitLease(g: BenchGuest): Promise<void> {
  const r = await g.run('for i in $(seq 150); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0', 60_000);
  if (!/inet 10\.0\.2\./.test(r.output)) throw new Error(`${g.label}: no DHCP lease:\n${r.output}`);
}

/** The NICs whose download is also measured with busybox nc (ne2k's takes minutes). */
export const NC_NICS: readonly NicId[] = ['ours', 'stock-virtio'];

/** Any transfer gets 10 minutes (a quick one takes seconds, a full 32 MiB one under a minute). */
const TRANSFER_LIMIT_MS = 600_000;

/**
 * One TCP transfer through the NAT, `cmd` in the guest, timed where it ends: an upload when
 * the host's sink has every byte, a download on the guest's clock (see guestTimed). A guest side
 * that fails (no route, a reset) is an error with its output, not a wait for a connection
 * that never comes.
 */
export async function transfer(g: BenchGuest, endpoint: TcpEndpoint, cmd: string, what: string): Promise<number> {
  const hostSeconds = endpoint.next();
  hostSeconds.catch(() => undefined); // awaited below, after the guest's side
  const r = await g.run(guestTimed(cmd), TRANSFER_LIMIT_MS);
  const timed = parseGuestTimed(r.output);
  if (!timed || timed.status !== 0) throw new Error(`${g.label} ${what}: \`${cmd}\` failed:\n${r.output}`);
  const host = await within(hostSeconds, 30_000, `${g.label} ${what}: the host's end of the transfer`);
  return endpoint.kind === 'sink' ? host : timed.seconds;
}

/** The floor: the page's own WebSocket on the relay, echo requests straight to the gateway. */
async function rawWsRtts(page: Page, url: string, count: number): Promise<number[]> {
  const frames = Array.from({ length: count }, (_, seq) => {
    const icmp = buildIcmp({ type: ICMP_ECHO_REQUEST, id: 7, seq, data: new Uint8Array(56) });
    const ip = buildIpv4({ src: parseIp('10.0.2.99'), dst: parseIp(GATEWAY), protocol: IPPROTO_ICMP, payload: icmp });
    return Array.from(buildEthernet({ dst: parseMac('52:55:0a:00:02:02'), src: parseMac('02:00:00:be:0c:01'), etherType: ETHERTYPE_IPV4, payload: ip }));
  });
  return page.evaluate(
    async ([u, fs]) => {
      const ws = new WebSocket(u);
      ws.binaryType = 'arraybuffer';
      await new Promise((r, j) => ((ws.onopen = r), (ws.onerror = () => j(new Error(`raw WebSocket: cannot connect to ${u}`)))));
      const rtts: number[] = [];
      for (let seq = 0; seq < fs.length; seq++) {
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`raw WebSocket: no echo reply ${seq} in 10 s`)), 10_000);
          ws.onclose = () => reject(new Error('raw WebSocket: the relay closed it'));
          ws.onmessage = (ev) => {
            const f = new Uint8Array(ev.data as ArrayBuffer);
            // IPv4 (14-byte Ethernet header), ICMP, echo reply, our sequence number.
            if (f.length >= 42 && f[23] === 1 && f[34] === 0 && ((f[40] << 8) | f[41]) === seq) {
              clearTimeout(timer);
              resolve();
            }
          };
          ws.send(new Uint8Array(fs[seq]));
        });
        rtts.push(performance.now() - t0);
      }
      ws.close();
      return rtts;
    },
    [url, frames] as const,
  );
}

const netStats = (devices: DeviceStats[]) => devices.find((d) => d.name === 'virtio-net');

export interface TransferFigures {
  downMiBps: number;
  upMiBps: number;
  downInstrPerMiB: number;
  upInstrPerMiB: number;
  /** Our NIC only: per frame either way, over both transfers. */
  costs?: { kicksPerFrame: number; irqsPerFrame: number; hostUsPerFrame: number; hookUsPerFrame: number; hostPercent: number };
  /** Our NIC only, host → guest: frames per packet the guest got (large receive merges them), and rx interrupts per MiB. */
  down?: { framesPerPacket: number; irqsPerMiB: number };
}

/** One guest's transferBothWays() figures, a sample a round. */
export class TransferSamples {
  private readonly down: number[] = [];
  private readonly up: number[] = [];
  private readonly downI: number[] = [];
  private readonly upI: number[] = [];
  private readonly kicks: number[] = [];
  private readonly irqs: number[] = [];
  private readonly host: number[] = [];
  private readonly hook: number[] = [];
  private readonly share: number[] = [];
  private readonly ncDown: number[] = [];
  private readonly ncDownI: number[] = [];

  add(t: TransferFigures): void {
    this.down.push(t.downMiBps);
    this.up.push(t.upMiBps);
    this.downI.push(t.downInstrPerMiB);
    this.upI.push(t.upInstrPerMiB);
    if (t.costs) {
      this.kicks.push(t.costs.kicksPerFrame);
      this.irqs.push(t.costs.irqsPerFrame);
      this.host.push(t.costs.hostUsPerFrame);
      this.hook.push(t.costs.hookUsPerFrame);
      this.share.push(t.costs.hostPercent);
    }
  }

  /** A round's ncDown() figures. */
  addNc(n: { downMiBps: number; downInstrPerMiB: number }): void {
    this.ncDown.push(n.downMiBps);
    this.ncDownI.push(n.downInstrPerMiB);
  }

  result(): TransferResult {
    return {
      downMiBps: figure(this.down),
      upMiBps: figure(this.up),
      downInstrPerMiB: figure(this.downI),
      upInstrPerMiB: figure(this.upI),
      ...(this.kicks.length ? { kicksPerFrame: figure(this.kicks), irqsPerFrame: figure(this.irqs), hostUsPerFrame: figure(this.host), hookUsPerFrame: figure(this.hook), hostPercent: figure(this.share) } : {}),
      ...(this.ncDown.length ? { ncDownMiBps: figure(this.ncDown), ncDownInstrPerMiB: figure(this.ncDownI) } : {}),
    };
  }
}

/** Median RTT of `pings` pings to the gateway, ms. */
export async function pingMedian(g: BenchGuest, pings: number): Promise<number> {
  const ping = await g.run(`ping -c ${pings} -i 0.1 ${GATEWAY}`, 120_000);
  const rtts = [...ping.output.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (rtts.length === 0) throw new Error(`${g.label}: no ping replies:\n${ping.output}`);
  return median(rtts);
}

/**
 * Guest → host: fio's net engine connects to `port` and sends `mib` MiB in blocking 64 KiB
 * writes (its report to /dev/null; errors still reach stderr).
 */
export const upCommand = (port: number, mib: number) =>
  `fio --name=up --ioengine=net --hostname=${GATEWAY} --port=${port} --protocol=tcp --rw=write --bs=64k --size=${mib}m >/dev/null`;

/** Host → guest with busybox nc, which reads at most 1832 bytes per poll() and read(); stdin /dev/null for every guest, whichever console runs it. */
export const ncDownCommand = (port: number) => `nc ${GATEWAY} ${port} </dev/null >/dev/null`;

/** `mib` MiB guest → host into `sink` (upCommand), MiB/s. */
export async function upload(g: BenchGuest, sink: TcpEndpoint, mib: number): Promise<number> {
  return mib / (await transfer(g, sink, upCommand(sink.port(), mib), 'guest → host'));
}

/** `mib` MiB host → guest with busybox nc from `source`: MiB/s, and guest instructions per MiB. */
export async function ncDown(g: BenchGuest, source: TcpEndpoint, mib: number): Promise<{ downMiBps: number; downInstrPerMiB: number }> {
  const c0 = await g.counters();
  const seconds = await transfer(g, source, ncDownCommand(source.port()), 'host → guest (nc)');
  const c1 = await g.counters();
  return { downMiBps: mib / seconds, downInstrPerMiB: instructionsBetween(c0.instructions, c1.instructions) / mib };
}

/**
 * `mib` MiB host → guest (busybox wget from `web`, timed on the guest's clock) then guest →
 * host (upload()) through the NAT, with the guest's counters around each.
 */
export async function transferBothWays(g: BenchGuest, web: HttpSource, sink: TcpEndpoint, mib: number): Promise<TransferFigures> {
  const c0 = await g.counters();
  const downMiBps = await wgetDown(g, web, mib, GATEWAY, TRANSFER_LIMIT_MS);
  const down = mib / downMiBps;
  const c1 = await g.counters();
  const upMiBps = await upload(g, sink, mib);
  const c2 = await g.counters();
  const figures: TransferFigures = {
    downMiBps,
    upMiBps,
    downInstrPerMiB: instructionsBetween(c0.instructions, c1.instructions) / mib,
    upInstrPerMiB: instructionsBetween(c1.instructions, c2.instructions) / mib,
  };
  const n0 = netStats(c0.devices);
  const n1 = netStats(c1.devices);
  const n2 = netStats(c2.devices);
  if (!n0 || !n1 || !n2) return figures;
  const d = (k: string) => (n1.extra[k] ?? 0) - (n0.extra[k] ?? 0);
  // In MTU frames: a super-segment, either way, counts as the MSS segments it carried.
  const mtuFrames = (n: NonNullable<typeof n0>) =>
    n.extra.txFrames + (n.extra.txSuperSegmentMss ?? 0) - (n.extra.txSuperSegments ?? 0) + n.extra.rxFrames + (n.extra.rxSuperSegmentMss ?? 0) - (n.extra.rxSuperSegments ?? 0);
  const frames = mtuFrames(n2) - mtuFrames(n0);
  const rxMtuFrames = d('rxFrames') + d('rxSuperSegmentMss') - d('rxSuperSegments');
  return {
    ...figures,
    costs: {
      kicksPerFrame: (n2.notifies - n0.notifies) / frames,
      irqsPerFrame: (n2.interrupts - n0.interrupts) / frames,
      hostUsPerFrame: ((n2.extra.hostMs - n0.extra.hostMs) * 1000) / frames,
      hookUsPerFrame: (((n2.extra.hookMs ?? 0) - (n0.extra.hookMs ?? 0)) * 1000) / frames,
      // Of the worker's wall time during both transfers (the worker is one thread).
      hostPercent: ((n2.extra.hostMs - n0.extra.hostMs) / 1000 / (down + mib / upMiBps)) * 100,
    },
    // MTU frames per packet the guest got (a super-frame merged here or a super-segment is one packet).
    down: { framesPerPacket: rxMtuFrames / (d('rxFrames') - d('rxLroSegments') + d('rxLroPackets')), irqsPerMiB: (n1.interrupts - n0.interrupts) / mib },
  };
}

/**
 * Downloads (and uploads) until `seconds` have passed, at least once (none for 0 s). v86 compiles the guest
 * code a transfer runs as it runs it, on the browser's compiler threads: measured on one guest
 * (32 MiB wget each), the download went from 4.4 to 10.6 MiB/s over its first nine runs, and
 * in Node from 17 to ~50 MiB/s over the first ten, the compiled modules per run falling from
 * ~20 to 1–4. Unwarmed, the table measured that compiler, on whichever NIC ran first.
 */
export async function warmTransfers(g: BenchGuest, web: HttpSource, sink: TcpEndpoint, mib: number, uploads: boolean, seconds: number, log: (s: string) => void): Promise<void> {
  if (seconds <= 0) return;
  const t0 = performance.now();
  const down: string[] = [];
  do {
    down.push((await wgetDown(g, web, mib, GATEWAY, TRANSFER_LIMIT_MS)).toFixed(1));
    if (uploads) await upload(g, sink, mib);
  } while (performance.now() - t0 < seconds * 1000);
  const what = uploads ? `${down.length} transfers each way` : `${down.length} downloads`;
  log(`  warm-up ${g.label}: ${what} in ${((performance.now() - t0) / 1000).toFixed(0)} s, downloads ${down.join(', ')} MiB/s`);
}

export async function benchNet(
  ctx: BrowserContext,
  origin: string,
  relayUrl: (room: string) => string,
  opts: { pings: number; mib: number; rounds: number; warmSeconds: number; log: (s: string) => void },
): Promise<NetResults> {
  const { pings, mib, rounds, warmSeconds, log } = opts;
  const bytes = mib << 20;
  const source = tcpEndpoint('source', bytes);
  const sink = tcpEndpoint('sink', bytes);
  const web = httpSource(bytes);
  const stream = await wsStreamSource();
  const ceiling = { super: [] as number[], mtu: [] as number[] };
  log('net: booting 5 VMs (3 NICs on the relay; ours in wisp and fetch mode)');
  const guests: Record<NicId, BenchGuest> = {
    // Super-segments toward the relay on, as in the run the README shows (the page's default is off).
    ours: await labGuest(ctx, origin, 'ours', 'disk=none&room=bench-ours&tx-super=1'),
    'stock-virtio': await stockGuest(ctx, origin, 'stock virtio-net', { net: { type: 'virtio', relay_url: relayUrl('bench-stock-virtio') } }),
    'stock-ne2k': await stockGuest(ctx, origin, 'stock ne2k', { net: { type: 'ne2k', relay_url: relayUrl('bench-stock-ne2k') } }),
  };
  const modeGuests = { relay: guests.ours, ...(await bootModeGuests(ctx, origin)) };
  const modes = new ModeSamples();
  try {
    for (const g of [...Object.values(guests), modeGuests.wisp, modeGuests.fetch]) await waitLease(g);
    const raw: number[] = [];
    const acc = Object.fromEntries(NICS.map(({ id }) => [id, { ping: [] as number[], transfer: new TransferSamples() }])) as Record<
      NicId,
      { ping: number[]; transfer: TransferSamples }
    >;
    // Warm-up: ARP caches, then the transfers themselves until v86's JIT has compiled their paths.
    for (const g of Object.values(modeGuests)) await g.run(`ping -c 3 ${GATEWAY}`, 60_000);
    for (const { id } of NICS) await warmTransfers(guests[id], web, sink, mib, true, warmSeconds, log);
    for (const { id, upload: uploads } of MODES) if (id !== 'relay') await warmTransfers(modeGuests[id], web, sink, mib, uploads, warmSeconds, log);
    for (let round = 0; round < rounds; round++) {
      raw.push(median(await within(rawWsRtts(guests.ours.page, relayUrl('bench-raw'), pings), 120_000, 'raw WebSocket pings')));
      ceiling.super.push(await wsCeilingMiBps(guests.ours.page, stream, 65536, mib));
      ceiling.mtu.push(await wsCeilingMiBps(guests.ours.page, stream, 1514, mib));
      log(`  round ${round + 1} WebSocket ceiling: ${ceiling.super.at(-1)!.toFixed(1)} MiB/s in 64 KiB messages, ${ceiling.mtu.at(-1)!.toFixed(1)} MiB/s in 1514-byte ones`);
      for (const { id } of NICS) {
        const g = guests[id];
        const a = acc[id];
        const ping = await pingMedian(g, pings);
        a.ping.push(ping);

        const t = await transferBothWays(g, web, sink, mib);
        a.transfer.add(t);
        const lro = t.down ? `, down ${t.down.framesPerPacket.toFixed(1)} frames/packet, ${t.down.irqsPerMiB.toFixed(0)} irqs/MiB` : '';
        const instr = `, ${(t.downInstrPerMiB / 1e6).toFixed(2)}/${(t.upInstrPerMiB / 1e6).toFixed(2)} Minstr/MiB down/up`;
        log(`  round ${round + 1} ${id}: ping ${ping.toFixed(2)} ms, down ${t.downMiBps.toFixed(2)} MiB/s, up ${t.upMiBps.toFixed(2)} MiB/s${instr}${lro}`);
        if (NC_NICS.includes(id)) {
          const n = await ncDown(g, source, mib);
          a.transfer.addNc(n);
          log(`  round ${round + 1} ${id}: nc down ${n.downMiBps.toFixed(2)} MiB/s, ${(n.downInstrPerMiB / 1e6).toFixed(2)} Minstr/MiB`);
        }
      }
      for (const { id, upload: uploads } of MODES) {
        const g = modeGuests[id];
        const pingMs = await pingMedian(g, pings);
        const downMiBps = await wgetDown(g, web, mib, GATEWAY, TRANSFER_LIMIT_MS);
        const upMiBps = uploads ? await upload(g, sink, mib) : undefined;
        modes.add(round, id, { pingMs, downMiBps, upMiBps });
        log(`  round ${round + 1} ${id} mode: ping ${pingMs.toFixed(2)} ms, wget down ${downMiBps.toFixed(2)} MiB/s${upMiBps ? `, up ${upMiBps.toFixed(2)} MiB/s` : ''}`);
      }
    }
    const nics = {} as Record<NicId, NicResult>;
    for (const { id } of NICS) {
      const a = acc[id];
      nics[id] = { pingMs: figure(a.ping), ...a.transfer.result() };
    }
    return { pings, mib, rounds, rawWsMs: figure(raw), wsCeiling: { superMiBps: figure(ceiling.super), mtuMiBps: figure(ceiling.mtu) }, nics, modes: modes.result() };
  } finally {
    for (const g of [...Object.values(guests), modeGuests.wisp, modeGuests.fetch]) await g.close();
    source.server.close();
    sink.server.close();
    web.server.close();
    await stream.close();
  }
}
