/**
 * Processes for cluster benches and tests, on loopback: a nats-server with JetStream in a
 * temporary store, and relay processes (src/server/relay-main.ts) that answer samples of
 * their CPU time, RSS, frames and cluster counters over IPC.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HOST = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, HOST, () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

/** The nats-server binary, or an Error that says how to install it. */
export function natsServerBinary(): string {
  for (const p of ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore' });
      return p;
    } catch {
      // next
    }
  }
  throw new Error('nats-server is not installed: the cluster needs it (Debian: apt-get install nats-server; .ci/run installs it)');
}

export interface NatsProc {
  url: string;
  proc: ChildProcess;
  /** CPU time the server has used (Linux /proc; 0 elsewhere). */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** A nats-server with JetStream on a free loopback port; resolves once it accepts connections. */
export async function startNats(): Promise<NatsProc> {
  const bin = natsServerBinary();
  const port = await freePort();
  const store = mkdtempSync(path.join(os.tmpdir(), 'vlab-nats-'));
  const proc = spawn(bin, ['-a', HOST, '-p', String(port), '-js', '-sd', store], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((r) => {
      const c = createConnection(port, HOST, () => (c.destroy(), r(true)));
      c.once('error', () => r(false));
    });
    if (up) break;
    if (proc.exitCode !== null) throw new Error(`nats-server exited (${proc.exitCode})`);
    await sleep(100);
  }
  return {
    url: `nats://${HOST}:${port}`,
    proc,
    cpuMs: () => procCpuMs(proc.pid),
    async stop() {
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      rmSync(store, { recursive: true, force: true });
    },
  };
}

/** utime + stime of a process from /proc/<pid>/stat (USER_HZ is 100 on Linux). */
function procCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

export interface RelaySample {
  cpuMs: number;
  rss: number;
  frames: number;
  clients: number;
  cluster: Record<string, number | string> | null;
}

export interface RelayProc {
  proc: ChildProcess;
  port: number;
  sample(): Promise<RelaySample>;
  stop(): Promise<void>;
}

/** A relay process on a free loopback port, clustered on `cluster` when given. */
export async function startRelay(cluster: string | null, env: Record<string, string> = {}): Promise<RelayProc> {
  const proc = fork(path.join(root, 'src/server/relay-main.ts'), cluster ? ['--cluster', cluster] : [], {
    // RELAY_CPU_PROF=<dir>: each relay writes a V8 CPU profile there when it exits.
    execArgv: ['--import', 'tsx', ...(process.env.RELAY_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.RELAY_CPU_PROF] : [])],
    env: { ...process.env, PORT: '0', HOST, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let seq = 0;
  const waiting = new Map<number, (m: RelaySample) => void>();
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    proc.on('message', (m: { type: string; port?: number; id?: number }) => {
      if (m.type === 'ready') resolve(m.port!);
      else if (m.id !== undefined) waiting.get(m.id)?.(m as unknown as RelaySample);
    });
    proc.once('exit', (c) => reject(new Error(`relay exited (${c}) before listening`)));
  });
  return {
    proc,
    port,
    sample: () =>
      new Promise((resolve, reject) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return reject(new Error('relay is gone'));
        const id = ++seq;
        waiting.set(id, resolve);
        proc.send({ type: 'sample', id });
      }),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await Promise.race([exited, sleep(4000)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}
