/**
 * The network modes side by side, our virtio-net in each: relay (frames to the server's relay,
 * whose gateway NATs), wisp (the gateway in the VM's worker, TCP leaving as wisp streams
 * through the same server's /wisp/), fetch (the gateway in the worker, guest HTTP becoming the
 * page's fetch(); download only, since fetch cannot take a guest's raw TCP). Ping RTT to
 * 10.0.2.2; download with wget from an HTTP source (the one transfer all three can do, and the
 * network table's own); upload with fio's net engine into a sink, as in the network table
 * (relay and wisp). Modes interleave within each round of benchNet, and
 * each mode's figures are divided by the relay's of the same round: the ratios' spread is
 * over rounds.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext } from '@playwright/test';
import { figure, pairedRatio, type Figure } from '../stats.ts';
import { labGuest, type BenchGuest } from './guests.ts';
import { guestTimed, parseGuestTimed } from './tcp-endpoint.ts';

export const MODES = [
  { id: 'relay', label: 'relay (gateway on the server)', upload: true },
  { id: 'wisp', label: 'wisp (gateway in the worker, /wisp/)', upload: true },
  { id: 'fetch', label: 'fetch (gateway in the worker, fetch())', upload: false },
] as const;
export type ModeId = (typeof MODES)[number]['id'];
export type OtherMode = Exclude<ModeId, 'relay'>;

/** One mode's figures in one round. */
export interface ModeRound {
  pingMs: number;
  downMiBps: number;
  /** Not for fetch. */
  upMiBps?: number;
}

export interface ModeResult {
  pingMs: Figure;
  downMiBps: Figure;
  upMiBps?: Figure;
}

export interface ModeResults {
  modes: Record<ModeId, ModeResult>;
  /** This mode's figure over the relay's in the same round, over the rounds. */
  vsRelay: Record<OtherMode, ModeResult>;
}

/** The rounds' figures, and each round's ratios to the relay. */
export class ModeSamples {
  private readonly rounds: Array<Partial<Record<ModeId, ModeRound>>> = [];

  add(round: number, id: ModeId, r: ModeRound): void {
    (this.rounds[round] ??= {})[id] = r;
  }

  result(): ModeResults {
    const full = this.rounds.filter((r) => MODES.every(({ id }) => r[id]));
    if (full.length === 0) throw new Error('net modes: no round has every mode');
    const pick = (f: (r: Partial<Record<ModeId, ModeRound>>) => number | undefined): Figure | undefined => {
      const xs = full.map(f).filter((x): x is number => x !== undefined);
      return xs.length ? figure(xs) : undefined;
    };
    const of = (id: ModeId): ModeResult => {
      const up = pick((r) => r[id]!.upMiBps);
      return { pingMs: pick((r) => r[id]!.pingMs)!, downMiBps: pick((r) => r[id]!.downMiBps)!, ...(up ? { upMiBps: up } : {}) };
    };
    const vs = (id: OtherMode): ModeResult => {
      const paired = (k: keyof ModeRound) => pairedRatio(full.map((r) => r[id]![k]), full.map((r) => r.relay![k]));
      const up = paired('upMiBps');
      return { pingMs: paired('pingMs')!, downMiBps: paired('downMiBps')!, ...(up ? { upMiBps: up } : {}) };
    };
    return {
      modes: { relay: of('relay'), wisp: of('wisp'), fetch: of('fetch') },
      vsRelay: { wisp: vs('wisp'), fetch: vs('fetch') },
    };
  }
}

export interface HttpSource {
  server: Server;
  port(): number;
}

/** An HTTP server on 127.0.0.1 sending `bytes` bytes, with CORS headers so fetch() may read it. */
export function httpSource(bytes: number): HttpSource {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const server = createServer((_, res) => {
    res.writeHead(200, { 'content-length': bytes, 'access-control-allow-origin': '*', 'content-type': 'application/octet-stream' });
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const piece = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
        sent += piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  return { server, port: () => (server.address() as AddressInfo).port };
}

/** The wisp and fetch guests (the relay's is benchNet's own "ours"). */
export async function bootModeGuests(ctx: BrowserContext, origin: string): Promise<Record<OtherMode, BenchGuest>> {
  // Super-segments toward the gateway on, as for the relay's guest.
  const wisp = await labGuest(ctx, origin, 'wisp mode', 'disk=none&net=wisp&tx-super=1');
  try {
    return { wisp, fetch: await labGuest(ctx, origin, 'fetch mode', 'disk=none&net=fetch&tx-super=1') };
  } catch (e) {
    await wisp.close();
    throw e;
  }
}

/** eth0's received bytes around `cmd` (shell builtins only), printed as "@rx N" after it. */
export const withRxBytes = (cmd: string) =>
  `read -r r0 </sys/class/net/eth0/statistics/rx_bytes; ${cmd}; read -r r1 </sys/class/net/eth0/statistics/rx_bytes; echo "@rx $((r1 - r0))"`;

export function parseRxBytes(output: string): number | undefined {
  const m = /@rx (\d+)/.exec(output);
  return m ? Number(m[1]) : undefined;
}

/**
 * `mib` MiB from the HTTP source with wget, timed on the guest's clock. busybox wget takes a
 * body that ends early for the whole file (exit 0), so eth0 must have received at least the
 * body's bytes.
 */
export async function wgetDown(g: BenchGuest, source: { port(): number }, mib: number, gateway: string, limitMs: number): Promise<number> {
  const cmd = `wget -q -O /dev/null http://${gateway}:${source.port()}/blob`;
  const r = await g.run(withRxBytes(guestTimed(cmd)), limitMs);
  const timed = parseGuestTimed(r.output);
  if (!timed || timed.status !== 0) throw new Error(`${g.label} wget download: \`${cmd}\` failed:\n${r.output}`);
  const rx = parseRxBytes(r.output);
  if (rx === undefined || rx < mib * 2 ** 20) throw new Error(`${g.label} wget download: eth0 received ${rx} bytes, fewer than the body's ${mib} MiB:\n${r.output}`);
  return mib / timed.seconds;
}
